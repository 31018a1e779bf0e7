"""Stage 4, verdicts: line and definition summaries, surprise
levels, the line ranking, two-sided confirmation by the judge. Builds on scoring and
syntax.
"""

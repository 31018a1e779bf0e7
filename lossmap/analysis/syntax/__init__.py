"""Stage 3, syntax: reading source text, languages, the three
coordinate systems, tree-sitter parsing and alignment of tokens to nodes. Imports
nothing of models, scoring or verdicts.
"""

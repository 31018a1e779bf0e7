"""Two-sided verdicts carried from a document's previous result onto its new one.

The judge takes seconds per line on a CPU, so after an edit the new result has no two-sided
verdicts for a while. Dropping them would make every line the judge had cleared flash up as
a causal-only diagnostic until it looks again. Instead a verdict moves to the new result when
its line is unchanged (matched line by line) and tokenizes the same, marked ``carried``; the next
confirmation replaces it. (The numbers are close, not equal: the judge's prompt holds the
code around the line, which the edit may have touched.)
"""

from __future__ import annotations

import dataclasses
import difflib

from ..analysis import FileAnalysis
from ..analysis.verdicts.lines import LineSummary
from ..analysis.verdicts.two_sided import TwoSidedLine


def carry_verdicts(
    old: FileAnalysis, new: FileAnalysis, mark: bool = True
) -> dict[int, TwoSidedLine]:
    """``old``'s two-sided lines that read and tokenize the same in ``new``, at their new
    line numbers and token indices, marked ``carried`` (``mark`` False: both analyses are of
    the same text, a provisional result and the full one)."""
    if not old.two_sided or old.scored.model != new.scored.model:
        return {}
    # Lines matched by difflib, not by one common prefix and suffix: between two results
    # the user may have edited in several places.
    old_texts = [old.scored.text[ln.start : ln.end] for ln in old.lines]
    new_texts = [new.scored.text[ln.start : ln.end] for ln in new.lines]
    moved: dict[int, LineSummary] = {}
    matcher = difflib.SequenceMatcher(None, old_texts, new_texts)  # 40 ms for 20k lines
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            moved[old.lines[a + k].line] = new.lines[b + k]
    old_lines = {ln.line: ln for ln in old.lines}
    carried: dict[int, TwoSidedLine] = {}
    for number, verdict in old.two_sided.items():
        before, after = old_lines.get(number), moved.get(number)
        if before is None or after is None:
            continue  # the line was edited
        old_tokens = [old.tokens[i].text for i in before.token_indices]
        if old_tokens != [new.tokens[i].text for i in after.token_indices]:
            continue  # tokens re-merged at the line's edge: other tokens, other numbers
        index = dict(zip(before.token_indices, after.token_indices, strict=True))
        carried[after.line] = dataclasses.replace(
            verdict,
            line=after.line,
            tokens={index[i]: t for i, t in verdict.tokens.items() if i in index},
            worst_token=index.get(verdict.worst_token),
            carried=verdict.carried or mark,
        )
    return carried

"""How many real-bug fixes change text inside string literals or comments?

lossmap counts string contents and comments as prose: a line is never flagged for them. This
counts, over the ``--medium`` cases whose fix changes or deletes code (not insertion-only),
the non-blank characters of the buggy file that the fix changes, and how many of them lie
in prose (tree-sitter's string contents and comments, as ``syntax.align`` classifies them).

Usage: ``python benchmarks/realbugs/in_strings.py`` (reads the mirrors, no model).
"""

from __future__ import annotations

import difflib

from cases import buggy_text, fixed_text
from run import choose, read_cases

from lossmap.analysis.syntax.align import PROSE, align, parse


def changed_chars(buggy: str, fixed: str) -> list[int]:
    """Character offsets of ``buggy`` that the fix replaces or deletes (non-blank), and the
    place of each insertion inside a changed line."""
    old, new = buggy.splitlines(True), fixed.splitlines(True)
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line))
    out = []
    lines = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in lines.get_opcodes():
        if tag == "equal":
            continue
        a, b = "".join(old[i1:i2]), "".join(new[j1:j2])
        chars = difflib.SequenceMatcher(None, a, b, autojunk=False)
        for t, x1, x2, _y1, _y2 in chars.get_opcodes():
            if t in ("replace", "delete"):
                out += [starts[i1] + x for x in range(x1, x2) if not a[x].isspace()]
            elif t == "insert" and x1 < len(a):
                out.append(starts[i1] + x1)
    return out


def main() -> None:
    tally = {"all in prose": 0, "partly in prose": 0, "none in prose": 0}
    for case, _span in choose(read_cases(), False, None, medium=True):
        if case.insertion_only:
            continue
        buggy = buggy_text(case)
        changed = changed_chars(buggy, fixed_text(case))
        # Each changed character as a one-character span: align's own prose rule decides.
        spans = sorted({(c, c + 1) for c in changed if c < len(buggy)})
        syntax = align(buggy, spans, parse(buggy, "python"))
        prose = sum(s.kind == PROSE for s in syntax)
        kind = (
            "none in prose"
            if not prose
            else "all in prose"
            if prose == len(spans)
            else "partly in prose"
        )
        tally[kind] += 1
        if prose:
            print(f"{case.id}: {prose} of {len(spans)} changed characters in prose")
    print(tally)


if __name__ == "__main__":
    main()

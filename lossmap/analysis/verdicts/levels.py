"""Surprise levels: the shared scale of the terminal heat map and the editor highlights."""

from __future__ import annotations

#: Default display threshold, bits: tokens the model gave less than 1/256 are highlighted.
DEFAULT_DISPLAY_THRESHOLD = 8.0
#: Default diagnostic threshold, bits of margin: lines whose verdict reaches it are "the model
#: is confused here" in the editor, and the candidates ``--confirm all`` confirms.
DIAGNOSTIC_THRESHOLD = 10.0
#: Bits more a line's causal verdict needs to be shown (a diagnostic, a line of ``diff``) while
#: the judge has not confirmed it: the causal view alone flags 45 lines per 1,000 of clean
#: code at 10 bits, 4 at 18 (``benchmarks/realbugs``, 67 BugsInPy files; RESULTS.md). Once the
#: judge looked, its combined verdict is measured against the threshold itself.
UNCONFIRMED_EXTRA_BITS = 8.0
#: Bits more a line's combined verdict needs to be shown once the judge confirmed it: with
#: every candidate confirmed (the editor's steady state) the judge keeps about 10 clean lines
#: per 1,000 at 10 bits and about 5 at 14, and the planted bugs it publishes mostly stand
#: higher (``benchmarks/realbugs/steady.py``, ``benchmarks/bugloc/steady.py``; RESULTS.md).
#: The judge still confirms every line whose causal verdict reaches the threshold itself.
CONFIRMED_EXTRA_BITS = 4.0
#: Each level above the threshold is this many bits wide.
LEVEL_STEP = 3.0
#: Number of levels; the last one is open-ended.
LEVEL_COUNT = 4


def surprise_level(bits: float | None, threshold: float = DEFAULT_DISPLAY_THRESHOLD) -> int:
    """0 below ``threshold``, then 1 .. ``LEVEL_COUNT`` in steps of ``LEVEL_STEP`` bits."""
    if bits is None or bits < threshold:
        return 0
    return min(LEVEL_COUNT, 1 + int((bits - threshold) // LEVEL_STEP))

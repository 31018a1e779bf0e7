"""Map character offsets between two versions of a text that differ in one region.

While a re-score runs, the last result still describes the previous text. Everything before
the first changed character and after the last one is unchanged, so highlights and hovers
there can be shown at shifted offsets instead of vanishing.
"""

from __future__ import annotations

from lsprotocol import types

from .positions import PositionMapper


class TextShift:
    """Offsets of ``old`` mapped into ``new`` and back; None inside the changed region."""

    def __init__(self, old: str, new: str) -> None:
        n = min(len(old), len(new))
        prefix = 0
        # Compare in blocks first: the common case is a long identical prefix.
        while prefix + 256 <= n and old[prefix : prefix + 256] == new[prefix : prefix + 256]:
            prefix += 256
        while prefix < n and old[prefix] == new[prefix]:
            prefix += 1
        suffix = 0
        while suffix < n - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
            suffix += 1
        self.prefix = prefix
        self.old_tail = len(old) - suffix  # old offsets >= this are in the unchanged suffix
        self.new_tail = len(new) - suffix
        self.identical = old == new

    def to_new(self, offset: int) -> int | None:
        if offset <= self.prefix:
            return offset
        if offset >= self.old_tail:
            return offset - self.old_tail + self.new_tail
        return None

    def span_to_new(self, start: int, end: int) -> tuple[int, int] | None:
        """Where the unchanged span ``old[start:end]`` is in ``new``; None if the edit touched
        it. A span that ends where an insertion begins stays; one that starts there moves."""
        if end <= self.prefix:
            return start, end
        if start >= self.old_tail:
            return start - self.old_tail + self.new_tail, end - self.old_tail + self.new_tail
        return None

    def to_old(self, offset: int) -> int | None:
        if offset <= self.prefix:
            return offset
        if offset >= self.new_tail:
            return offset - self.new_tail + self.old_tail
        return None


class ShiftedPositions:
    """LSP ranges in ``new`` for character spans of ``old`` (the text a result was made
    from); None for a span the edit touched, so nothing is placed at a stale position."""

    def __init__(self, old: str, new: str, encoding: str) -> None:
        self.shift = TextShift(old, new)
        self.mapper = PositionMapper(new, encoding)

    def range(self, start: int, end: int) -> types.Range | None:
        span = self.shift.span_to_new(start, end)
        return None if span is None else self.mapper.range(*span)

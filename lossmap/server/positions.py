"""Character offsets <-> LSP positions in the negotiated encoding (utf-16, utf-8, utf-32)."""

from __future__ import annotations

from lsprotocol import types

from ..analysis.offsets import LineIndex


def _units(s: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(s.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(s)
    return len(s.encode("utf-16-le")) // 2


class PositionMapper:
    """Converts between character offsets into ``text`` and LSP positions."""

    def __init__(self, text: str, encoding: str = types.PositionEncodingKind.Utf16) -> None:
        self.text = text
        self.encoding = encoding
        self.lines = LineIndex(text)

    def position(self, offset: int) -> types.Position:
        """The LSP position of character ``offset``."""
        line = self.lines.line_of(offset)
        start = self.lines.line_starts[line]
        return types.Position(line=line, character=_units(self.text[start:offset], self.encoding))

    def range(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position(start), end=self.position(end))

    def offset(self, position: types.Position) -> int:
        """The character offset of an LSP position (clamped to its line)."""
        if position.line >= self.lines.line_count:
            return len(self.text)
        start, end = self.lines.line_span(position.line)
        if self.encoding == types.PositionEncodingKind.Utf32:
            return min(start + position.character, end)
        units = 0
        for i in range(start, end):
            if units >= position.character:
                return i
            units += _units(self.text[i], self.encoding)
        return end

    def length(self, start: int, end: int) -> int:
        """Length of ``text[start:end]`` in code units."""
        return _units(self.text[start:end], self.encoding)

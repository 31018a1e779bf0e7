"""Conversions between the three coordinate systems: characters, UTF-8 bytes, lines.

Tokenizers give character (code point) offsets, tree-sitter gives UTF-8 byte offsets.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence


def char_to_byte_offsets(text: str, char_offsets: Sequence[int]) -> list[int]:
    """Byte offsets of ascending character offsets; linear in ``len(text)``."""
    result: list[int] = []
    prev_char = 0
    prev_byte = 0
    for c in char_offsets:
        if c < prev_char:  # not ascending: restart from the beginning
            prev_char, prev_byte = 0, 0
        prev_byte += len(text[prev_char:c].encode("utf-8"))
        prev_char = c
        result.append(prev_byte)
    return result


#: A line break as LSP defines it: ``\r\n``, ``\r`` or ``\n``. Form feed, ``\v``, U+0085,
#: U+2028 and U+2029 are not (``str.splitlines`` treats them as breaks, editors do not).
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def count_line_breaks(text: str) -> int:
    r"""Number of line breaks in ``text`` by the LSP definition (``\r\n`` counts once)."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class LineIndex:
    r"""Maps character offsets to 0-based (line, column) and back.

    Lines end at ``\r\n``, ``\r`` or ``\n``: the LSP definition, which every editor uses.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0]
        self.line_starts += [m.end() for m in LINE_BREAK.finditer(text)]
        self.length = len(text)

    @property
    def line_count(self) -> int:
        return len(self.line_starts)

    def line_of(self, offset: int) -> int:
        """0-based line that holds character ``offset``."""
        return bisect.bisect_right(self.line_starts, offset) - 1

    def line_span(self, line: int) -> tuple[int, int]:
        r"""Character span of ``line`` without its line break (``\n``, ``\r\n`` or ``\r``)."""
        start = self.line_starts[line]
        if line + 1 >= len(self.line_starts):
            return start, self.length
        end = self.line_starts[line + 1] - 1
        if end > start and self.text[end - 1] == "\r" and self.text[end] == "\n":
            end -= 1
        return start, end


def byte_to_char_offsets(text: str, byte_offsets: Sequence[int]) -> list[int]:
    """Character offsets of UTF-8 byte offsets (any order); linear after one sort."""
    data = text.encode("utf-8")
    order = sorted(range(len(byte_offsets)), key=byte_offsets.__getitem__)
    result = [0] * len(byte_offsets)
    prev_byte = 0
    chars = 0
    for i in order:
        b = byte_offsets[i]
        chars += len(data[prev_byte:b].decode("utf-8", errors="replace"))
        prev_byte = b
        result[i] = chars
    return result

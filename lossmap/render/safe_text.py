"""Text from files and file names made safe to print on a terminal (no rich import: the CLI
uses it before anything is rendered)."""

from __future__ import annotations

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def terminal_safe(text: str) -> str:
    """``text`` (a file name, or a message naming one) safe to print on a terminal.

    Characters Python would not print in a ``repr`` (C0 and C1 controls such as ESC, DEL,
    newlines, bidirectional overrides, lone surrogates from undecodable names) are shown as
    Python escapes (``\\x1b``, ``\\n``, ``\\u202e``); everything else, backslashes
    included, is left as it is. A name can neither colour nor retitle the terminal, nor fake
    a line of output.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

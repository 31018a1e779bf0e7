"""Reading source text: refuse binary and undecodable input with a clear reason."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

#: Files above this size are refused by default; scoring them would take minutes on a CPU.
DEFAULT_MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class Source:
    """A decoded text and where it came from (a path, or ``-`` for stdin)."""

    name: str
    text: str


#: Why an input is not scored: more bytes than the limit, or NUL characters (binary data).
TOO_LARGE = "too large"
BINARY = "binary"


def input_problem(size: int, head: bytes | str, max_bytes: int | None) -> str | None:
    """``TOO_LARGE`` or ``BINARY`` for input of ``size`` UTF-8 bytes that starts with
    ``head``, or None when it can be scored.

    The CLI (bytes from disk) and the server (an editor's buffer) refuse the same inputs,
    each in its own words (a flag to raise, a setting to raise).
    """
    if max_bytes is not None and size > max_bytes:
        return TOO_LARGE
    if (b"\x00" if isinstance(head, bytes) else "\x00") in head[:8192]:
        return BINARY
    return None


_BOMS = (  # the 4-byte marks first: UTF-32LE's begins with UTF-16LE's
    (b"\xff\xfe\x00\x00", "UTF-32LE"),
    (b"\x00\x00\xfe\xff", "UTF-32BE"),
    (b"\xff\xfe", "UTF-16LE"),
    (b"\xfe\xff", "UTF-16BE"),
)


def wide_encoding(data: bytes) -> str | None:
    """``UTF-16LE`` and the like when ``data`` (NUL bytes in it) looks like text in a wide
    encoding: a byte-order mark, or mostly ASCII with every other byte NUL."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    head = data[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) == len(odd) and even.count(0) <= len(even) // 10:
        return "UTF-16LE"
    if even.count(0) == len(even) and odd.count(0) <= len(odd) // 10:
        return "UTF-16BE"
    return None


def decode_source(data: bytes, name: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> Source:
    """Decode ``data`` as UTF-8 source text, or raise :class:`InputError` saying why not."""
    problem = input_problem(len(data), data, max_bytes)
    if problem == TOO_LARGE:
        raise InputError(
            f"{name}: larger than the limit of {max_bytes:,} bytes (raise it with --max-bytes)"
        )
    if problem == BINARY:
        wide = wide_encoding(data)
        if wide:
            raise InputError(
                f"{name}: {wide} text, and lossmap reads UTF-8: convert it first"
                f" (iconv -f {wide} -t UTF-8)"
            )
        raise InputError(f"{name}: looks like a binary file (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"{name}: not valid UTF-8 (byte 0x{data[err.start]:02x}"
            f" at offset {err.start}, line {line}); if it is in a legacy encoding such as"
            " Latin-1, convert it to UTF-8 first"
        ) from None
    # A BOM is an encoding mark, not code the model should be scored on.
    text = text.removeprefix("\ufeff")
    return Source(name=name, text=text)


def read_source(path: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> Source:
    """Read a file (or stdin for ``-``) as UTF-8 source text."""
    if path == "-":
        return decode_source(sys.stdin.buffer.read(), "<stdin>", max_bytes)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory")
    if not p.is_file():  # devices and pipes: /dev/zero never ends, a FIFO may block
        raise InputError(f"{path}: not a regular file")
    try:
        with open(p, "rb") as f:
            # One byte past the limit is enough to refuse a huge file without reading it.
            data = f.read(-1 if max_bytes is None else max_bytes + 1)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    return decode_source(data, path, max_bytes)

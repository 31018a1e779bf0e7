"""Reading source text: refuse binary and undecodable input with a clear reason."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

#: Files above this size are refused by default; scoring them would take minutes on a CPU.
DEFAULT_MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class Source:
    """A decoded text and where it came from (a path, or ``-`` for stdin)."""

    name: str
    text: str


def size_or_binary_problem(
    size: int, head: bytes | str, name: str, max_bytes: int | None, limit_name: str
) -> str | None:
    """Why input of ``size`` UTF-8 bytes that starts with ``head`` is not scored, or None.

    The CLI (bytes from disk) and the server (an editor's buffer) refuse the same inputs.
    ``limit_name`` is how the user raises ``max_bytes`` (``--max-bytes``, a setting).
    """
    if max_bytes is not None and size > max_bytes:
        return f"{name}: larger than the limit of {max_bytes:,} bytes (raise it with {limit_name})"
    nul = b"\x00" if isinstance(head, bytes) else "\x00"
    if nul in head[:8192]:
        return f"{name}: looks like a binary file (it contains NUL bytes)"
    return None


def decode_source(data: bytes, name: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> Source:
    """Decode ``data`` as UTF-8 source text, or raise :class:`InputError` saying why not."""
    problem = size_or_binary_problem(len(data), data, name, max_bytes, "--max-bytes")
    if problem:
        raise InputError(problem)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"{name}: not valid UTF-8 (byte 0x{data[err.start]:02x}"
            f" at offset {err.start}, line {line})"
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

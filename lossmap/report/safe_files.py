"""Writing report and cache files without following symbolic links planted where they go."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_replacing(path: Path, text: str, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` by renaming a new file of the same directory over it.

    A symbolic link at ``path`` (``report.html -> ~/.bashrc``) is replaced by the file, never
    written through; readers never see a half-written file. ``newline`` is as for ``open``.
    """
    # A fresh name created exclusively: O_EXCL refuses even a link planted under that name.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any file written
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
        os.replace(tmp, path)  # renames over a link: the link goes, its target is untouched
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

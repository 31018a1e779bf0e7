"""What the server keeps for each open document besides its text (``documents.py``): the
latest result, the debounce timer, and what was last sent to the client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..analysis import FileAnalysis


@dataclass
class DocResult:
    """The latest finished analysis of a document, for the text it was made from."""

    version: int  # the client's version of that text
    revision: int  # the store's revision of that text (``OpenDocument.revision``)
    analysis: FileAnalysis
    seconds: float
    #: A local-first result: re-scored up to ``analysis.scored.fresh_until``; the full one
    #: follows for the same version.
    partial: bool = False
    pieces: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class DocState:
    result: DocResult | None = None
    timer: asyncio.TimerHandle | None = None
    last_edit: float = 0.0
    submitted_at: float = 0.0
    skipped: str | None = None  # why the current version is not scored
    told: set[str] = field(default_factory=set)  # messages already shown for this document
    tokens_sent: tuple[str, list[int]] | None = None  # (resultId, data) for full/delta
    pull_id: str | None = None  # resultId of the last full pull-diagnostic report
    pull_version: tuple | None = None  # (result revision, config) that report was made for
    edit_lines: set[int] = field(default_factory=set)  # 1-based lines edited since scoring

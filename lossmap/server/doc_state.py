"""What the server keeps for each open document besides its text (``documents.py``): the
latest result, the debounce timer, and what was last sent to the client."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from lsprotocol import types

from ..analysis import FileAnalysis
from ..analysis.syntax.offsets import count_line_breaks


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
    """One open document's result and bookkeeping (its text is in ``DocumentStore``)."""

    result: DocResult | None = None
    timer: asyncio.TimerHandle | None = None
    last_edit: float = 0.0
    submitted_at: float = 0.0
    skipped: str | None = None  # why the current version is not scored
    #: The model server was unreachable: seconds before the last retry (doubled on each
    #: failure, 0 after a result), and the pending retry's timer.
    retry_delay: float = 0.0
    retry_timer: asyncio.TimerHandle | None = None
    told: set[str] = field(default_factory=set)  # messages already shown for this document
    tokens_sent: tuple[str, list[int]] | None = None  # (resultId, data) for full/delta
    pull_id: str | None = None  # resultId of the last full pull-diagnostic report
    pull_version: tuple | None = None  # (result revision, config) that report was made for
    edit_lines: set[int] = field(default_factory=set)  # 1-based lines edited since scoring
    #: Later rounds of the current result's confirmation (see ``scheduling.confirm``).
    confirm_rounds: list[tuple[int, ...]] = field(default_factory=list)
    #: The 1-based (first, last) line spans the user sees (``lossmap/visibleRanges``).
    visible: list[tuple[int, int]] = field(default_factory=list)

    def cancel_retry(self) -> None:
        """Drop a pending retry of an unreachable model server (a scoring replaces it)."""
        if self.retry_timer is not None:
            self.retry_timer.cancel()
            self.retry_timer = None

    def note_edits(self, changes: Sequence[types.TextDocumentContentChangeEvent]) -> None:
        """Follow a didChange in ``edit_lines`` (the judge confirms them next time): lines
        below an edit move with it, and the lines it wrote are added."""
        for change in changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                first = change.range.start.line + 1
                breaks = count_line_breaks(change.text)
                added = breaks - (change.range.end.line - change.range.start.line)
                self.edit_lines = {n + added if n > first else n for n in self.edit_lines}
                self.edit_lines.update(range(first, first + breaks + 1))

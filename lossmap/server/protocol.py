"""lossmap's own LSP messages: their method and command names, and the JSON they carry.

``editors/vscode/src/protocol.ts`` mirrors this module: the keys here are the JSON field
names on the wire (camelCase), and a change to one side is a change to the other.
"""

from __future__ import annotations

from typing import TypedDict

#: Notification: a document's (re-)scored result is stored; its version and timing.
SCORES_READY = "lossmap/scoresReady"
#: Notification: the model server could not be reached; the last scores stay, stale.
SCORES_STALE = "lossmap/scoresStale"
#: Notification: the judge confirmed a document's suspicious lines two-sided.
TWO_SIDED_READY = "lossmap/twoSidedReady"
#: Notification (client -> server): the lines of a document the user sees; the judge confirms
#: their candidates before the rest of the file's.
VISIBLE_RANGES = "lossmap/visibleRanges"
#: Request: the per-token scores of a document's last result.
DOCUMENT_SCORES = "lossmap/documentScores"
#: Command (workspace/executeCommand): re-score a document now, or every open one.
CMD_RESCORE = "lossmap.rescore"
#: Command: the most surprising lines of a document.
CMD_MOST_SURPRISING = "lossmap.mostSurprising"


class LspPosition(TypedDict):
    line: int
    character: int


class LspRange(TypedDict):
    start: LspPosition
    end: LspPosition


class _TextDocument(TypedDict):
    uri: str


class VisibleRanges(TypedDict):
    """``lossmap/visibleRanges``: only the lines of the ranges are read."""

    textDocument: _TextDocument
    ranges: list[LspRange]


class TokenScore(TypedDict):
    """One non-whitespace token of a ``lossmap/documentScores`` answer."""

    range: LspRange
    text: str
    surprise: float
    codeSurprise: float | None
    margin: float | None
    probability: float
    rank: int | None  # None: past a model server's top-k
    entropy: float
    #: 0 (or None) below the display threshold, then 1..4 (surpriseLow .. surpriseSevere).
    level: int | None
    kind: str


class _DocumentScores(TypedDict):
    uri: str
    version: int
    #: The encoding of every range in the answer ("utf-16" for VS Code).
    positionEncoding: str
    displayThreshold: float
    tokens: list[TokenScore]


class DocumentScores(_DocumentScores, total=False):
    """The answer to ``lossmap/documentScores`` (None when the document has no result)."""

    #: More tokens than one answer holds: these are the first; ask by ``range`` for more.
    truncated: bool


class _ScoresReady(TypedDict):
    uri: str  # as the client sent it
    version: int
    seconds: float


class ScoresReady(_ScoresReady, total=False):
    """The parameters of ``lossmap/scoresReady``."""

    #: A local-first result around an edit; the full one follows for the same version.
    partial: bool
    #: Where the re-scored part of a partial result ends (None: it reaches the end).
    freshUntil: LspPosition | None


class ScoresStale(TypedDict):
    """The parameters of ``lossmap/scoresStale``: the document's scores are for an older
    version (``version``; None: there are none yet) because the model server could not be
    reached (``reason``); the server tries again and sends ``scoresReady`` when it answers."""

    uri: str
    version: int | None
    reason: str


class TwoSidedReady(TypedDict):
    """The parameters of ``lossmap/twoSidedReady``: every line with a two-sided verdict."""

    uri: str
    version: int
    lines: list[int]


class SurprisingSpot(TypedDict):
    """One entry of ``lossmap.mostSurprising``. ``line`` is 1-based; ``range`` is the worst
    token's, in the document's current text (``version``)."""

    version: int
    line: int
    range: LspRange
    margin: float | None
    twoSided: float | None
    judge: str | None
    suggestion: str | None
    token: str
    surprise: float | None
    expected: str | None
    expectedProbability: float | None
    code: str

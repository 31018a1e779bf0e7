"""Rank the changed lines of a change set by how much they surprise the model.

Each changed file is scored whole (the model sees the real context), then only its changed
lines compete, ranked across files by ``analysis.across_files`` (the causal top ``confirm``
confirmed by the judge, as ``scan`` does for a file's top lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..analysis import FileAnalysis, LoadedModel
from ..analysis.across_files import FileLines, RankedLine, RankedLines, rank_across_files
from ..analysis.progress import ProgressFn
from ..analysis.verdicts.levels import UNCONFIRMED_EXTRA_BITS
from ..analysis.verdicts.ranking import shown
from .git_changes import ChangedFile

#: Changed lines below this margin (bits) are not listed by default.
DEFAULT_REVIEW_THRESHOLD = 5.0
DEFAULT_REVIEW_MAX = 10


@dataclass(frozen=True)
class ReviewedLine:
    """One changed line worth a reviewer's look. Lines are 1-based; columns 0-based
    characters of the line; numbers in bits."""

    path: str
    line: int
    code: str  # the line, without its newline
    margin: float  # what ranks it: two-sided combined margin if confirmed, else causal
    causal_margin: float
    two_sided: float | None
    token: str  # the token the model least expected
    columns: tuple[int, int]  # that token's code (whitespace stripped) within the line
    surprise: float  # of that token, causal
    expected: str | None  # what the model expected there instead
    expected_probability: float | None
    suggestion: str | None  # what the model would write on the whole line (confirmed only)

    @property
    def confirmed(self) -> bool:
        return self.two_sided is not None


@dataclass
class FileReview:
    path: str
    status: str
    changed_lines: int
    analysis: FileAnalysis | None = None
    error: str | None = None


@dataclass
class Review:
    description: str
    model: str
    files: list[FileReview]
    lines: list[ReviewedLine]  # ranked, most surprising first, above the threshold
    threshold: float
    considered: int  # changed lines with code that were ranked
    notes: list[str] = field(default_factory=list)
    judge: str | None = None  # the model that confirmed lines two-sided
    #: What a line the judge did not confirm needs above ``threshold`` (its causal margin).
    unconfirmed_extra: float = UNCONFIRMED_EXTRA_BITS


def review_changes(
    loaded: LoadedModel,
    description: str,
    files: list[ChangedFile],
    confirm: int | None = None,
    threshold: float = DEFAULT_REVIEW_THRESHOLD,
    max_lines: int | None = DEFAULT_REVIEW_MAX,
    progress: Callable[[str], ProgressFn | None] | None = None,
    judge: LoadedModel | None = None,
) -> Review:
    """Score every changed file whole with ``loaded`` (the live model) and rank its changed
    lines against all the others; ``judge`` (default: ``loaded``) confirms the top
    ``confirm`` two-sided (None, the default: every changed line at or above ``threshold``).

    ``progress(path)`` may return a progress callback for that file's scoring.
    """
    judge = judge or loaded
    scored = [
        FileLines(f.path, f.text, tuple(f.lines)) for f in files if f.text is not None and f.lines
    ]
    ranked = rank_across_files(
        loaded, scored, confirm, judge=judge, progress=progress, threshold=threshold
    )
    reviews = [
        FileReview(f.path, f.status, len(f.lines), ranked.analyses.get(f.path), error=f.error)
        for f in files
    ]
    return review_of(
        ranked, description, loaded, judge if confirm != 0 else None, reviews, threshold, max_lines
    )


def review_of(
    ranked: RankedLines,
    description: str,
    live: LoadedModel,
    judge: LoadedModel | None,
    files: list[FileReview],
    threshold: float,
    max_lines: int | None,
    unconfirmed_extra: float = UNCONFIRMED_EXTRA_BITS,
) -> Review:
    """A :class:`Review` of lines ranked across files: those shown at ``threshold`` (the
    line ranking's rule: a line the judge did not confirm needs ``unconfirmed_extra`` bits
    more), at most ``max_lines``."""
    lines = [_reviewed(c) for c in ranked.lines]
    lines = [
        ln for ln in lines if shown(ln.causal_margin, ln.two_sided, threshold, unconfirmed_extra)
    ]
    return Review(
        description=description,
        model=live.name,
        judge=judge.name if judge is not None else None,
        files=files,
        lines=lines if max_lines is None else lines[:max_lines],
        threshold=threshold,
        considered=len(ranked.lines),
        notes=ranked.notes,
        unconfirmed_extra=unconfirmed_extra,
    )


def _reviewed(c: RankedLine) -> ReviewedLine:
    analysis, ln = c.analysis, c.line
    confirmed = analysis.two_sided.get(ln.line)
    combined = c.combined
    index = analysis.worst_token(ln)
    tok = analysis.tokens[index]
    expected, expected_p = None, None
    if confirmed is not None and index in confirmed.tokens:
        expected = confirmed.tokens[index].expected
    elif tok.alternatives:
        expected, expected_p = tok.alternatives[0].text, tok.alternatives[0].probability
    core_start, core_end = tok.core_span
    code = analysis.scored.text[ln.start : ln.end].rstrip("\r")
    return ReviewedLine(
        path=c.path,
        line=ln.line,
        code=code,
        margin=combined if combined is not None else ln.verdict,
        causal_margin=ln.verdict,
        two_sided=combined,
        token=tok.text.strip() or tok.text,
        columns=(max(core_start - ln.start, 0), max(min(core_end, ln.end) - ln.start, 0)),
        surprise=tok.surprise,
        expected=expected,
        expected_probability=expected_p,
        suggestion=confirmed.suggestion if confirmed is not None else None,
    )

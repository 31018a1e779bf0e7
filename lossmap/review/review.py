"""Rank the changed lines of a change set by how much they surprise the model.

Each changed file is scored whole (the model sees the real context), then only its changed
lines compete. The causal top ``confirm`` changed lines over all files are confirmed
two-sided, as ``scan`` does for a file's top lines: confirmed lines lead, ordered by their
combined margin; the rest follow by causal margin (see ``aggregate.rank_lines``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..analysis import FileAnalysis, LoadedModel, analyze_text
from ..analysis.analyze import confirm_two_sided
from ..analysis.progress import ProgressFn
from ..analysis.verdicts.lines import LineSummary
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


def review_changes(
    loaded: LoadedModel,
    description: str,
    files: list[ChangedFile],
    confirm: int = 8,
    threshold: float = DEFAULT_REVIEW_THRESHOLD,
    max_lines: int | None = DEFAULT_REVIEW_MAX,
    progress: Callable[[str], ProgressFn | None] | None = None,
    judge: LoadedModel | None = None,
) -> Review:
    """Score every changed file whole with ``loaded`` (the live model) and rank its changed
    lines against all the others; ``judge`` confirms the top ``confirm`` two-sided (default:
    ``loaded``).

    ``progress(path)`` may return a progress callback for that file's scoring.
    """
    judge = judge or loaded
    reviews: list[FileReview] = []
    candidates: list[tuple[FileReview, LineSummary]] = []
    for f in files:
        review = FileReview(f.path, f.status, len(f.lines), error=f.error)
        reviews.append(review)
        if f.text is None or not f.lines:
            continue
        analysis = analyze_text(
            loaded, f.text, name=f.path, progress=progress(f.path) if progress else None
        )
        review.analysis = analysis
        changed = set(f.lines)
        candidates += [
            (review, ln) for ln in analysis.lines if ln.line in changed and ln.verdict is not None
        ]
    candidates.sort(key=lambda c: -c[1].verdict)
    notes: list[str] = []
    if confirm and candidates:
        _confirm(judge, loaded, candidates[:confirm])
        # confirm_two_sided notes a model without fill-in-the-middle tokens per file.
        notes = sorted({n for fr, _ in candidates for n in fr.analysis.notes})
    lead = {
        id(ln): fr.analysis.two_sided[ln.line].combined
        for fr, ln in candidates[:confirm]
        if ln.line in fr.analysis.two_sided and fr.analysis.two_sided[ln.line].combined is not None
    }
    ranked = sorted(
        candidates,
        key=lambda c: (0, -lead[id(c[1])]) if id(c[1]) in lead else (1, -c[1].verdict),
    )
    lines = [_reviewed(fr, ln) for fr, ln in ranked]
    lines = [ln for ln in lines if ln.margin >= threshold]
    return Review(
        description=description,
        model=loaded.name,
        judge=judge.name if confirm else None,
        files=reviews,
        lines=lines if max_lines is None else lines[:max_lines],
        threshold=threshold,
        considered=len(candidates),
        notes=notes,
    )


def _confirm(
    judge: LoadedModel, live: LoadedModel, chosen: list[tuple[FileReview, LineSummary]]
) -> None:
    by_file: dict[int, tuple[FileReview, list[int]]] = {}
    for fr, ln in chosen:
        by_file.setdefault(id(fr), (fr, []))[1].append(ln.line)
    for fr, lines in by_file.values():
        # k=0: only these changed lines, not the file's own causal top lines.
        confirm_two_sided(judge, fr.analysis, 0, extra_lines=tuple(sorted(lines)), live=live)


def _reviewed(fr: FileReview, ln: LineSummary) -> ReviewedLine:
    analysis = fr.analysis
    confirmed = analysis.two_sided.get(ln.line)
    combined = confirmed.combined if confirmed is not None else None
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
        path=fr.path,
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

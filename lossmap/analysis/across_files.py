"""Lines of several files ranked against each other: a change set's changed lines (``lossmap
diff``) or a corpus's most surprising lines (``lossmap report``).

Each file is scored whole (the model sees the real context); only the given lines compete.
The causal top ``confirm`` of them over all files are confirmed by the judge, and the one
line ranking (:mod:`verdicts.ranking`) orders them by their verdicts: the judge's combined
margin where it looked, else the causal margin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .analyze import analyze_text
from .models.loading import LoadedModel
from .progress import ProgressFn
from .verdicts.confirm import confirm_top_lines
from .verdicts.file_analysis import FileAnalysis
from .verdicts.levels import DIAGNOSTIC_THRESHOLD
from .verdicts.lines import LineSummary
from .verdicts.ranking import rank


@dataclass(frozen=True)
class FileLines:
    """A file to score whole and the 1-based lines of it that compete."""

    path: str
    text: str
    lines: tuple[int, ...]


@dataclass(frozen=True)
class RankedLine:
    """One competing line, with the analysis of its file."""

    path: str
    analysis: FileAnalysis
    line: LineSummary

    @property
    def combined(self) -> float | None:
        """The judge's combined margin, when it confirmed the line."""
        confirmed = self.analysis.two_sided.get(self.line.line)
        return confirmed.combined if confirmed is not None else None


@dataclass
class RankedLines:
    analyses: dict[str, FileAnalysis]  # by path, for every file scored
    lines: list[RankedLine]  # every competing line with code, most surprising first
    notes: list[str]  # from confirmation (a judge without FIM tokens, another tokenizer)


def rank_across_files(
    live: LoadedModel,
    files: Sequence[FileLines],
    confirm: int | None,
    judge: LoadedModel | None = None,
    progress: Callable[[str], ProgressFn | None] | None = None,
    threshold: float = DIAGNOSTIC_THRESHOLD,
) -> RankedLines:
    """Score ``files`` with ``live`` and rank their given lines against each other; ``judge``
    (default: ``live``) confirms the causal top ``confirm`` (None: every given line whose
    causal verdict reaches ``threshold``). ``progress(path)`` may return a progress callback
    for that file's scoring."""
    judge = judge or live
    analyses: dict[str, FileAnalysis] = {}
    candidates: list[RankedLine] = []
    for f in files:
        analysis = analyze_text(
            live, f.text, name=f.path, progress=progress(f.path) if progress else None
        )
        analyses[f.path] = analysis
        wanted = set(f.lines)
        candidates += [
            RankedLine(f.path, analysis, ln)
            for ln in analysis.lines
            if ln.line in wanted and ln.verdict is not None
        ]
    by_verdict = sorted(candidates, key=lambda c: -c.line.verdict)
    if confirm is None:
        confirm = sum(c.line.verdict >= threshold for c in by_verdict)
    notes: list[str] = []
    if confirm and candidates:
        chosen: dict[str, list[int]] = {}
        for c in by_verdict[:confirm]:
            chosen.setdefault(c.path, []).append(c.line.line)
        for path, lines in chosen.items():
            # k=0: only these lines, not the file's own causal top lines.
            confirm_top_lines(judge, live, analyses[path], 0, extra_lines=tuple(sorted(lines)))
        notes = sorted({n for c in candidates for n in c.analysis.notes})
    ranked = rank(by_verdict, lambda c: c.line.verdict, lambda c: c.combined)
    return RankedLines(analyses, ranked, notes)

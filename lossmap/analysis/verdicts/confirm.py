"""Confirmation by the judge: the one way the CLI, the server, ``diff`` and ``report`` get
two-sided verdicts of lines (see :mod:`two_sided` for how a line is confirmed).

:func:`confirm` returns the verdicts without touching the analysis (the server's worker
confirms an analysis its event loop is showing); :func:`confirm_top_lines` chooses the
causal top lines and attaches the verdicts, for the commands that analyse a file once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..models.loading import LoadedModel
from ..models.roles import share_tokenizer
from ..progress import ProgressFn
from .file_analysis import FileAnalysis
from .levels import DIAGNOSTIC_THRESHOLD
from .two_sided import (
    DEFAULT_PREFIX_TOKENS,
    JUDGE_PIECE_TOKENS,
    TwoSidedLine,
    confirm_lines,
    fim_format,
)

#: Lines below this combined margin (bits) get no "the model would write" suggestion.
SUGGEST_MIN_BITS = 2.0


@dataclass(frozen=True)
class Confirmation:
    """The judge's verdicts of some lines of one analysis."""

    judge: str  # the judge's name
    #: Line -> verdict. Lines the judge did not reach (it was told to stop) are absent.
    lines: dict[int, TwoSidedLine]
    #: Why the verdicts are causal only (no fill-in-the-middle tokens) or per line (the
    #: judge tokenizes differently); None otherwise.
    note: str | None = None


def confirm(
    judge: LoadedModel,
    live: LoadedModel,
    analysis: FileAnalysis,
    lines: Sequence[int],
    progress: ProgressFn | None = None,
    suggest: bool = True,
    keep_going: Callable[[], bool] | None = None,
    prefix_tokens: int = DEFAULT_PREFIX_TOKENS,
    piece_tokens: int = JUDGE_PIECE_TOKENS,
) -> Confirmation:
    """Two-sided verdicts of ``lines`` (1-based) of ``analysis``, which ``live`` scored, by
    ``judge`` (may be ``live`` itself). ``suggest``: decode what the model would write on
    lines that look wrong; ``keep_going`` is asked between lines (and pieces of work);
    ``prefix_tokens``: how much code before a line the judge sees (``two_sided``);
    ``piece_tokens``: with ``keep_going``, the model work between two questions."""
    if fim_format(judge.tokenizer) is None:
        note = f"model '{judge.name}' has no fill-in-the-middle tokens: verdicts are causal only"
        return Confirmation(judge.name, {}, note)
    line_level = not share_tokenizer(live, judge)
    note = None
    if line_level:
        note = (
            f"judge '{judge.name}' tokenizes differently from '{live.name}':"
            " its verdicts are per line, not per token"
        )
    verdicts = confirm_lines(
        judge,
        analysis,
        list(lines),
        progress=progress,
        suggest=suggest,
        suggest_min=SUGGEST_MIN_BITS,
        keep_going=keep_going,
        line_level=line_level,
        judge_causal=judge is not live,
        prefix_tokens=prefix_tokens,
        piece_tokens=piece_tokens,
    )
    return Confirmation(judge.name, verdicts, note)


def candidate_lines(analysis: FileAnalysis, threshold: float) -> list[int]:
    """The lines whose causal verdict reaches ``threshold`` bits (the lines that would be
    diagnostics without the judge), most surprising first."""
    return [
        ln.line
        for ln in analysis.causal_top_lines()
        if ln.verdict is not None and ln.verdict >= threshold
    ]


def confirm_count(analysis: FileAnalysis, k: int | None, threshold: float) -> int:
    """How many causal top lines a budget covers: ``k``, or (``k`` None: ``--confirm all``)
    every line whose causal verdict reaches ``threshold``."""
    return len(candidate_lines(analysis, threshold)) if k is None else k


def lines_to_confirm(
    analysis: FileAnalysis,
    k: int | None,
    extra: tuple[int, ...] = (),
    threshold: float = DIAGNOSTIC_THRESHOLD,
) -> list[int]:
    """The causal top ``k`` lines (None: every line whose causal verdict reaches
    ``threshold``) plus those of ``extra`` that hold code (e.g. around the last edit, or a
    change set's changed lines), in file order."""
    top = [ln.line for ln in analysis.causal_top_lines(confirm_count(analysis, k, threshold))]
    with_code = {ln.line for ln in analysis.lines if ln.verdict is not None}
    return sorted(set(top) | (set(extra) & with_code))


def confirm_top_lines(
    judge: LoadedModel,
    live: LoadedModel,
    analysis: FileAnalysis,
    k: int | None,
    extra_lines: tuple[int, ...] = (),
    progress: ProgressFn | None = None,
    suggest: bool = True,
    threshold: float = DIAGNOSTIC_THRESHOLD,
) -> None:
    """Confirm the causal top ``k`` lines (None: every line whose causal verdict reaches
    ``threshold``) and ``extra_lines`` of ``analysis`` with ``judge`` and attach the verdicts
    to it; a note says when they are causal only or per line."""
    k = confirm_count(analysis, k, threshold)
    found = confirm(
        judge,
        live,
        analysis,
        lines_to_confirm(analysis, k, extra_lines),
        progress=progress,
        suggest=suggest,
    )
    if found.note and found.note not in analysis.notes:
        analysis.notes.append(found.note)
    if fim_format(judge.tokenizer) is None:
        return
    analysis.judge = found.judge
    analysis.two_sided = found.lines

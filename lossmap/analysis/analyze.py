"""One call from text to everything lossmap knows about it: scores, syntax, summaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models.loading import LoadedModel
from .models.roles import share_tokenizer
from .progress import ProgressFn
from .scoring.document_scorer import score_text
from .scoring.tokens import ScoredText, TokenScore
from .syntax.align import ParsedSource, TokenSyntax, align, parse
from .syntax.languages import language_for
from .verdicts.lines import (
    DefinitionSummary,
    LineSummary,
    rank_lines,
    summarize_definitions,
    summarize_lines,
)
from .verdicts.two_sided import TwoSidedLine, confirm_lines, fim_format, lines_to_confirm


@dataclass
class FileAnalysis:
    """Scores of one text aligned to its syntax tree, with line and definition summaries."""

    name: str
    language: str | None  # None: no grammar, tokens scored without syntax
    scored: ScoredText
    syntax: list[TokenSyntax]
    lines: list[LineSummary]
    definitions: list[DefinitionSummary]
    notes: list[str] = field(default_factory=list)
    #: Lines confirmed with two-sided (fill-in-the-middle) scoring: line -> TwoSidedLine.
    two_sided: dict[int, TwoSidedLine] = field(default_factory=dict)
    #: How many causal top lines the confirmation covered (they lead the ranking).
    confirm_k: int = 0
    #: The syntax tree (None without a grammar), for analyses that walk it again.
    parsed: ParsedSource | None = None
    #: The model that confirmed ``two_sided`` (the judge role), when any did.
    judge: str | None = None

    @property
    def tokens(self) -> list[TokenScore]:
        return self.scored.tokens

    def top_lines(self, n: int | None = None) -> list[LineSummary]:
        """The ``n`` most surprising lines: confirmed two-sided lines first, then causal."""
        return rank_lines(self.lines, n, self.two_sided, self.confirm_k)

    def worst_token(self, line: LineSummary) -> int | None:
        """The token that decided ``line``'s rank: two-sided when the line was confirmed."""
        confirmed = self.two_sided.get(line.line)
        if confirmed is not None and confirmed.worst_token is not None:
            return confirmed.worst_token
        return line.worst_token

    def causal_top_lines(self, n: int | None = None) -> list[LineSummary]:
        """The ``n`` most surprising lines by the causal verdict alone."""
        return rank_lines(self.lines, n)


def analyze_text(
    loaded: LoadedModel,
    text: str,
    name: str = "<text>",
    language: str | None = None,
    top_k: int = 5,
    window: int | None = None,
    min_context: int | None = None,
    progress: ProgressFn | None = None,
    confirm: int = 0,
    judge: LoadedModel | None = None,
) -> FileAnalysis:
    """Score ``text`` and align it to the grammar of ``language`` (or of ``name``'s extension).

    ``confirm``: re-score the causal top ``confirm`` lines two-sided (see :mod:`two_sided`)
    with ``judge`` (default: ``loaded`` itself).
    """
    scored = score_text(loaded, text, top_k, window, min_context, progress=progress)
    analysis = analyze_scored(scored, name, language)
    if confirm > 0:
        confirm_two_sided(judge or loaded, analysis, confirm, progress=progress, live=loaded)
    return analysis


def analyze_scored(scored: ScoredText, name: str, language: str | None = None) -> FileAnalysis:
    """Align scored text to the grammar of ``language`` (or of ``name``'s extension) and
    summarise it by line and definition."""
    notes = []
    lang = language_for(name, language)
    if language and lang is None:
        notes.append(f"no grammar for language '{language}': scored without syntax")
    text = scored.text
    parsed = parse(text, lang)
    syntax = align(text, [(t.start, t.end) for t in scored.tokens], parsed)
    return FileAnalysis(
        name=name,
        language=lang if parsed is not None else None,
        scored=scored,
        syntax=syntax,
        lines=summarize_lines(text, scored.tokens, syntax),
        definitions=summarize_definitions(text, scored.tokens, parsed),
        notes=notes,
        parsed=parsed,
    )


#: Lines below this combined margin (bits) get no "the model would write" suggestion.
SUGGEST_MIN_BITS = 2.0


def confirm_two_sided(
    judge: LoadedModel,
    analysis: FileAnalysis,
    k: int,
    extra_lines: tuple[int, ...] = (),
    progress: ProgressFn | None = None,
    suggest: bool = True,
    live: LoadedModel | None = None,
) -> None:
    """Confirm the causal top ``k`` lines (and ``extra_lines``) two-sided with ``judge``,
    in place. ``live``: the model that scored ``analysis`` (default: the judge itself).

    ``suggest``: decode what the model would write on lines that look wrong.
    """
    if fim_format(judge.tokenizer) is None:
        _note(analysis, f"model '{judge.name}' has no fill-in-the-middle tokens:"
              " verdicts are causal only")  # fmt: skip
        return
    line_level = live is not None and not share_tokenizer(live, judge)
    if line_level:
        _note(analysis, f"judge '{judge.name}' tokenizes differently from '{live.name}':"
              " its verdicts are per line, not per token")  # fmt: skip
    lines = lines_to_confirm(analysis, k, extra_lines)
    analysis.confirm_k = k
    analysis.judge = judge.name
    analysis.two_sided = confirm_lines(
        judge,
        analysis,
        lines,
        progress=progress,
        suggest=suggest,
        suggest_min=SUGGEST_MIN_BITS,
        line_level=line_level,
        judge_causal=live is not None and live is not judge,
    )


def _note(analysis: FileAnalysis, note: str) -> None:
    if note not in analysis.notes:
        analysis.notes.append(note)

"""One call from text to everything lossmap knows about it: scores, syntax, summaries, and
(when asked) the judge's two-sided verdicts of the top lines."""

from __future__ import annotations

from .models.loading import LoadedModel
from .progress import ProgressFn
from .scoring.document_scorer import score_text
from .scoring.tokens import ScoredText
from .syntax.align import align, parse
from .syntax.languages import language_for
from .verdicts.confirm import confirm_top_lines
from .verdicts.file_analysis import FileAnalysis
from .verdicts.lines import summarize_definitions, summarize_lines

__all__ = ["FileAnalysis", "analyze_scored", "analyze_text"]


def analyze_text(
    loaded: LoadedModel,
    text: str,
    name: str = "<text>",
    language: str | None = None,
    top_k: int = 5,
    window: int | None = None,
    min_context: int | None = None,
    progress: ProgressFn | None = None,
    confirm: int | None = 0,
    judge: LoadedModel | None = None,
) -> FileAnalysis:
    """Score ``text`` and align it to the grammar of ``language`` (or of ``name``'s extension).

    ``confirm``: re-score the causal top ``confirm`` lines two-sided (see
    :mod:`verdicts.two_sided`) with ``judge`` (default: ``loaded`` itself); None: every line
    whose causal verdict reaches the diagnostic threshold.
    """
    scored = score_text(loaded, text, top_k, window, min_context, progress=progress)
    analysis = analyze_scored(scored, name, language)
    if confirm is None or confirm > 0:
        confirm_top_lines(judge or loaded, loaded, analysis, confirm, progress=progress)
    return analysis


def analyze_scored(scored: ScoredText, name: str, language: str | None = None) -> FileAnalysis:
    """Align scored text to the grammar of ``language`` (or of ``name``, or of a ``#!`` line) and
    summarise it by line and definition."""
    notes = []
    text = scored.text
    lang = language_for(name, language, text)
    if lang is None:
        notes.append(
            f"no grammar for language '{language}': scored without syntax"
            if language
            else f"no language known from the name '{name}' or a #! line: scored without"
            " syntax (name the language to align tokens to a grammar)"
        )
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

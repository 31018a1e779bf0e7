"""One call from text to everything lossmap knows about it: scores, syntax, summaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from .aggregate import (
    DefinitionSummary,
    LineSummary,
    rank_lines,
    summarize_definitions,
    summarize_lines,
)
from .languages import language_for
from .model_loading import LoadedModel
from .scoring import ProgressFn, ScoredText, TokenScore, score_text
from .syntax import TokenSyntax, align, parse


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

    @property
    def tokens(self) -> list[TokenScore]:
        return self.scored.tokens

    def top_lines(self, n: int | None = None) -> list[LineSummary]:
        """The ``n`` most surprising lines by verdict (see :mod:`aggregate`)."""
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
) -> FileAnalysis:
    """Score ``text`` and align it to the grammar of ``language`` (or of ``name``'s extension)."""
    notes = []
    lang = language_for(name, language)
    if language and lang is None:
        notes.append(f"no grammar for language '{language}': scored without syntax")
    scored = score_text(loaded, text, top_k, window, min_context, progress=progress)
    parsed = parse(text, lang)
    spans = [(t.start, t.end) for t in scored.tokens]
    syntax = align(text, spans, parsed)
    return FileAnalysis(
        name=name,
        language=lang if parsed is not None else None,
        scored=scored,
        syntax=syntax,
        lines=summarize_lines(text, scored.tokens, syntax),
        definitions=summarize_definitions(text, scored.tokens, parsed),
        notes=notes,
    )

"""The product of the pipeline for one text: scores aligned to syntax, line and definition
summaries, and the judge's two-sided verdicts of the lines it confirmed."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from ..scoring.tokens import ScoredText, TokenScore
from ..syntax.align import ParsedSource, TokenSyntax
from .lines import DefinitionSummary, LineSummary
from .ranking import cleared, rank_lines
from .two_sided import TwoSidedLine


class ListedLines(NamedTuple):
    """Lines as a list shows them, and how many the judge cleared were left out."""

    lines: list[LineSummary]
    cleared: int


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
    #: The syntax tree (None without a grammar), for analyses that walk it again.
    parsed: ParsedSource | None = None
    #: The model that confirmed ``two_sided`` (the judge role), when any did.
    judge: str | None = None

    @property
    def tokens(self) -> list[TokenScore]:
        return self.scored.tokens

    @cached_property
    def line_of_token(self) -> list[int]:
        """The 1-based line of each token (its first non-whitespace character's line)."""
        out = [0] * len(self.tokens)
        for ln in self.lines:
            for i in ln.token_indices:
                out[i] = ln.line
        return out

    @cached_property
    def _token_starts(self) -> list[int]:
        return [t.start for t in self.tokens]

    def token_at(self, offset: int) -> int | None:
        """Index of the token covering character ``offset`` (the one before it at a
        boundary); None before the first. Logarithmic: request handlers call it."""
        i = bisect.bisect_right(self._token_starts, offset) - 1
        while i >= 0 and self.tokens[i].start == self.tokens[i].end:  # split characters
            i -= 1
        return i if i >= 0 else None

    def line_summary(self, line: int) -> LineSummary | None:
        """The summary of 1-based ``line``, if the text has it."""
        if 1 <= line <= len(self.lines) and self.lines[line - 1].line == line:
            return self.lines[line - 1]
        return next((ln for ln in self.lines if ln.line == line), None)

    def top_lines(self, n: int | None = None) -> list[LineSummary]:
        """The ``n`` most surprising lines by their verdicts: the judge's where it has looked,
        else causal (see ``ranking``)."""
        return rank_lines(self.lines, n, self.two_sided)

    def listed_lines(self, n: int | None, threshold: float) -> ListedLines:
        """The ``n`` (None: all) most surprising lines as lists show them (``scan``'s table,
        the editor's most-surprising list): the lines the judge cleared (below ``threshold``
        once it looked) left out and counted."""
        shown, dropped = [], 0
        for ln in self.top_lines():
            confirmed = self.two_sided.get(ln.line)
            if cleared(ln.verdict, confirmed.combined if confirmed else None, threshold):
                dropped += 1
            elif n is None or len(shown) < n:
                shown.append(ln)
        return ListedLines(shown, dropped)

    def worst_token(self, line: LineSummary) -> int | None:
        """The token that decided ``line``'s rank: two-sided when the line was confirmed."""
        confirmed = self.two_sided.get(line.line)
        if confirmed is not None and confirmed.worst_token is not None:
            return confirmed.worst_token
        return line.worst_token

    def causal_top_lines(self, n: int | None = None) -> list[LineSummary]:
        """The ``n`` most surprising lines by the causal verdict alone."""
        return rank_lines(self.lines, n)

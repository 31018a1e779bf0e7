"""Per-line features for the experimental line ranker (``ranker.py``), from one file's analysis.

Every feature is read off what the causal pass already gives (token scores aligned to the
syntax tree): no model runs here, and nothing is specific to one language: token categories
come from the tree-sitter leaves a token touches (a name, a literal, any other symbol), the
enclosing definition from ``find_definitions``' summaries. Only code tokens that count in a
verdict (``lines.counted_margin``: not the first tokens of a file; names being bound or
imported with their discount) enter the margin features, so the ranker inherits the verdict
rules' treatment of fresh names and of the file's start.

A line without a counted code token has no features (it has no verdict either).
"""

from __future__ import annotations

import math
import statistics
from typing import NamedTuple

from lossmap.analysis.syntax.align import CODE, PROSE, TokenSyntax
from lossmap.analysis.verdicts.lines import DefinitionSummary, LineSummary, counted_margin

#: The features, in the order of a feature vector (the ranker file names them too).
FEATURES: tuple[str, ...] = (
    "verdict",  # the line's verdict: the largest counted margin (bits)
    "second",  # the second largest counted margin (0 with one token)
    "sum_pos",  # log2(1 + sum of positive counted margins)
    "n_surprising",  # counted tokens with a margin of at least 3 bits
    "mean_surprise",  # mean code surprise of the counted tokens (bits)
    "max_entropy",  # the largest entropy of the model's prediction at a counted token (bits)
    "n_tokens",  # log2(1 + counted tokens)
    "relative",  # verdict minus the median verdict of the enclosing definition's lines
    "name_max",  # largest counted margin at a name (0 if none)
    "symbol_max",  # ... at an operator, keyword or punctuation
    "literal_max",  # ... at a number or other literal
    "bound_share",  # share of counted tokens that are names being bound or imported
    "has_prose",  # the line holds string contents or a comment
    "header",  # the line starts a definition
)

_LITERAL_WORDS = ("integer", "float", "number", "true", "false", "none", "null", "nil", "char")


class LineFeatures(NamedTuple):
    """The feature vector of one line (``FEATURES`` order)."""

    line: int
    values: tuple[float, ...]


def token_category(syntax: TokenSyntax) -> str:
    """``name``, ``literal`` or ``symbol``, from the leaves the token touches."""
    for leaf in syntax.leaf_types:
        if leaf.endswith("identifier") or leaf == "name":
            return "name"
    for leaf in syntax.leaf_types:
        if any(w in leaf for w in _LITERAL_WORDS):
            return "literal"
    return "symbol"


def _innermost(definitions: list[DefinitionSummary], line_count: int) -> list[int]:
    """For each 1-based line (index 0 unused), the index of its innermost definition, or -1."""
    owner = [-1] * (line_count + 2)
    # Outer definitions come first (document order, outermost first): inner ones overwrite.
    for k, d in sorted(enumerate(definitions), key=lambda kd: (kd[1].start_line, -kd[1].end_line)):
        for n in range(d.start_line, min(d.end_line, line_count) + 1):
            owner[n] = k
    return owner


def line_features(
    lines: list[LineSummary],
    tokens: list,
    syntax: list[TokenSyntax],
    definitions: list[DefinitionSummary],
) -> dict[int, LineFeatures]:
    """Line -> features for every line with a verdict."""
    owner = _innermost(definitions, len(lines))
    headers = {d.start_line for d in definitions}
    by_owner: dict[int, list[float]] = {}
    for ln in lines:
        if ln.verdict is not None:
            by_owner.setdefault(owner[ln.line], []).append(ln.verdict)
    medians = {k: statistics.median(v) for k, v in by_owner.items()}

    out: dict[int, LineFeatures] = {}
    for ln in lines:
        if ln.verdict is None:
            continue
        counted: list[tuple[int, float]] = []
        prose = False
        for i in ln.token_indices:
            syn = syntax[i]
            if syn.kind != CODE:
                prose = prose or syn.kind == PROSE
                continue
            m = counted_margin(tokens[i].code_margin, syn, i)
            if m is not None:
                counted.append((i, m))
        margins = sorted((m for _, m in counted), reverse=True)
        by_cat = {"name": 0.0, "symbol": 0.0, "literal": 0.0}
        for i, m in counted:
            c = token_category(syntax[i])
            by_cat[c] = max(by_cat[c], m)
        surprises = [tokens[i].code_surprise or 0.0 for i, _ in counted]
        entropies = [tokens[i].entropy for i, _ in counted if tokens[i].entropy is not None]
        values = (
            ln.verdict,
            margins[1] if len(margins) > 1 else 0.0,
            math.log2(1 + sum(m for m in margins if m > 0)),
            float(sum(m >= 3 for m in margins)),
            sum(surprises) / len(surprises),
            max(entropies, default=0.0),
            math.log2(1 + len(counted)),
            ln.verdict - medians[owner[ln.line]],
            by_cat["name"],
            by_cat["symbol"],
            by_cat["literal"],
            sum(syntax[i].role is not None for i, _ in counted) / len(counted),
            float(prose),
            float(ln.line in headers),
        )
        out[ln.line] = LineFeatures(ln.line, values)
    return out


def analysis_features(analysis) -> dict[int, LineFeatures]:
    """``line_features`` of a ``FileAnalysis``."""
    return line_features(analysis.lines, analysis.tokens, analysis.syntax, analysis.definitions)

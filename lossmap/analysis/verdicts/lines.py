"""Summaries per line and per named definition, and the tokenizer-artifact policy.

The policy (why a line is called surprising):

- A line's *verdict* is the largest whitespace-insensitive margin (``code_margin``) among its
  **code** tokens: how much likelier the model's first choice was than what is written.
  Layout tokens (whitespace only) never count; prose tokens (comments,
  string contents) stay scored and visible but do not make a line surprising, because natural
  language is far less predictable than code and would otherwise crowd out real findings.
- Whitespace-insensitive: tokens whose texts are equal once whitespace is stripped form one
  class (see :mod:`token_classes`). ``code_surprise`` is -log2 of the actual token's class
  probability, so ``)\\n\\n\\n`` is not surprising merely because the model expected ``)\\n``;
  it never exceeds the raw surprise. ``code_margin`` is log2 of the likeliest class's
  probability minus log2 of the actual class's: zero when the model's first choice was taken.
- Margin, not raw surprise: a fresh name or literal is unlikely because the model had many
  good options, not because it was sure of another. Margin discounts those and keeps tokens
  where the model firmly expected something else (``benchmarks/bugloc`` measures every
  ranking side by side: margin ranked planted bugs higher than surprise; see RESULTS.md).
- The max, not the mean: a single-token bug is diluted by the ordinary tokens around it.
- Names being bound and import statements (``syntax.roles``: a new variable, parameter,
  function or class name, an import's modules and names) count ``ROLE_DISCOUNT_BITS``
  less: a fresh name is the author's choice, not something the code before it could
  predict. A wrong name where a name is *used* keeps its full margin.
- The first ``MIN_CONTEXT_TOKENS`` tokens of a file do not count: the model has seen no code
  yet (``package``, ``import``, ``#!`` are 10-20 bits after the start-of-text token alone, in
  any file).

``counted_margin`` applies these rules to one token; line verdicts, the judge's combined
verdicts and the editor's diagnostics all go through it. Chosen on real bugs and clean code in
whole files (``benchmarks/realbugs``, RESULTS.md).

A token belongs to the line where its first non-whitespace character is.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from typing import Any

from ..scoring.tokens import TokenScore
from ..syntax.align import CODE, LAYOUT, ParsedSource, TokenSyntax
from ..syntax.offsets import LineIndex, byte_to_char_offsets


@dataclass(frozen=True)
class LineSummary:
    """One source line. ``line`` is 1-based; surprises are bits."""

    line: int
    start: int  # character offsets of the line, newline excluded
    end: int
    token_indices: tuple[int, ...]
    mean_surprise: float | None  # mean code_surprise over non-layout tokens
    max_surprise: float | None  # max code_surprise over non-layout tokens
    verdict: float | None  # max counted_margin over code tokens: what ranks lines
    worst_token: int | None  # index of the token that gave the verdict


@dataclass(frozen=True)
class DefinitionSummary:
    """A named function, method or class; perplexity is 2 ** mean surprise (bits)."""

    name: str
    kind: str  # function | method | class
    node_type: str
    start_line: int  # 1-based, inclusive
    end_line: int
    start: int  # character offsets
    end: int
    token_count: int
    mean_surprise: float | None
    perplexity: float | None
    worst_token: int | None


#: Bits a name being bound or imported counts less in a verdict (None: it does not count).
ROLE_DISCOUNT_BITS: float | None = 8.0
#: Tokens at the start of a file that count in no verdict (a BOS token is not among them).
MIN_CONTEXT_TOKENS = 16


def counted_margin(margin: float | None, syntax: TokenSyntax, index: int) -> float | None:
    """What token ``index``'s ``margin`` (causal, or its two-sided token verdict) counts in
    its line's verdict; None when it does not count (not code, or no context yet)."""
    if margin is None or syntax.kind != CODE or index < MIN_CONTEXT_TOKENS:
        return None
    if syntax.role is not None:
        return None if ROLE_DISCOUNT_BITS is None else margin - ROLE_DISCOUNT_BITS
    return margin


def why_not_counted(syntax: TokenSyntax, index: int) -> str | None:
    """In words, why a code token counts less (or not at all) in its line's verdict."""
    if syntax.kind != CODE:
        return None
    if index < MIN_CONTEXT_TOKENS:
        return "the first tokens of a file count in no verdict: the model has seen no code yet"
    if syntax.role is not None:
        what = "a name being bound" if syntax.role == "binding" else "part of an import"
        if ROLE_DISCOUNT_BITS is None:
            return f"{what}: a fresh name is the author's choice, it counts in no verdict"
        return (
            f"{what}: a fresh name is the author's choice, it counts"
            f" {ROLE_DISCOUNT_BITS:g} bits less in its line's verdict"
        )
    return None


def token_line_anchor(tok: TokenScore) -> int:
    """Character offset that decides a token's line: its first non-whitespace character."""
    return tok.core_span[0]


def summarize_lines(
    text: str, tokens: list[TokenScore], syntax: list[TokenSyntax]
) -> list[LineSummary]:
    """Per-line summaries for every line of ``text``."""
    index = LineIndex(text)
    per_line: list[list[int]] = [[] for _ in range(index.line_count)]
    for tok in tokens:
        per_line[index.line_of(token_line_anchor(tok))].append(tok.index)
    lines = []
    for n, members in enumerate(per_line):
        start, end = index.line_span(n)
        visible = [
            tokens[i]
            for i in members
            if syntax[i].kind != LAYOUT and tokens[i].code_surprise is not None
        ]
        counted = {
            t.index: m
            for t in visible
            if (m := counted_margin(t.code_margin, syntax[t.index], t.index)) is not None
        }
        worst = max(counted, key=counted.__getitem__) if counted else None
        lines.append(
            LineSummary(
                line=n + 1,
                start=start,
                end=end,
                token_indices=tuple(members),
                mean_surprise=(
                    sum(t.code_surprise for t in visible) / len(visible) if visible else None
                ),
                max_surprise=max((t.code_surprise for t in visible), default=None),
                verdict=counted[worst] if worst is not None else None,
                worst_token=worst,
            )
        )
    return lines


_DEF_TYPE = re.compile(
    r"(function|method|class|struct|interface|trait|impl|enum|constructor)"
    r"\w*_(definition|declaration|item|specifier)$"
)
_CLASS_WORDS = ("class", "struct", "interface", "trait", "impl", "enum")


def _definition_name(node: Any) -> str | None:
    name = node.child_by_field_name("name")
    if name is None and node.type == "impl_item":
        name = node.child_by_field_name("type")
    decl = node.child_by_field_name("declarator")
    while name is None and decl is not None:  # C/C++: int *f(int x) { ... }
        if decl.type in ("identifier", "field_identifier", "qualified_identifier"):
            name = decl
            break
        decl = decl.child_by_field_name("declarator")
    if name is None or name.text is None:
        return None
    return name.text.decode("utf-8", errors="replace")


def find_definitions(parsed: ParsedSource) -> list[tuple[Any, str, str]]:
    """(node, name, kind) for named definitions, outermost first, in document order."""
    found = []
    stack = [(parsed.root, None)]  # (node, kind of the nearest enclosing definition)
    while stack:
        node, enclosing = stack.pop()
        kind = enclosing
        is_def = _DEF_TYPE.search(node.type) is not None
        # C/C++ `struct s x;` is a specifier without a body: a use, not a definition.
        if is_def and node.type.endswith("_specifier") and node.child_by_field_name("body") is None:
            is_def = False
        if is_def:
            if any(w in node.type.split("_") for w in _CLASS_WORDS):
                kind = "class"  # even unnamed: its functions are methods
            elif "method" in node.type or "constructor" in node.type or enclosing == "class":
                kind = "method"
            else:
                kind = "function"
            name = _definition_name(node)
            if name is not None:
                found.append((node, name, kind))
        for child in reversed(node.named_children):
            stack.append((child, kind))
    return found


def summarize_definitions(
    text: str, tokens: list[TokenScore], parsed: ParsedSource | None
) -> list[DefinitionSummary]:
    """Mean surprise and perplexity (all scored tokens) of each named definition."""
    if parsed is None:
        return []
    defs = find_definitions(parsed)
    if not defs:
        return []
    chars = byte_to_char_offsets(text, [b for n, _, _ in defs for b in (n.start_byte, n.end_byte)])
    anchors = [token_line_anchor(t) for t in tokens]
    out = []
    for k, (node, name, kind) in enumerate(defs):
        start, end = chars[2 * k], chars[2 * k + 1]
        lo, hi = bisect.bisect_left(anchors, start), bisect.bisect_left(anchors, end)
        scored = [t for t in tokens[lo:hi] if t.surprise is not None]
        mean = sum(t.surprise for t in scored) / len(scored) if scored else None
        worst = max(scored, key=lambda t: t.code_surprise) if scored else None
        out.append(
            DefinitionSummary(
                name=name,
                kind=kind,
                node_type=node.type,
                start_line=node.start_point[0] + 1,
                end_line=node.end_point[0] + 1,
                start=start,
                end=end,
                token_count=hi - lo,
                mean_surprise=mean,
                perplexity=math.pow(2.0, mean) if mean is not None else None,
                worst_token=worst.index if worst else None,
            )
        )
    return out

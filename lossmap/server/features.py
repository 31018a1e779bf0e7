"""LSP views of a FileAnalysis: semantic tokens, diagnostics, hover, scores. Pure functions.

The custom messages' entries (``lossmap/documentScores`` tokens, ``lossmap.mostSurprising``
spots) are built here in the shapes ``protocol.py`` declares."""

from __future__ import annotations

from typing import Protocol

from lsprotocol import types

from ..analysis import FileAnalysis
from ..analysis.scoring.tokens import TokenScore
from ..analysis.syntax.align import LAYOUT, PROSE
from ..analysis.syntax.offsets import LINE_BREAK
from ..analysis.verdicts.levels import LEVEL_COUNT, surprise_level
from ..analysis.verdicts.lines import counted_margin, why_not_counted
from ..analysis.verdicts.ranking import shown
from ..analysis.verdicts.two_sided import token_verdict
from . import protocol
from .config import ServerConfig
from .positions import PositionMapper

#: One custom semantic token type per surprise level, lowest first.
TOKEN_TYPES = ["surpriseLow", "surpriseMedium", "surpriseHigh", "surpriseSevere"]
#: ``prose``: the token is in a comment or string.
TOKEN_MODIFIERS = ["prose"]
LEGEND = types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)
assert len(TOKEN_TYPES) == LEVEL_COUNT

SOURCE = "lossmap"
DIAGNOSTIC_CODE = "surprise"
_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


class Placement(Protocol):
    """Where character spans of an analysed text go in the client's text: a
    ``PositionMapper`` (the same text) or a ``ShiftedPositions`` (None: the edit touched it)."""

    def range(self, start: int, end: int) -> types.Range | None: ...


def code_pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The non-whitespace part of ``text[start:end]`` on each line it spans (LSP lines)."""
    pieces = []
    pos = start
    while pos < end:
        brk = LINE_BREAK.search(text, pos, end)
        line_end = end if brk is None else brk.start()
        segment = text[pos:line_end]
        stripped = segment.strip()
        if stripped:
            lead = len(segment) - len(segment.lstrip())
            pieces.append((pos + lead, pos + lead + len(stripped)))
        pos = end if brk is None else brk.end()
    return pieces


def _show(s: str) -> str:
    return s.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t").replace("`", "'")


def _short(s: str) -> str:
    """Token text for a one-line message: without surrounding whitespace unless that is all."""
    return _show(s.strip() or s)


def surprising_pieces(analysis: FileAnalysis, threshold: float) -> list[tuple[int, int, int, int]]:
    """(start, end, type index, modifier bits) of each single-line piece to highlight.

    Only tokens at or above ``threshold`` appear; layout never does. Pieces are the
    non-whitespace part of a token on each line it spans, so they never overlap.
    """
    pieces = []
    text = analysis.scored.text
    for tok, syn in zip(analysis.tokens, analysis.syntax, strict=True):
        if syn.kind == LAYOUT:
            continue
        level = surprise_level(tok.code_surprise, threshold)
        if not level:
            continue
        modifiers = 1 if syn.kind == PROSE else 0
        for start, end in code_pieces(text, tok.start, tok.end):
            pieces.append((start, end, level - 1, modifiers))
    return pieces


def encode_semantic_tokens(
    pieces: list[tuple[int, int, int, int]],
    mapper: PositionMapper,
    line_range: tuple[int, int] | None = None,
) -> list[int]:
    """The LSP integer encoding of ``pieces`` (relative lines and columns, code-unit lengths)."""
    data: list[int] = []
    prev_line, prev_char = 0, 0
    for start, end, token_type, modifiers in pieces:
        pos = mapper.position(start)
        if line_range and not line_range[0] <= pos.line <= line_range[1]:
            continue
        delta_line = pos.line - prev_line
        delta_char = pos.character - prev_char if delta_line == 0 else pos.character
        data += [delta_line, delta_char, mapper.length(start, end), token_type, modifiers]
        prev_line, prev_char = pos.line, pos.character
    return data


def semantic_token_edits(old: list[int], new: list[int]) -> list[types.SemanticTokensEdit]:
    """One edit turning ``old`` into ``new`` (common prefix and suffix kept); [] if equal."""
    if old == new:
        return []
    n = min(len(old), len(new))
    prefix = 0
    while prefix < n and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < n - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return [
        types.SemanticTokensEdit(
            start=prefix,
            delete_count=len(old) - prefix - suffix,
            data=new[prefix : len(new) - suffix],
        )
    ]


def _expected(tok: TokenScore) -> str:
    best = tok.alternatives[0] if tok.alternatives else None
    if best is None or best.token_id == tok.token_id:
        return "it was the model's first choice"
    return f"it expected `{_short(best.text)}` (p={best.probability:.2g})"


def diagnostics(
    analysis: FileAnalysis, placement: Placement, config: ServerConfig
) -> list[types.Diagnostic]:
    """ "Model is confused here": spans of adjacent surprising code tokens, worst first.

    Spans that ``placement`` cannot place in the client's text (an edit touched them) are
    left out.

    On lines confirmed two-sided a token counts with the smaller of its causal and two-sided
    margins (it must look wrong from the code before it *and* from the code around it), which
    must reach ``confirmed_extra_bits`` more than the threshold; elsewhere with its causal
    margin, which must reach ``unconfirmed_extra_bits`` more (the line ranking's rule), and
    the message says so.
    """
    line_of = analysis.line_of_token
    hits: list[tuple[int, float]] = []
    threshold = config.diagnostic_threshold
    extra, confirmed_extra = config.unconfirmed_extra_bits, config.confirmed_extra_bits
    for tok, syn in zip(analysis.tokens, analysis.syntax, strict=True):
        causal = counted_margin(tok.code_margin, syn, tok.index)
        if causal is None:
            continue
        line = analysis.two_sided.get(line_of[tok.index])
        if line is not None and tok.index in line.tokens:
            # The same number the line's combined verdict takes.
            judged = counted_margin(token_verdict(tok, line.tokens[tok.index]), syn, tok.index)
        elif line is not None and line.line_level and line.two_sided is not None:
            # A judge with its own tokens: min(counted causal, two-sided), as its line verdict.
            judged = min(causal, line.two_sided)
        else:
            judged = None  # the judge gave neither this token nor its line a number
        score = causal if judged is None else judged
        if not shown(causal, judged, threshold, extra, confirmed_extra):
            continue
        if syn.in_error and not config.diagnostics_in_error_regions:
            continue
        hits.append((tok.index, score))
    spans: list[list[tuple[int, float]]] = []
    for hit in hits:
        if spans and spans[-1][-1][0] == hit[0] - 1:
            spans[-1].append(hit)
        else:
            spans.append([hit])
    found = []
    for span in spans:
        worst_index, score = max(span, key=lambda h: h[1])
        worst = analysis.tokens[worst_index]
        start = analysis.tokens[span[0][0]].core_span[0]
        end = analysis.tokens[span[-1][0]].core_span[1]
        message = (
            f"model is confused here: `{_short(worst.text)}` costs"
            f" {worst.surprise:.1f} bits (p={worst.probability:.2g}); {_expected(worst)}"
        )
        confirmed = analysis.two_sided.get(line_of[worst_index])
        by = f" by {analysis.judge}" if analysis.judge else ""
        if confirmed is not None and confirmed.carried:
            by += " (from before an edit)"
        two_sided_ok = True
        if confirmed is not None and worst_index in confirmed.tokens:
            two = confirmed.tokens[worst_index]
            message += (
                f"; confirmed two-sided{by}: {two.code_margin:.1f} bits with the code after it"
            )
            if confirmed.suggestion:
                message += f"; the model would write `{_show(confirmed.suggestion.strip())}`"
        elif confirmed is not None and confirmed.line_level and confirmed.two_sided is not None:
            message += f"; line confirmed two-sided{by}: {confirmed.two_sided:.1f} bits"
        else:
            message += " (causal only)"
            two_sided_ok = False
        found.append((score, start, end, message, worst_index, two_sided_ok))
    found.sort(key=lambda f: -f[0])
    placed = []
    for score, start, end, message, index, two_sided_ok in found:
        if len(placed) == config.max_diagnostics:
            break  # placing is per span, from its line start: only those published
        rng = placement.range(start, end)
        if rng is not None:
            placed.append((score, rng, message, index, two_sided_ok))
    return [
        types.Diagnostic(
            range=rng,
            message=message,
            severity=_SEVERITY[config.diagnostic_severity],
            source=SOURCE,
            code=DIAGNOSTIC_CODE,
            data={
                "margin": round(score, 3),
                "token": index,
                "twoSided": two_sided_ok,
                "judge": analysis.judge if two_sided_ok else None,
            },
        )
        for score, rng, message, index, two_sided_ok in placed
    ]


def _line_tokens(analysis: FileAnalysis, line: int) -> tuple[int, ...]:
    found = analysis.line_summary(line)
    return found.token_indices if found is not None else ()


def hover_markdown(analysis: FileAnalysis, index: int) -> str:
    """Hover text for token ``index``: its numbers, its place in the tree, what was expected."""
    tok, syn = analysis.tokens[index], analysis.syntax[index]
    out = [f"**lossmap** · `{_show(tok.text)}`"]
    if not tok.scored:
        out.append(
            "\nnot scored: the first token of a file without a BOS token has no context"
            " (with llama-cpp-python's server: the first token after its BOS)"
        )
    else:
        # A model server tells the rank within its top-k only (``scoring.remote_stats``).
        rank = tok.rank if tok.rank is not None else f"> {len(tok.alternatives)}"
        out.append(
            f"\nsurprise **{tok.surprise:.2f} bits** (p={tok.probability:.3g}) · rank {rank}"
            f" · entropy {tok.entropy:.2f} bits · margin {tok.code_margin:.2f} bits"
        )
    why = why_not_counted(syn, index)
    if why and tok.scored:
        out.append(f"\n{why}")
    if syn.node_type:
        path = " › ".join(syn.path)
        out.append(f"\nnode `{syn.node_type}` ({syn.kind}{', in ERROR' if syn.in_error else ''})")
        out.append(f"\n{path}")
    else:
        out.append(f"\n{syn.kind} (no syntax tree for this language)")
    line = next((ts for ts in analysis.two_sided.values() if index in ts.tokens), None)
    if line is not None:
        two = line.tokens[index]
        expected = f"; it expected `{_show(two.expected)}`" if two.expected else ""
        when = ", from before an edit" if line.carried else ""
        out.append(
            f"\ntwo-sided (with the code after it, {analysis.judge}{when}):"
            f" surprise {two.surprise:.2f} bits"
            f" · margin {two.code_margin:.2f} bits{expected}"
        )
    else:
        judged = next(
            (
                ts
                for ts in analysis.two_sided.values()
                if ts.line_level and index in _line_tokens(analysis, ts.line)
            ),
            None,
        )
        if judged is not None and judged.two_sided is not None:
            out.append(
                f"\nline judged two-sided by {analysis.judge}: margin {judged.two_sided:.2f} bits"
                " (its tokenizer differs: no per-token numbers)"
            )
    if tok.alternatives:
        out.append("\n| model expected | p |\n|---|---|")
        for alt in tok.alternatives:
            mark = " ✓" if alt.token_id == tok.token_id else ""
            out.append(f"| `{_show(alt.text)}`{mark} | {alt.probability:.3f} |")
    line = analysis.line_summary(analysis.line_of_token[index])
    context = []
    if line is not None and line.mean_surprise is not None:
        context.append(f"line {line.line}: mean {line.mean_surprise:.2f} bits")
    enclosing = [
        d for d in analysis.definitions if d.start <= tok.start < d.end and d.mean_surprise
    ]
    if enclosing:
        d = min(enclosing, key=lambda d: d.end - d.start)
        context.append(f"{d.kind} `{d.name}`: mean {d.mean_surprise:.2f} bits")
    if context:
        out.append("\n" + " · ".join(context))
    return "\n".join(out)


def _core_range_json(tok: TokenScore, placement: Placement) -> protocol.LspRange | None:
    """The JSON range of a token without its surrounding whitespace (None: not placed)."""
    r = placement.range(*tok.core_span)
    if r is None:
        return None
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def document_scores(
    analysis: FileAnalysis,
    mapper: PositionMapper,
    threshold: float,
    lines: tuple[int, int] | None = None,
    min_level: int = 0,
    limit: int | None = None,
) -> tuple[list[protocol.TokenScore], bool]:
    """Per-token scores of every non-layout token at ``min_level`` or above (on 0-based
    ``lines`` first..last, if given), with ranges in the negotiated encoding; at most
    ``limit`` of them.

    Returns the scores and whether some were left out for the limit.
    """
    out: list[protocol.TokenScore] = []
    for tok, syn in zip(analysis.tokens, analysis.syntax, strict=True):
        if syn.kind == LAYOUT or not tok.scored:
            continue
        level = surprise_level(tok.code_surprise, threshold)
        if (level or 0) < min_level:
            continue
        rng = _core_range_json(tok, mapper)
        if lines is not None and not lines[0] <= rng["start"]["line"] <= lines[1]:
            if rng["start"]["line"] > lines[1]:
                break
            continue
        if limit is not None and len(out) >= limit:
            return out, True
        out.append(
            {
                "range": rng,
                "text": tok.text,
                "surprise": tok.surprise,
                "codeSurprise": tok.code_surprise,
                "margin": tok.code_margin,
                "probability": tok.probability,
                "rank": tok.rank,
                "entropy": tok.entropy,
                "level": level,
                "kind": syn.kind,
            }
        )
    return out, False


def most_surprising(
    analysis: FileAnalysis, placement: Placement, n: int, version: int, threshold: float
) -> list[protocol.SurprisingSpot]:
    """The ``n`` most surprising lines: the worst token's range and what was expected.

    Lines whose worst token ``placement`` cannot place (an edit touched it) are left out, and
    so are lines the judge cleared (below ``threshold`` once it looked), as in ``scan``;
    ``version`` is the client's version of the text ``placement`` places in.
    """
    out: list[protocol.SurprisingSpot] = []
    for ln in analysis.listed_lines(None, threshold).lines:
        if len(out) == n:
            break
        confirmed = analysis.two_sided.get(ln.line)
        tok = analysis.tokens[analysis.worst_token(ln)]
        best = tok.alternatives[0] if tok.alternatives else None
        rng = _core_range_json(tok, placement)
        if rng is None:
            continue
        out.append(
            {
                "line": rng["start"]["line"] + 1,
                "range": rng,
                "margin": ln.verdict,
                "twoSided": confirmed.combined if confirmed is not None else None,
                "judge": analysis.judge if confirmed is not None else None,
                "suggestion": confirmed.suggestion if confirmed is not None else None,
                "token": tok.text,
                "surprise": tok.surprise,
                "expected": best.text if best else None,
                "expectedProbability": best.probability if best else None,
                "code": analysis.scored.text[ln.start : ln.end].strip(),
                "version": version,
            }
        )
    return out

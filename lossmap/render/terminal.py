"""The terminal view of ``lossmap scan``: code with a per-token heat map, then the top lines."""

from __future__ import annotations

import re

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..analysis import FileAnalysis
from ..analysis.syntax.align import CODE, LAYOUT, PROSE
from ..analysis.verdicts.levels import DIAGNOSTIC_THRESHOLD, LEVEL_STEP, surprise_level
from ..analysis.verdicts.lines import MIN_CONTEXT_TOKENS
from .safe_text import terminal_safe

#: A CR that is not part of CRLF.
LONE_CR = re.compile(r"\r(?!\n)")
# Dark text on light tints and light text on strong ones read on dark and light terminals.
LEVEL_STYLES = ("black on #ffe58f", "black on #ffb366", "white on #e0483b", "bold white on #9b1d5c")


def _printable(s: str) -> str:
    """Text safe to print: CR dropped, control characters other than tab and newline shown
    as escapes."""
    s = s.replace("\r", "")
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() or ch in "\t\n" else f"\\x{ord(ch):02x}" for ch in s)


def heatmap(analysis: FileAnalysis, threshold: float) -> Text:
    """The source with a line-number gutter and a background tint on surprising tokens."""
    # A lone CR ends a line (the LSP definition, as in the line numbers of the verdicts):
    # made a newline here, one character for one, so the offsets below stay valid.
    text = LONE_CR.sub("\n", analysis.scored.text)
    styles: list[tuple[int, int, str]] = []
    for tok, syn in zip(analysis.tokens, analysis.syntax, strict=True):
        if syn.kind == LAYOUT:
            continue
        level = surprise_level(tok.code_surprise, threshold)
        if level:
            start, end = tok.core_span  # tint the code, not its whitespace
            style = LEVEL_STYLES[level - 1] + (" italic" if syn.kind == PROSE else "")
            styles.append((start, end, style))
    # Built piece by piece, each piece made printable on its own, so styles cannot drift
    # when characters are dropped (CR of CRLF) or widened (other control characters).
    body = Text()
    pos = 0
    for start, end, style in styles:
        body.append(_printable(text[pos:start]))
        body.append(_printable(text[start:end]), style=style)
        pos = end
    body.append(_printable(text[pos:]))
    lines = body.split("\n", allow_blank=True)
    if len(lines) > 1 and text.endswith("\n"):
        lines = lines[:-1]  # the empty line after the final newline
    out = Text(no_wrap=False)
    width = len(str(len(lines)))
    for n, line in enumerate(lines, start=1):
        out.append(f"{n:>{width}} │ ", style="dim")
        out.append_text(line)
        out.append("\n")
    return out


def _show(s: str) -> str:
    """Token text with newlines and tabs made visible."""
    return s.replace("\n", "\\n").replace("\t", "\\t")


def top_lines_table(analysis: FileAnalysis, top: int, unit: str = "bits") -> Table:
    """The ``top`` most surprising lines, with the token and what the model expected; lines
    the judge cleared are left out (a caption counts them)."""
    scale = 0.6931471805599453 if unit == "nats" else 1.0
    # Every string from the file goes in as Text: never parsed as rich markup.
    title = f"most surprising lines of {terminal_safe(analysis.name)}"
    if analysis.judge:
        title += f" (2-sided: judged by {_printable(analysis.judge)})"
    table = Table(title=Text(title), title_justify="left")
    table.add_column("line", justify="right", no_wrap=True)
    table.add_column(unit, justify="right", no_wrap=True)
    table.add_column("2-sided", justify="right", no_wrap=True)
    # Both text columns share the width; what the model expected must never be squeezed out.
    table.add_column("written → expected", overflow="fold", ratio=1, min_width=20)
    table.add_column("code", overflow="ellipsis", no_wrap=True, max_width=28)
    text = analysis.scored.text
    ranked, dropped = analysis.listed_lines(top, DIAGNOSTIC_THRESHOLD)
    if dropped:
        table.caption = Text(
            f"{dropped} line{'s' if dropped > 1 else ''} at or above {DIAGNOSTIC_THRESHOLD:g}"
            " bits cleared by the judge: not listed"
        )
    for ln in ranked:
        confirmed = analysis.two_sided.get(ln.line)
        tok = analysis.tokens[analysis.worst_token(ln)]
        best = tok.alternatives[0] if tok.alternatives else None
        written = f"`{_show(tok.text)}` (p={tok.probability:.2g})"
        if best is None:
            change = written
        elif best.token_id == tok.token_id:
            change = f"{written}, the model's first choice"
        else:
            change = f"{written} → `{_show(best.text)}` (p={best.probability:.2g})"
        two_sided = "—"
        if confirmed is not None and confirmed.combined is not None:
            two_sided = f"{confirmed.combined * scale:.1f}"
            if (
                confirmed.suggestion
                and confirmed.suggestion.strip() != text[ln.start : ln.end].strip()
            ):
                change += f"; would write `{confirmed.suggestion.strip()}`"
        table.add_row(
            str(ln.line),
            f"{ln.verdict * scale:.1f}",
            two_sided,
            Text(_printable(change)),
            Text(_printable(text[ln.start : ln.end].strip())),
        )
    return table


def render_file(
    console: Console,
    analysis: FileAnalysis,
    threshold: float,
    top: int,
    unit: str = "bits",
    show_code: bool = True,
) -> None:
    """Print one file's heat map and top lines."""
    scored = [t.surprise for t in analysis.tokens if t.surprise is not None]
    scale = 0.6931471805599453 if unit == "nats" else 1.0
    summary = f"  {analysis.language or 'no grammar'} · {len(analysis.tokens)} tokens"
    if scored:
        mean = sum(scored) / len(scored)
        summary += f" · mean surprise {mean * scale:.2f} {unit} · perplexity {2.0**mean:.2f}"
    else:
        summary += " · nothing scored"
    header = Text.assemble((terminal_safe(analysis.name), "bold"), summary)
    parts = [header]
    parts += [Text(f"note: {_printable(n)}", style="yellow") for n in analysis.notes]
    if show_code:
        parts.append(heatmap(analysis, threshold))
        legend = Text("levels: ")
        for i, style in enumerate(LEVEL_STYLES):
            lo = threshold + i * LEVEL_STEP
            label = f" ≥{lo:g} bits " if i == 3 else f" {lo:g}–{lo + LEVEL_STEP:g} bits "
            legend.append(label, style=style)
            legend.append(" ")
        parts.append(legend)
    console.print(Group(*parts))
    if top > 0:
        if analysis.top_lines(1):
            console.print(top_lines_table(analysis, top, unit))
        else:
            console.print(Text(_nothing_ranked(analysis), style="dim"))


def _nothing_ranked(analysis: FileAnalysis) -> str:
    """Why a file has no lines to rank (a short file's tokens only set the context)."""
    code = [i for i, s in enumerate(analysis.syntax) if s.kind == CODE]
    if code and max(code) < MIN_CONTEXT_TOKENS:
        return (
            f"no lines to rank: the first {MIN_CONTEXT_TOKENS} tokens of a file are not ranked"
            " (the model has seen no code before them), and this file has no code after them"
        )
    return "no lines with scored code to rank"

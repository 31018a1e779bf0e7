"""``lossmap diff`` output: a terminal table, markdown for a pull-request comment, and JSON.

The JSON document is versioned like the scan document: see ``docs/diff.md``. SARIF lives in
:mod:`sarif`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from .. import __version__
from ..review.review import Review, ReviewedLine
from .terminal import _printable, _show, terminal_safe

SCHEMA_NAME = "lossmap.diff"
SCHEMA_VERSION = 1


def _change(ln: ReviewedLine) -> str:
    """ "`written` → `expected` (p=…)", plus what the model would write on the line."""
    out = f"`{_show(ln.token)}`"
    if ln.expected is not None and ln.expected.strip() != ln.token.strip():
        p = f" (p={ln.expected_probability:.2g})" if ln.expected_probability is not None else ""
        out += f" → `{_show(ln.expected.strip())}`{p}"
    if ln.suggestion and ln.suggestion.strip() != ln.code.strip():
        out += f"; would write `{ln.suggestion.strip()}`"
    return out


def _summary(review: Review) -> str:
    n_files = sum(1 for f in review.files if f.analysis is not None)
    return (
        f"{review.description}: {review.considered} changed lines with code in {n_files}"
        f" file{'s' if n_files != 1 else ''}, {len(review.lines)} at or above"
        f" {review.threshold:g} bits ({_models(review)})"
    )


def _models(review: Review) -> str:
    if review.judge is None or review.judge == review.model:
        return f"model {review.model}"
    return f"model {review.model}, judge {review.judge}"


def render_text(console: Console, review: Review) -> None:
    """The ranked changed lines, compiler-style: where, how surprising, the line with the
    token marked, and what the model expected (coloured when the console is a terminal)."""
    console.print(Text(_printable(_summary(review)), style="bold"))
    for f in review.files:
        if f.error:
            console.print(Text(f"skipped: {terminal_safe(f.error)}", style="yellow"))
    for note in review.notes:
        console.print(Text(f"note: {_printable(note)}", style="yellow"))
    if not review.lines:
        console.print(Text("nothing surprising in the changed lines", style="green"))
        return
    width = len(str(len(review.lines)))
    for rank, ln in enumerate(review.lines, start=1):
        how = "two-sided" if ln.confirmed else "causal only"
        head = Text(f"\n{rank:>{width}}. ")
        head.append(terminal_safe(f"{ln.path}:{ln.line}"), style="bold cyan")
        head.append(f"  {ln.margin:.1f} bits ({how})", style="dim")
        console.print(head)
        indent = " " * (width + 2)
        code = _printable(ln.code.replace("\t", "    "))
        line = Text(indent + code)
        prefix = _printable(ln.code[: ln.columns[0]].replace("\t", "    "))
        token = _printable(ln.code[ln.columns[0] : ln.columns[1]].replace("\t", "    "))
        start = len(indent) + len(prefix)
        if token:
            line.stylize("bold white on #e0483b", start, start + len(token))
        console.print(line)
        marker = Text(" " * start + "^" * max(len(token), 1), style="bold red")
        marker.append(" " + _printable(_change(ln)))
        console.print(marker)
    if any(not ln.confirmed for ln in review.lines):
        console.print(Text("\ncausal only: not confirmed two-sided (see --confirm)", style="dim"))


def _md_cell(s: str) -> str:
    """Text for a markdown table cell: pipes escaped, no line breaks."""
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", "")


def _md_code(s: str) -> str:
    """Inline code that survives backticks inside ``s`` (backslashes are literal there)."""
    s = s.replace("|", "\\|").replace("\n", " ").replace("\r", "")
    fence = "``" if "`" in s else "`"
    return f"{fence} {s} {fence}" if fence == "``" else f"`{s}`"


def render_markdown(review: Review) -> str:
    """A pull-request comment: a summary line and a table of the ranked lines."""
    out = ["### lossmap: surprising changed lines", "", _md_cell(_summary(review)), ""]
    for f in review.files:
        if f.error:
            out.append(f"- skipped: {_md_cell(f.error)}")
    out += [f"- note: {_md_cell(n)}" for n in review.notes]
    if not review.lines:
        out.append("Nothing in the changed lines surprised the model.")
        return "\n".join(out) + "\n"
    out += [
        "| # | where | bits | written | expected | code |",
        "|--:|---|--:|---|---|---|",
    ]
    for rank, ln in enumerate(review.lines, start=1):
        expected = ln.expected if ln.expected is not None else ""
        if ln.suggestion and ln.suggestion.strip() != ln.code.strip():
            expected = f"{expected} (line: {ln.suggestion.strip()})" if expected else ln.suggestion
        bits = f"{ln.margin:.1f}" + ("" if ln.confirmed else "\\*")
        out.append(
            f"| {rank} | {_md_cell(f'{ln.path}:{ln.line}')} | {bits} | {_md_code(ln.token)}"
            f" | {_md_code(expected.strip()) if expected.strip() else ''}"
            f" | {_md_code(ln.code.strip())} |"
        )
    if any(not ln.confirmed for ln in review.lines):
        out += ["", "\\* causal only (not confirmed two-sided)"]
    out += [
        "",
        f"<sub>lossmap {__version__}: bits = how much less likely the model found the"
        " code than its first choice.</sub>",
    ]
    return "\n".join(out) + "\n"


def review_document(review: Review) -> dict[str, Any]:
    """The versioned JSON document of a review."""
    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "lossmap_version": __version__,
        "model": review.model,
        "judge": review.judge,
        "changes": review.description,
        "unit": "bits",
        "threshold": review.threshold,
        "unconfirmed_extra_bits": review.unconfirmed_extra,
        "considered_lines": review.considered,
        "lines": [
            {
                "path": ln.path,
                "line": ln.line,
                "code": ln.code,
                "margin": round(ln.margin, 6),
                "causal_margin": round(ln.causal_margin, 6),
                "two_sided_margin": None if ln.two_sided is None else round(ln.two_sided, 6),
                "token": ln.token,
                "columns": list(ln.columns),
                "surprise": round(ln.surprise, 6),
                "expected": ln.expected,
                "expected_probability": ln.expected_probability,
                "suggestion": ln.suggestion,
            }
            for ln in review.lines
        ],
        "files": [
            {"path": f.path, "status": f.status, "changed_lines": f.changed_lines, "error": f.error}
            for f in review.files
        ],
        "notes": review.notes,
    }

"""``lossmap report`` outputs: a JSON document, CSV tables and one self-contained HTML page.

The JSON shape is versioned (schema ``lossmap.report``): see ``docs/report.md``. The HTML
page draws its charts as inline SVG: no scripts, no network, one file to open or attach.
"""

from __future__ import annotations

import csv
import html
import io
import json
import statistics
from pathlib import Path
from typing import Any

from .. import __version__
from ..report.records import CorpusReport, Stats
from ..report.safe_files import write_replacing
from ..review.review import Review
from .diff import review_document

SCHEMA_NAME = "lossmap.report"
SCHEMA_VERSION = 1


def _table(stats: dict[str, Stats], min_count: int = 1) -> list[dict[str, Any]]:
    rows = [{"key": k, **s.row()} for k, s in stats.items() if s.count >= min_count]
    return sorted(rows, key=lambda r: (-r["count"], r["key"]))


def report_document(
    report: CorpusReport,
    model: str,
    min_count: int,
    skipped: list[tuple[str, str]],
    judged: Review | None = None,
) -> dict[str, Any]:
    """The versioned JSON document (surprises in bits). ``judged``: the corpus's lines to
    look at (see report.judged_lines)."""

    def ranked(table: str, best: bool) -> list[dict[str, Any]]:
        return [{"key": k, **s.row()} for k, s in report.ranked(table, min_count, best)]

    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "lossmap_version": __version__,
        "model": model,
        "judge": judged.judge if judged is not None else None,
        "unit": "bits",
        "min_count": min_count,
        "files": report.files,
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "labels": _table(report.labels),
        "node_types": _table(report.node_types),
        "bpe_tokens": _table(report.bpe_tokens, min_count),
        "best": {
            "labels": ranked("labels", True),
            "node_types": ranked("node_types", True),
            "bpe_tokens": ranked("bpe_tokens", True),
        },
        "worst": {
            "labels": ranked("labels", False),
            "node_types": ranked("node_types", False),
            "bpe_tokens": ranked("bpe_tokens", False),
        },
        "syntax_errors": _table(report.syntax_errors),
        "calls": _table(report.calls),
        "definitions": report.definitions,
        "lines_to_look_at": review_document(judged)["lines"] if judged is not None else [],
    }


def write_csv(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """One CSV per table of the document, text cells safe in a spreadsheet (see
    :func:`csv_cell`); returns the files written."""
    written = []
    for name in ("labels", "node_types", "bpe_tokens", "syntax_errors", "calls", "files"):
        written.append(_csv(out_dir / f"{name}.csv", doc[name]))
    written.append(_csv(out_dir / "definitions.csv", doc["definitions"]))
    written.append(_csv(out_dir / "lines_to_look_at.csv", _flat(doc["lines_to_look_at"])))
    return written


def _flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without list values (CSV cells hold scalars)."""
    return [{k: v for k, v in row.items() if not isinstance(v, list)} for row in rows]


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` safe in a spreadsheet: a text cell that would start a formula (a BPE token
    ``=``, a file named ``=HYPERLINK(...).py``) gets a leading ``'``; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    buffer = io.StringIO(newline="")
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    write_replacing(path, buffer.getvalue(), newline="")
    return path


# -- HTML --------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;
color:#1d2330;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:2px 10px;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even){background:#f4f6f9}
code{font:12px ui-monospace,monospace;background:#eef1f5;padding:0 3px;border-radius:3px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem}.note{color:#5b6475}
svg text{font:11px ui-monospace,monospace;fill:#1d2330}
@media (prefers-color-scheme: dark){body{background:#15181e;color:#dfe3ea}
tr:nth-child(even){background:#1e232b}code{background:#262c36}svg text{fill:#dfe3ea}}
"""
_GOOD, _BAD, _MID = "#3b8bd9", "#e0483b", "#8a63d2"


def _bars(rows: list[tuple[str, Stats]], color: str, width: int = 520) -> str:
    """Horizontal bars of mean surprise with a one-std whisker, one row per entry."""
    if not rows:
        return "<p class=note>not enough tokens</p>"
    top = max(s.mean + s.std for _, s in rows) or 1.0
    label_w, bar_w, h = 230, width - 340, 18  # room on the right for "12.34 (n=1234)"
    parts = [f'<svg width="{width}" height="{h * len(rows) + 6}" role="img">']
    for i, (key, s) in enumerate(rows):
        y = i * h + 3
        w = bar_w * s.mean / top
        whisker = bar_w * min(s.mean + s.std, top) / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{html.escape(_short(key))}'
            f"</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{h - 6}" fill="{color}">'
            f"<title>{html.escape(key)}: mean {s.mean:.2f} bits, std {s.std:.2f}, n={s.count}"
            f"</title></rect>"
            f'<line x1="{label_w + w:.1f}" x2="{label_w + whisker:.1f}" y1="{y + h / 2:.1f}"'
            f' y2="{y + h / 2:.1f}" stroke="{color}" stroke-width="1.5"/>'
            f'<text x="{label_w + whisker + 4:.1f}" y="{y + 12}">{s.mean:.2f} (n={s.count})'
            f"</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _boxes(samples: dict[str, list[float]], keys: list[str], width: int = 1000) -> str:
    """Box plots (quartiles, 1.5 IQR whiskers) of the surprise of ``keys``."""
    keys = [k for k in keys if len(samples.get(k, ())) >= 2]
    if not keys:
        return "<p class=note>not enough tokens</p>"
    label_w, h = 260, 22
    plot_w = width - label_w - 20
    top = max(max(samples[k]) for k in keys) or 1.0
    parts = [f'<svg width="{width}" height="{h * len(keys) + 24}" role="img">']
    for i, key in enumerate(keys):
        xs = sorted(samples[key])
        q1, med, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        iqr = q3 - q1
        lo = min(x for x in xs if x >= q1 - 1.5 * iqr)
        hi = max(x for x in xs if x <= q3 + 1.5 * iqr)
        y = i * h + 4

        def sx(v: float) -> float:
            return label_w + plot_w * v / top

        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{html.escape(_short(key))}'
            f"</text>"
            f'<line x1="{sx(lo):.1f}" x2="{sx(hi):.1f}" y1="{y + 9}" y2="{y + 9}"'
            f' stroke="{_MID}"/>'
            f'<rect x="{sx(q1):.1f}" y="{y + 2}" width="{max(sx(q3) - sx(q1), 1):.1f}"'
            f' height="14" fill="{_MID}" fill-opacity=".35" stroke="{_MID}">'
            f"<title>{html.escape(key)}: median {med:.2f}, quartiles {q1:.2f}–{q3:.2f} bits,"
            f" n={len(xs)}</title></rect>"
            f'<line x1="{sx(med):.1f}" x2="{sx(med):.1f}" y1="{y + 2}" y2="{y + 16}"'
            f' stroke="{_MID}" stroke-width="2"/>'
        )
    axis_y = h * len(keys) + 18
    for v in range(0, int(top) + 1, max(1, int(top) // 8)):
        parts.append(f'<text x="{label_w + plot_w * v / top:.1f}" y="{axis_y}">{v}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short(key: str, n: int = 34) -> str:
    key = key.replace("\n", "\\n").replace("\t", "\\t")
    return key if len(key) <= n else key[: n - 1] + "…"


def _rows_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    out = ["<table><tr>"]
    out += [f"<th class={'n' if k != 'key' else ''}>{html.escape(t)}</th>" for k, t in columns]
    out.append("</tr>")
    for r in rows:
        out.append("<tr>")
        for k, _ in columns:
            v = r.get(k)
            if isinstance(v, float):
                out.append(f"<td class=n>{v:.2f}</td>")
            elif isinstance(v, int):
                out.append(f"<td class=n>{v}</td>")
            else:
                out.append(f"<td><code>{html.escape(_short(str(v), 60))}</code></td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _judged_html(doc: dict[str, Any]) -> str:
    lines = doc["lines_to_look_at"]
    if not lines:
        return ""
    judge = doc["judge"]
    how = (
        f"confirmed two-sided by <code>{html.escape(judge)}</code> (with the code after them)"
        if judge
        else "causal only (no judge)"
    )
    rows = [
        {
            "where": f"{ln['path']}:{ln['line']}",
            "bits": f"{ln['margin']:.1f}" + ("" if ln["two_sided_margin"] is not None else "*"),
            "written": ln["token"],
            "expected": (ln["suggestion"] or ln["expected"] or "").strip(),
            "code": ln["code"].strip(),
        }
        for ln in lines
    ]
    return (
        "<h2>Lines to look at</h2><p class=note>the most surprising lines of the whole code"
        f" base, {how}; * causal only</p>"
        + _rows_table(
            rows,
            [
                ("where", "where"),
                ("bits", "bits"),
                ("written", "written"),
                ("expected", "expected"),
                ("code", "code"),
            ],
        )
    )


def render_html(report: CorpusReport, doc: dict[str, Any]) -> str:
    """The self-contained HTML report."""
    min_count = doc["min_count"]
    n_tokens = sum(s.count for s in report.node_types.values())
    common = sorted(report.samples, key=lambda k: -len(report.samples[k]))[:12]
    stat_cols = [("key", "key"), ("count", "tokens"), ("mean", "mean"), ("std", "std")]
    errors = [(k, s) for k, s in report.syntax_errors.items() if s.count]
    calls = [(k, s) for k, s in report.calls.items() if s.count]
    # Perplexity over a handful of tokens is noise: tables need enough tokens to mean much.
    big = max(min_count, 50)
    definitions = [
        d for d in report.definitions if d.get("perplexity") is not None and d["tokens"] >= big
    ][:15]
    files = [f for f in report.files if f["perplexity"] is not None and f["tokens"] >= big]
    body = [
        f"<h1>lossmap report</h1><p>{len(report.files)} files, {n_tokens:,} scored tokens,"
        f" model <code>{html.escape(doc['model'])}</code>. Surprise is −log₂ p in bits;"
        f" lower means the model found the code more predictable. Tables count tokens outside"
        f" whitespace; rankings need at least {min_count} tokens.</p>",
        "<h2>AST labels ⟨parent → leaf⟩</h2><div class=grid><div><h3>10 best</h3>",
        _bars(report.ranked("labels", min_count, True), _GOOD),
        "</div><div><h3>10 worst</h3>",
        _bars(report.ranked("labels", min_count, False), _BAD),
        "</div></div><h3>The most common labels</h3>",
        _boxes(report.samples, common),
        "<h2>Node types</h2><div class=grid><div><h3>10 best</h3>",
        _bars(report.ranked("node_types", min_count, True), _GOOD),
        "</div><div><h3>10 worst</h3>",
        _bars(report.ranked("node_types", min_count, False), _BAD),
        "</div></div>",
        "<h2>Syntactically incorrect code and method calls</h2><div class=grid><div>",
        "<h3>Inside ERROR nodes vs elsewhere</h3>",
        _bars(errors, _MID),
        "</div><div><h3>Called names: internal, builtin, external</h3>",
        _bars(calls, _MID),
        "<p class=note>internal: the called name is defined somewhere in this code base;"
        " builtin: a Python builtin; external: anything else (libraries).</p></div></div>",
        "<h2>BPE tokens</h2><div class=grid><div><h3>10 best</h3>",
        _rows_table(doc["best"]["bpe_tokens"], stat_cols),
        "</div><div><h3>10 worst</h3>",
        _rows_table(doc["worst"]["bpe_tokens"], stat_cols),
        f"</div></div><h2>The most surprising definitions</h2><p class=note>with at least"
        f" {big} tokens</p>",
        _rows_table(
            definitions,
            [
                ("name", "name"),
                ("path", "file"),
                ("start_line", "line"),
                ("tokens", "tokens"),
                ("perplexity", "perplexity"),
            ],
        ),
        _judged_html(doc),
        f"<h2>Files</h2><p class=note>with at least {big} tokens, most perplexing first</p>",
        _rows_table(
            sorted(files, key=lambda f: -f["perplexity"]),
            [("path", "file"), ("tokens", "tokens"), ("perplexity", "perplexity")],
        ),
        f"<p class=note>lossmap {__version__} · data: report.json and the CSV files beside"
        " this page.</p>",
    ]
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width'>"
        f"<title>lossmap report</title><style>{_CSS}</style><body>{''.join(body)}</body></html>"
    )


def write_report(
    report: CorpusReport,
    model: str,
    out_dir: Path,
    min_count: int,
    skipped: list[tuple[str, str]],
    judged: Review | None = None,
) -> list[Path]:
    """Write report.json, the CSV tables and report.html (UTF-8) into ``out_dir``.

    Each file replaces what is there, a symbolic link included: a link planted in
    ``out_dir`` is never written through (see :func:`write_replacing`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = report_document(report, model, min_count, skipped, judged)
    write_replacing(out_dir / "report.json", json.dumps(doc, ensure_ascii=False, indent=1))
    written = [out_dir / "report.json", *write_csv(doc, out_dir)]
    write_replacing(out_dir / "report.html", render_html(report, doc))
    return [*written, out_dir / "report.html"]

"""Bug-localization benchmark: rank of the mutated line among its function's lines, and
among its whole file's.

Usage: python benchmarks/bugloc/run.py [--context file|function] [--count 200] [--quick]
       [--out results.jsonl] [--model default]

``--context file`` (the default): each mutant (see mutants.py) is planted in its whole
standard-library module, the file as a user opens it, and the module is scored whole: a
causal pass, then a two-sided pass over every code line of the mutated function and over the
file's causal top K (what lossmap confirms in a file). Ranks are reported within the function
(every ranking rule) and within the file (the causal rules and the shipped rule: the file's
causal top K confirmed). ``--context function``: the function is scored on its own, as the
first version of this benchmark did. ``--quick``: modules of at most 1,000 lines, 6 mutants
(under 20 minutes on 2 CPU cores with the 0.5B model).

Results are appended to a JSONL file per mutant, so an interrupted run resumes where it
stopped; the summary is computed from that file. File-context records keep ids, line numbers
and the mutated tokens, not code.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from mutants import make_mutants, module_text  # noqa: E402

from lossmap.analysis import analyze_text, load_model  # noqa: E402
from lossmap.analysis.syntax.align import CODE, LAYOUT  # noqa: E402
from lossmap.analysis.verdicts.two_sided import DEFAULT_CONFIRM as SHIPPED_K  # noqa: E402
from lossmap.analysis.verdicts.two_sided import confirm_lines  # noqa: E402


def _max(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def line_scores(analysis, two_sided, only: set[int] | None = None) -> dict[str, dict]:
    """Every ranking's score for each line with text (higher = more suspicious); ``only``:
    just these lines compete (the shipped rule's top K is taken among them)."""
    text_lines = analysis.scored.text.split("\n")
    rules: dict[str, dict[int, float | None]] = {
        k: {}
        for k in (
            "longest line",
            "causal mean",
            "causal max",
            "causal margin max",
            "two-sided margin max",
            "min(causal, two-sided) margin max",
        )
    }
    for ln in analysis.lines:
        if not text_lines[ln.line - 1].strip() or (only is not None and ln.line not in only):
            continue
        toks = [(analysis.tokens[i], analysis.syntax[i]) for i in ln.token_indices]
        visible = [t for t, s in toks if s.kind != LAYOUT and t.surprise is not None]
        code = [t for t, s in toks if s.kind == CODE and t.surprise is not None]
        rules["longest line"][ln.line] = len(text_lines[ln.line - 1].strip())
        rules["causal mean"][ln.line] = (
            statistics.fmean(t.surprise for t in visible) if visible else None
        )
        rules["causal max"][ln.line] = _max(t.code_surprise for t in code)
        rules["causal margin max"][ln.line] = ln.verdict
        ts = two_sided.get(ln.line)
        rules["two-sided margin max"][ln.line] = ts.two_sided if ts else None
        rules["min(causal, two-sided) margin max"][ln.line] = ts.combined if ts else None
    # What lossmap ships: the causal top K confirmed and ranked by the combined score, ahead
    # of the unconfirmed lines in causal order.
    causal = rules["causal margin max"]
    ranked = sorted((n for n in causal if causal[n] is not None), key=lambda n: -causal[n])
    confirmed = set(ranked[:SHIPPED_K])
    combined = rules["min(causal, two-sided) margin max"]
    shipped = {}
    for n in causal:
        if n in confirmed and combined.get(n) is not None:
            shipped[n] = 1000.0 + combined[n]
        else:
            shipped[n] = causal[n]
    rules[f"shipped (causal top {SHIPPED_K} confirmed two-sided)"] = shipped
    # The same, with confirmed lines ranked by the two-sided margin alone.
    two = rules["two-sided margin max"]
    rules[f"causal top {SHIPPED_K} ranked by two-sided margin"] = {
        n: 1000.0 + two[n] if n in confirmed and two.get(n) is not None else causal[n]
        for n in causal
    }
    return rules


def rank_of(scores: dict[int, float | None], line: int) -> float:
    """1-based rank of ``line``; ties share the mean rank; unscored lines come last."""
    low = float("-inf")
    mine = scores.get(line)
    mine = low if mine is None else mine
    values = [low if v is None else v for v in scores.values()]
    greater = sum(v > mine for v in values)
    ties = sum(v == mine for v in values) - 1
    return 1 + greater + ties / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--context", choices=["file", "function"], default="file")
    ap.add_argument("--quick", action="store_true", help="6 mutants in modules of <= 1,000 lines")
    ap.add_argument("--out", default=None, help="default: results-<context>.jsonl here")
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    out = Path(args.out or Path(__file__).parent / f"results-{args.context}.jsonl")
    done = {r["id"] for r in read_records(out)}
    loaded = load_model(args.model, device=args.device)
    mutants = make_mutants(args.count)
    if args.quick:
        small = [m for m in mutants if len(module_text(m.module).splitlines()) <= 1000]
        mutants = small[:6]
    with out.open("a") as f:
        for k, m in enumerate(mutants):
            ident = m.ident
            if ident in done:
                continue
            if args.context == "file":
                record = file_record(loaded, m)
                f.write(json.dumps(record) + "\n")
                f.flush()
                shipped = f"shipped (causal top {SHIPPED_K} confirmed two-sided)"
                print(
                    f"[{k + 1}/{len(mutants)}] {ident} in {m.module}"
                    f" ({record['module_lines']} lines): within the function causal"
                    f" {record['ranks']['causal margin max']:.1f}, shipped"
                    f" {record['ranks'][shipped]:.1f}; within the file causal"
                    f" {record['file_ranks']['causal margin max']:.1f}, shipped"
                    f" {record['file_ranks'][shipped]:.1f}",
                    flush=True,
                )
                continue
            t0 = time.perf_counter()
            analysis = analyze_text(loaded, m.mutated, "mutant.py")
            t1 = time.perf_counter()
            lines = [ln.line for ln in analysis.lines if ln.verdict is not None]
            two = confirm_lines(loaded, analysis, lines, suggest=False)
            t2 = time.perf_counter()
            rules = line_scores(analysis, two)
            n_lines = len(rules["longest line"])
            rng = random.Random(ident)
            order = list(rules["longest line"])
            rng.shuffle(order)
            ranks = {name: rank_of(scores, m.line) for name, scores in rules.items()}
            ranks["random order"] = order.index(m.line) + 1
            record = {
                "id": ident,
                "kind": m.kind,
                "lines": n_lines,
                "tokens": len(analysis.tokens),
                "two_sided_lines": len(lines),
                "causal_s": round(t1 - t0, 3),
                "two_sided_s": round(t2 - t1, 3),
                "ranks": ranks,
                "scores": {name: {str(k): v for k, v in sc.items()} for name, sc in rules.items()},
                "mutant": asdict(m),
            }
            f.write(json.dumps(record) + "\n")
            f.flush()
            print(
                f"[{k + 1}/{len(mutants)}] {ident} ranks: "
                f"causal {ranks['causal margin max']:.1f}, shipped "
                f"{ranks[f'shipped (causal top {SHIPPED_K} confirmed two-sided)']:.1f}",
                flush=True,
            )
    summarize(out)


#: Rules that rank every line of a file: not the two-sided ones alone (only the function's
#: lines and the file's causal top K are confirmed in file context).
FILE_RULES = (
    "longest line",
    "causal mean",
    "causal max",
    "causal margin max",
    f"shipped (causal top {SHIPPED_K} confirmed two-sided)",
    f"causal top {SHIPPED_K} ranked by two-sided margin",
)


def file_record(loaded, m) -> dict:
    """Score ``m`` planted in its whole module; ranks within the function and the file."""
    text = m.in_module(module_text(m.module))
    t0 = time.perf_counter()
    analysis = analyze_text(loaded, text, m.module)
    t1 = time.perf_counter()
    fn_lines = set(range(m.def_line, m.def_line + m.mutated.count("\n")))
    with_code = {ln.line for ln in analysis.lines if ln.verdict is not None}
    file_top = {ln.line for ln in analysis.causal_top_lines(SHIPPED_K)}
    lines = sorted((fn_lines & with_code) | file_top)
    two = confirm_lines(loaded, analysis, lines, suggest=False)
    t2 = time.perf_counter()
    in_function = line_scores(analysis, two, only=fn_lines)
    in_file = line_scores(analysis, two)
    ranks = {name: rank_of(scores, m.module_line) for name, scores in in_function.items()}
    rng = random.Random(m.ident)
    order = sorted(in_function["longest line"])
    rng.shuffle(order)
    ranks["random order"] = order.index(m.module_line) + 1
    file_ranks = {name: rank_of(in_file[name], m.module_line) for name in FILE_RULES}
    file_order = sorted(in_file["longest line"])
    rng.shuffle(file_order)
    file_ranks["random order"] = file_order.index(m.module_line) + 1
    return {
        "id": m.ident,
        "context": "file",
        "kind": m.kind,
        "lines": len(in_function["longest line"]),
        "module_lines": len(in_file["longest line"]),
        "tokens": len(analysis.tokens),
        "two_sided_lines": len(lines),
        "causal_s": round(t1 - t0, 3),
        "two_sided_s": round(t2 - t1, 3),
        "ranks": ranks,
        "file_ranks": file_ranks,
        "mutant": {
            "module": m.module,
            "function": m.function,
            "kind": m.kind,
            "def_line": m.def_line,
            "line": m.module_line,
            "before": m.before,
            "after": m.after,
        },
    }


def read_records(path: Path) -> list[dict]:
    """The per-mutant records of a results file (none when it does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def summarize(path: Path) -> None:
    records = read_records(path)
    print(
        f"\n{len(records)} mutants, {statistics.fmean(r['lines'] for r in records):.1f} lines"
        " per function on average"
    )
    _table(records, "ranks", "within the function")
    in_files = [r for r in records if "file_ranks" in r]
    if in_files:
        lines = statistics.fmean(r["module_lines"] for r in in_files)
        print(f"\nwithin the whole file ({lines:.0f} lines with text on average):")
        _table(in_files, "file_ranks", "within the file")
    causal = sum(r["causal_s"] for r in records)
    two = sum(r["two_sided_s"] for r in records)
    lines = sum(r["two_sided_lines"] for r in records)
    scored = "file" if in_files else "function"
    print(
        f"\ncost: causal {causal / len(records):.2f} s per {scored};"
        f" two-sided {two / lines:.2f} s per confirmed line ({lines} lines)"
    )


def _table(records: list[dict], field: str, title: str) -> None:
    names = list(dict.fromkeys(n for r in records for n in r[field]))
    print(f"| ranking ({title}) | top-1 | top-3 | MRR |\n|---|---|---|---|")
    for name in ["random order", *[n for n in names if n != "random order"]]:
        ranks = [r[field][name] for r in records if name in r[field]]
        top1 = 100 * statistics.fmean(r <= 1 for r in ranks)
        top3 = 100 * statistics.fmean(r <= 3 for r in ranks)
        mrr = statistics.fmean(1 / r for r in ranks)
        subset = "" if len(ranks) == len(records) else f" (on {len(ranks)} mutants)"
        print(f"| {name}{subset} | {top1:.1f}% | {top3:.1f}% | {mrr:.3f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--summary":
        summarize(
            Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent / "results-file.jsonl"
        )
    else:
        main()

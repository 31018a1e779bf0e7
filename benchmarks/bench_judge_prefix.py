"""How much code before a line the judge needs: verdict quality and cost per prefix bound.

For planted bugs (``bugloc/mutants.py``) in their whole standard-library modules, the live
model scores the module once; then the judge confirms every code line of the mutated function
with each prefix bound of ``--prefixes`` (``two_sided.prefix_tokens``: at least that many
tokens of code before the line, at most 1.75x), pairing its causal and two-sided margins as the
product does. Reported per bound: the bug line's rank within its function by the shipped line
verdict of a confirmed line (min of the judge's causal and two-sided margins) and by the
two-sided margin alone, and the judge's seconds per confirmed line (a quality run: its seconds
are not a cost figure unless the machine was quiet; ``bench_judge_cost.py`` measures cost).
Results are appended per mutant (a run resumes); ``--summary`` prints the table.

Usage: python benchmarks/bench_judge_prefix.py [--count 24] [--prefixes 256 512 1024 2048]
       [--max-module-lines 2500] [--out judge_prefix.jsonl]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bugloc"))

from mutants import make_mutants, module_text  # noqa: E402
from run import line_scores, rank_of, read_records  # noqa: E402

from lossmap.analysis import analyze_text, load_model  # noqa: E402
from lossmap.analysis.verdicts.two_sided import DEFAULT_SUFFIX_TOKENS, confirm_lines  # noqa: E402

RULES = {
    "shipped": "min(causal, two-sided) margin max",
    "two-sided": "two-sided margin max",
    "causal (live)": "causal margin max",
}


def summarize(path: Path) -> None:
    records = read_records(path)
    if not records:
        print("no records yet")
        return
    bounds = sorted({int(p) for r in records for p in r["by_prefix"]})
    print(f"{len(records)} mutants in whole modules ({records[-1]['machine']})")
    print("| prefix bound | shipped top-1 | top-3 | MRR | two-sided top-1 | MRR | s per line |")
    print("|---|---|---|---|---|---|---|")
    for p in bounds:
        rows = [r["by_prefix"][str(p)] for r in records if str(p) in r["by_prefix"]]

        def stat(rule, rows=rows):
            ranks = [row["ranks"][rule] for row in rows]
            return (
                100 * statistics.fmean(k <= 1 for k in ranks),
                100 * statistics.fmean(k <= 3 for k in ranks),
                statistics.fmean(1 / k for k in ranks),
            )

        s1, s3, smrr = stat("shipped")
        t1, _t3, tmrr = stat("two-sided")
        per_line = sum(row["seconds"] for row in rows) / sum(row["lines"] for row in rows)
        print(
            f"| {p} | {s1:.0f}% | {s3:.0f}% | {smrr:.3f} | {t1:.0f}% | {tmrr:.3f}"
            f" | {per_line:.2f} |"
        )
    causal = [r["causal_rank"] for r in records]
    print(
        f"| causal only (live model) | {100 * statistics.fmean(k <= 1 for k in causal):.0f}% |"
        f" {100 * statistics.fmean(k <= 3 for k in causal):.0f}% |"
        f" {statistics.fmean(1 / k for k in causal):.3f} | | | |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--prefixes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--suffix", type=int, default=DEFAULT_SUFFIX_TOKENS)
    ap.add_argument("--max-module-lines", type=int, default=2500)
    ap.add_argument("--live", default="default")
    ap.add_argument("--judge", default="default-large")
    ap.add_argument("--out", default=str(HERE / "judge_prefix.jsonl"))
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    if args.summary:
        summarize(out)
        return
    done = {r["id"] for r in read_records(out)}
    mutants = [
        m
        for m in make_mutants(400)
        if len(module_text(m.module).splitlines()) <= args.max_module_lines
    ]
    # One mutant per function, spread over the modules (round robin), the first ``count``.
    by_module: dict[str, list] = {}
    for m in mutants:
        by_module.setdefault(m.module, []).append(m)
    chosen, k = [], 0
    while len(chosen) < args.count and any(k < len(v) for v in by_module.values()):
        chosen += [v[k] for v in by_module.values() if k < len(v)]
        k += 1
    chosen = chosen[: args.count]
    live = load_model(args.live)
    judge = load_model(args.judge, tokenizer_like=live)
    machine = f"{platform.machine()}, judge in {judge.precision}"
    for n, m in enumerate(chosen):
        if m.ident in done:
            continue
        text = m.in_module(module_text(m.module))
        t0 = time.perf_counter()
        analysis = analyze_text(live, text, m.module)
        causal_s = time.perf_counter() - t0
        fn_lines = set(range(m.def_line, m.def_line + m.mutated.count("\n")))
        lines = sorted(fn_lines & {ln.line for ln in analysis.lines if ln.verdict is not None})
        record = {
            "id": m.ident,
            "module": m.module,
            "module_lines": len(text.splitlines()),
            "line": m.module_line,
            "kind": m.kind,
            "tokens": len(analysis.tokens),
            "causal_s": round(causal_s, 2),
            "machine": machine,
            "by_prefix": {},
        }
        causal_rank = None
        for p in args.prefixes:
            t0 = time.perf_counter()
            two = confirm_lines(
                judge,
                analysis,
                lines,
                suffix_tokens=args.suffix,
                prefix_tokens=p,
                suggest=False,
                judge_causal=True,
            )
            seconds = time.perf_counter() - t0
            scores = line_scores(analysis, two, only=fn_lines)
            ranks = {k: rank_of(scores[rule], m.module_line) for k, rule in RULES.items()}
            causal_rank = ranks.pop("causal (live)")
            record["by_prefix"][str(p)] = {
                "ranks": ranks,
                "lines": len(lines),
                "seconds": round(seconds, 2),
            }
        record["causal_rank"] = causal_rank
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        shipped = {p: v["ranks"]["shipped"] for p, v in record["by_prefix"].items()}
        print(f"[{n + 1}/{len(chosen)}] {m.ident}: shipped rank by prefix {shipped}", flush=True)
    summarize(out)


if __name__ == "__main__":
    main()

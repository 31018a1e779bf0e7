"""Bug localization with two model sizes side by side: which live/judge pairing to ship.

Usage: python benchmarks/bugloc/sizes.py [--count 200] [--limit 100] [--out sizes.jsonl]
           [--live default] [--judge default-large]
       python benchmarks/bugloc/sizes.py --summary [sizes.jsonl]

The same mutants as run.py (mutants.py, fixed seed). For each one: a causal pass with each
model, then a two-sided pass over every line with code with each model. Because both
Qwen2.5-Coder sizes share one tokenizer, every token has four numbers (causal and two-sided,
small and large), so every pairing below is ranked from one set of passes:

- "<live> causal": what the live highlights rank by (max code-token margin of the line);
- "<live> + judge <judge>": the live model's causal top K confirmed by the judge, then ranked
  by a rule over the confirmed lines, ahead of the rest in causal order (what ships); the
  "judge's min" rule pairs the judge's own causal margins (read off its shared prefix cache
  during confirmation) with its two-sided ones.

Results are appended per mutant (resumable); the summary also prints the cost per confirmed
line of each model, measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from mutants import make_mutants  # noqa: E402
from run import rank_of, read_records  # noqa: E402

from lossmap.analysis import analyze_text, load_model  # noqa: E402
from lossmap.analysis.syntax.align import CODE  # noqa: E402
from lossmap.analysis.verdicts.two_sided import DEFAULT_CONFIRM as K  # noqa: E402
from lossmap.analysis.verdicts.two_sided import confirm_lines  # noqa: E402


def _line_rules(causal, two, code_lines) -> dict[str, dict[int, float | None]]:
    """Line scores from one causal analysis and one model's two-sided numbers."""
    causal_max, two_max, min_rule = {}, {}, {}
    for ln in code_lines:
        causal_max[ln.line] = ln.verdict
        ts = two.get(ln.line)
        code = [
            i
            for i in ln.token_indices
            if causal.syntax[i].kind == CODE and causal.tokens[i].code_margin is not None
        ]
        if ts is None or not code:
            two_max[ln.line] = min_rule[ln.line] = None
            continue
        two_max[ln.line] = max(ts.tokens[i].code_margin for i in code)
        min_rule[ln.line] = max(
            min(causal.tokens[i].code_margin, ts.tokens[i].code_margin) for i in code
        )
    return {"causal": causal_max, "two-sided": two_max, "min": min_rule}


def _shipped(causal: dict, confirmed_rule: dict) -> dict[int, float | None]:
    """The causal top K confirmed and ranked by ``confirmed_rule``, ahead of the rest."""
    ranked = sorted((n for n in causal if causal[n] is not None), key=lambda n: -causal[n])
    top = set(ranked[:K])
    return {
        n: 1000.0 + confirmed_rule[n] if n in top and confirmed_rule.get(n) is not None else v
        for n, v in causal.items()
    }


def rankings(small_name, large_name, small, large, two_small, two_large) -> dict:
    """Every ranking for one mutant (``small``/``large``: causal analyses of the same text)."""
    lines = [ln for ln in small.lines if ln.verdict is not None]
    large_lines = [ln for ln in large.lines if ln.verdict is not None]
    s = _line_rules(small, two_small, lines)
    big = _line_rules(large, two_large, large_lines)
    mixed = _line_rules(small, two_large, lines)  # small causal margins, large two-sided
    out = {
        f"{small_name} causal": s["causal"],
        f"{large_name} causal": big["causal"],
        f"{small_name} two-sided (all lines)": s["two-sided"],
        f"{large_name} two-sided (all lines)": big["two-sided"],
        f"{small_name} min(causal, two-sided) (all lines)": s["min"],
        f"{large_name} min(causal, two-sided) (all lines)": big["min"],
    }
    # What ships on CPU: the judge pairs its own causal margin (read off the shared cache)
    # with its two-sided one; the live model only chooses which lines it confirms.
    own = {
        n: (ts.combined if ts is not None else None)
        for n, ts in ((n, two_large.get(n)) for n in s["causal"])
    }
    out[f"live {small_name}, judge {large_name}: top {K} by judge's min(causal, two-sided)"] = (
        _shipped(s["causal"], own)
    )
    for live, judge, rules, causal in (
        (small_name, small_name, s, s["causal"]),
        (small_name, large_name, mixed, s["causal"]),
        (large_name, large_name, big, big["causal"]),
    ):
        for rule in ("min", "two-sided"):
            out[f"live {live}, judge {judge}: top {K} by {rule}"] = _shipped(causal, rules[rule])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200, help="mutants generated (as run.py)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N of them")
    ap.add_argument("--out", default=str(Path(__file__).parent / "sizes.jsonl"))
    ap.add_argument("--live", default="default")
    ap.add_argument("--judge", default="default-large")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    out = Path(args.out)
    done = {r["id"] for r in read_records(out)}
    small = load_model(args.live, device=args.device)
    large = load_model(args.judge, device=args.device)
    mutants = make_mutants(args.count)[: args.limit]
    with out.open("a") as f:
        for k, m in enumerate(mutants):
            ident = m.ident
            if ident in done:
                continue
            t = [time.perf_counter()]
            a_small = analyze_text(small, m.mutated, "mutant.py")
            t.append(time.perf_counter())
            a_large = analyze_text(large, m.mutated, "mutant.py")
            t.append(time.perf_counter())
            if [x.token_id for x in a_small.tokens] != [x.token_id for x in a_large.tokens]:
                raise SystemExit("the two models tokenize differently: pairing needs one tokenizer")
            lines = [ln.line for ln in a_small.lines if ln.verdict is not None]
            two_small = confirm_lines(small, a_small, lines, suggest=False)
            t.append(time.perf_counter())
            two_large = confirm_lines(large, a_small, lines, suggest=False, judge_causal=True)
            t.append(time.perf_counter())
            rules = rankings(args.live, args.judge, a_small, a_large, two_small, two_large)
            ranks = {name: rank_of(scores, m.line) for name, scores in rules.items()}
            record = {
                "id": ident,
                "kind": m.kind,
                "lines": len(lines),
                "tokens": len(a_small.tokens),
                "seconds": {
                    f"{args.live} causal": round(t[1] - t[0], 3),
                    f"{args.judge} causal": round(t[2] - t[1], 3),
                    f"{args.live} two-sided": round(t[3] - t[2], 3),
                    f"{args.judge} two-sided": round(t[4] - t[3], 3),
                },
                "ranks": ranks,
            }
            f.write(json.dumps(record) + "\n")
            f.flush()
            shown = ", ".join(f"{n.split(':')[0]} {r:.0f}" for n, r in list(ranks.items())[:2])
            print(f"[{k + 1}/{len(mutants)}] {ident}: {shown}", flush=True)
    summarize(out)


def summarize(path: Path) -> None:
    """The table of every ranking, and the cost of each model per confirmed line."""
    records = read_records(path)
    names = list(dict.fromkeys(n for r in records for n in r["ranks"]))
    print(
        f"\n{len(records)} mutants,"
        f" {statistics.fmean(r['lines'] for r in records):.1f} code lines each"
    )
    print("| ranking | top-1 | top-3 | MRR |\n|---|---|---|---|")
    for name in names:
        ranks = [r["ranks"][name] for r in records]
        top1 = 100 * statistics.fmean(x <= 1 for x in ranks)
        top3 = 100 * statistics.fmean(x <= 3 for x in ranks)
        print(
            f"| {name} | {top1:.1f}% | {top3:.1f}% | {statistics.fmean(1 / x for x in ranks):.3f} |"
        )
    lines = sum(r["lines"] for r in records)
    print()
    for name in records[0]["seconds"]:
        total = sum(r["seconds"][name] for r in records)
        per = (
            f"{total / lines:.2f} s per confirmed line"
            if "two-sided" in name
            else (f"{total / len(records):.2f} s per function")
        )
        print(f"cost: {name}: {per}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--summary":
        summarize(Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent / "sizes.jsonl")
    else:
        main()

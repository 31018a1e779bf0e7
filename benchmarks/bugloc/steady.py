"""Planted bugs in whole files, once the judge has looked: is the bug among the diagnostics?

The editor's steady state (``confirmCandidates``): the judge confirms every line whose causal
verdict reaches the diagnostic threshold (10 bits), and a confirmed line is shown when its
combined verdict reaches the bar (``ranking.shown``), most surprising first, at most 10
(``maxDiagnostics``). ``run.py`` ranks planted bugs within their function and file with the
judge on the file's causal top 8 only; this script judges every candidate of the mutated
module, as the editor ends up doing, and reports per bar T:

- planted bugs published (the bug line among the file's first 10 diagnostics): with the
  judge (candidates from 10 bits, shown from T) and before it (causal verdict >= T + 8);
- the module's other lines shown per 1,000 (mature standard-library code outside the mutated
  function: nearly clean).

Mutants: ``mutants.make_mutants`` (the same seed and order as ``run.py``), in modules of at
most 1,000 lines; the first six are ``run.py --quick``'s. Records (one JSON line per mutant,
appended: the run resumes) keep ids, line numbers and bits, not code.

Usage::

    python benchmarks/bugloc/steady.py [--count N] [--minutes M]
    python benchmarks/bugloc/steady.py --summary
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from mutants import make_mutants, module_text  # noqa: E402

from lossmap.analysis import analyze_text, load_model  # noqa: E402
from lossmap.analysis.verdicts.confirm import confirm  # noqa: E402
from lossmap.analysis.verdicts.levels import DIAGNOSTIC_THRESHOLD, UNCONFIRMED_EXTRA_BITS  # noqa: E402

OUT = HERE / "steady.jsonl"
#: The server's default ``maxDiagnostics``.
MAX_DIAGNOSTICS = 10
THRESHOLDS = (10, 12, 14, 16, 18)


def small_mutants(count: int) -> list:
    """The first ``count`` mutants in modules of at most 1,000 lines (``run.py``'s order)."""
    small = [m for m in make_mutants(200) if len(module_text(m.module).splitlines()) <= 1000]
    return small[:count]


def judge_mutant(live, judge, m) -> dict:
    """Score ``m`` in its module, judge every candidate; the record (numbers only)."""
    text = m.in_module(module_text(m.module))
    t0 = time.perf_counter()
    analysis = analyze_text(live, text, m.module)
    t1 = time.perf_counter()
    causal = {
        ln.line: ln.verdict
        for ln in analysis.lines
        if ln.verdict is not None and ln.verdict >= DIAGNOSTIC_THRESHOLD
    }
    found = confirm(judge, live, analysis, sorted(causal), suggest=False)
    t2 = time.perf_counter()
    return {
        "id": m.ident,
        "module": m.module,
        "kind": m.kind,
        "line": m.module_line,
        "function": [m.def_line, m.def_line + m.mutated.count("\n") - 1],
        "lines": text.count("\n") + 1,
        "causal": {str(n): round(v, 4) for n, v in causal.items()},
        "combined": {
            str(n): None if v.combined is None else round(v.combined, 4)
            for n, v in found.lines.items()
        },
        "causal_s": round(t1 - t0, 1),
        "judge_s": round(t2 - t1, 1),
    }


def read_records(path: Path = OUT) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(t) for t in path.read_text().splitlines() if t]


def shown(r: dict, t: float, view: str) -> list[int]:
    """The file's diagnostics, most surprising first. ``view``: "A", the judge confirmed the
    candidates from 10 bits and a confirmed line is shown from ``t``; "B", the diagnostic
    threshold itself is ``t`` (candidates from ``t``); "causal", before the judge has looked
    (causal verdict >= ``t`` + 8)."""
    if view == "causal":
        found = [(v, int(n)) for n, v in r["causal"].items() if v >= t + UNCONFIRMED_EXTRA_BITS]
    else:
        need = DIAGNOSTIC_THRESHOLD if view == "A" else t
        found = [
            (v, int(n))
            for n, v in r["combined"].items()
            if v is not None and v >= t and r["causal"][n] >= need
        ]
    return [n for _v, n in sorted(found, reverse=True)[:MAX_DIAGNOSTICS]]


def summarize(records: list[dict]) -> None:
    if not records:
        print("no mutant judged yet")
        return
    judged = sum(len(r["combined"]) for r in records)
    lines = sum(r["lines"] for r in records)
    candidates = sum(str(r["line"]) in r["causal"] for r in records)
    per_line = sum(r["judge_s"] for r in records) / judged
    print(
        f"{len(records)} planted bugs in {len({r['module'] for r in records})} modules"
        f" ({lines:,} lines, {judged:,} lines judged; judge {per_line:.1f} s"
        f" per line); the bug line a candidate (causal >= 10 bits) in {candidates}"
    )
    print(
        "\nA: candidates from 10 bits, a confirmed line shown from T; B: the threshold is T;"
        " before the judge: causal verdict >= T + 8. Bugs published (among the file's first 10"
        " diagnostics), and the module's other lines shown per 1,000."
    )
    print(
        "| T | A: bugs published | A: other lines per 1,000 | B: bugs published"
        " | B: other lines per 1,000 | before the judge: bugs published | other lines per 1,000 |"
    )
    print("|---|---|---|---|---|---|---|")
    for t in THRESHOLDS:
        cells = []
        for view in ("A", "B", "causal"):
            bugs, other, total = 0, 0, 0
            for r in records:
                lines_shown = shown(r, t, view)
                lo, hi = r["function"]
                bugs += r["line"] in lines_shown
                other += sum(not lo <= n <= hi for n in lines_shown)
                total += r["lines"] - (hi - lo + 1)
            cells += [f"{bugs}/{len(records)}", f"{1000 * other / total:.1f}"]
        print(f"| {t:g} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--minutes", type=float, help="start no new mutant after this long")
    ap.add_argument("--summary", action="store_true", help="report from the records, no model")
    ap.add_argument("--judge", default="default-large")
    ap.add_argument("--model", default="default")
    ap.add_argument("--runtime", default="auto")
    args = ap.parse_args()
    if not args.summary:
        done = {r["id"] for r in read_records()}
        live = load_model(args.model, device="cpu", runtime=args.runtime)
        judge = load_model(args.judge, device="cpu", runtime=args.runtime, tokenizer_like=live)
        t0 = time.perf_counter()
        for k, m in enumerate(small_mutants(args.count), 1):
            if m.ident in done:
                continue
            if args.minutes is not None and time.perf_counter() - t0 > 60 * args.minutes:
                print(f"stopped after {args.minutes:g} minutes: run again to go on")
                break
            r = judge_mutant(live, judge, m)
            with OUT.open("a") as f:
                f.write(json.dumps(r) + "\n")
            print(
                f"[{k}] {m.ident} in {m.module} ({r['lines']} lines): {len(r['combined'])}"
                f" lines judged in {r['judge_s']:.0f} s",
                flush=True,
            )
    summarize(read_records())


if __name__ == "__main__":
    main()

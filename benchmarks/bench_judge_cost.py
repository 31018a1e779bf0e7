"""What the judge costs per confirmed line in whole files, next to the causal pass (issue 17).

For standard-library modules of about 500, 2,000 and 5,000 lines (the closest of
``bugloc/mutants.MODULES``; the actual size is printed), the live model scores the whole file,
then the judge confirms lines at random positions one at a time, each through the product's
entry point (``verdicts.confirm.confirm``, no suggestion), as the server does for an edited line
far from the last one it confirmed. ``--top K`` also times what ``scan`` does: the file's
causal top K confirmed in one walk, with suggestions decoded for the lines that look wrong.
Results are appended per case to a JSONL file, so a run resumes where it stopped;
``--summary`` prints the table.

Each record names its path (the prefix bound and the judge's precision); records from before
the prefix was bounded are the "old" path.

``--paths`` runs several confirmation paths side by side on the same causal pass (the prefix
bound and the judge's precision), e.g. the float32 judge with 1,024 tokens of prefix (about the
path before the prefix was bounded) next to the default.

Usage: python benchmarks/bench_judge_cost.py [--sizes 500 2000 5000] [--lines 4] [--top 8|all]
       [--paths 1024:float32 512:auto] [--live default] [--judge default-large]
       [--out judge_cost.jsonl]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bugloc"))

from mutants import MODULES, module_text  # noqa: E402

from lossmap.analysis import analyze_text, load_model  # noqa: E402
from lossmap.analysis.verdicts.confirm import confirm, lines_to_confirm  # noqa: E402
from lossmap.analysis.verdicts.two_sided import DEFAULT_PREFIX_TOKENS  # noqa: E402


def closest_module(size: int) -> tuple[str, int]:
    """The module of ``MODULES`` whose line count is closest to ``size``."""
    counts = []
    for name in MODULES:
        try:
            counts.append((name, len(module_text(name).splitlines())))
        except OSError:
            continue
    return min(counts, key=lambda c: abs(c[1] - size))


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def append(path: Path, record: dict) -> None:
    """One case more in the results file (a run resumes from it)."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


#: Records written before the prefix was bounded carry no "path"; those named "prefix >= P
#: tokens, ..." (no grid) were measured with a grid of P // 2.
OLD_PATH = "prefix restarted 1,024 back, float32"


def path_name(judge, prefix: int) -> str:
    """The confirmation path a record measured: the prefix bound and the judge's precision."""
    return f"prefix >= {prefix} tokens (grid {prefix // 4}), {judge.precision}"


def summarize(path: Path) -> None:
    records = read(path)
    print(
        "| path | file | lines | tokens | causal pass | confirmed lines | per line p50 | max"
        " | scan / --judge none |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in dict.fromkeys(r.get("path", OLD_PATH) for r in records):
        of_kind = [r for r in records if r.get("path", OLD_PATH) == kind]
        for module in dict.fromkeys(r["module"] for r in of_kind):
            mine = [r for r in of_kind if r["module"] == module and r["line"]]
            tops = [r for r in of_kind if r["module"] == module and not r["line"]]
            if mine:
                per_line = [r["confirm_s"] for r in mine]
                first = mine[0]
                print(
                    f"| {kind} | {module} | {first['module_lines']:,} | {first['tokens']:,}"
                    f" | {first['causal_s']:.0f} s | {len(mine)} at random"
                    f" | {statistics.median(per_line):.1f} s | {max(per_line):.1f} s | — |"
                )
            for r in tops:
                total = r["confirm_s"] * r["top"]
                print(
                    f"| {kind} | {module} | {r['module_lines']:,} | {r['tokens']:,}"
                    f" | {r['causal_s']:.0f} s | {r.get('asked', 'causal top')} {r['top']}"
                    f" ({r['suggestions']} suggestions) | {r['confirm_s']:.1f} s (mean) | —"
                    f" | {(r['causal_s'] + total) / r['causal_s']:.2f}x |"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    ap.add_argument("--lines", type=int, default=4, help="random lines confirmed per file")
    ap.add_argument(
        "--top",
        default="0",
        help="also confirm the causal top K as scan does (all: every line at or above the"
        " diagnostic threshold, as scan --confirm all)",
    )
    ap.add_argument(
        "--paths",
        nargs="+",
        default=[f"{DEFAULT_PREFIX_TOKENS}:auto"],
        help="confirmation paths side by side, PREFIX:RUNTIME (auto, float32 or"
        " bfloat16-matmuls, as --runtime), e.g. 1024:float32 512:auto",
    )
    ap.add_argument("--live", default="default")
    ap.add_argument("--judge", default="default-large")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(HERE / "judge_cost.jsonl"))
    args = ap.parse_args()
    out = Path(args.out)
    top_k = None if args.top == "all" else int(args.top)
    asked = "all candidates" if top_k is None else "causal top"
    # The live model as measured for issue 17 (float32); the judge in each path's runtime.
    live = load_model(args.live, device=args.device, runtime="float32")
    paths = []  # (name, prefix tokens, judge)
    for spec in args.paths:
        prefix, _, runtime = spec.partition(":")
        judge = load_model(
            args.judge, device=args.device, tokenizer_like=live, runtime=runtime or "auto"
        )
        paths.append((path_name(judge, int(prefix)), int(prefix), judge))
    records = read(out)
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()}"
        f" threads; live {live.name} ({live.precision}); paths: {[p[0] for p in paths]}",
        flush=True,
    )
    for size in args.sizes:
        module, n_lines = closest_module(size)
        text = module_text(module)
        rng = random.Random(f"{module}:{args.lines}")
        # Lines that look like code (not blank, a comment or a string), chosen without the
        # model, so a resumed run skips a finished file's causal pass.
        code = [
            n
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip() and line.strip()[0] not in "#\"'"
        ]
        sample = sorted(rng.sample(code, args.lines))
        todo = []
        for kind, prefix, judge in paths:
            done = {
                (r["line"], r.get("asked", "causal top"))
                for r in records
                if r["module"] == module and r.get("path", OLD_PATH) == kind
            }
            chosen = [n for n in sample if (n, "causal top") not in done]
            top = args.top != "0" and (0, asked) not in done
            if chosen or top:
                todo.append((kind, prefix, judge, chosen, top))
        if not todo:
            continue
        t0 = time.perf_counter()
        analysis = analyze_text(live, text, module)
        causal_s = time.perf_counter() - t0
        for kind, prefix, judge, chosen, top in todo:
            case = {
                "module": module,
                "module_lines": n_lines,
                "tokens": len(analysis.tokens),
                "causal_s": round(causal_s, 2),
                "judge": judge.name,
                "path": kind,
            }
            for line in chosen:
                t1 = time.perf_counter()
                found = confirm(judge, live, analysis, [line], suggest=False, prefix_tokens=prefix)
                confirm_s = time.perf_counter() - t1
                record = {**case, "line": line, "confirm_s": round(confirm_s, 2)}
                append(out, {**record, "confirmed": line in found.lines})
                print(
                    f"{kind}: {module} ({n_lines} lines, causal pass {causal_s:.0f} s):"
                    f" line {line} confirmed in {confirm_s:.1f} s",
                    flush=True,
                )
            if top:
                lines = lines_to_confirm(analysis, top_k)
                t1 = time.perf_counter()
                found = confirm(judge, live, analysis, lines, prefix_tokens=prefix)
                top_s = time.perf_counter() - t1
                record = {
                    **case,
                    "line": 0,
                    "asked": asked,
                    "top": len(lines),
                    "suggestions": sum(bool(v.suggestion) for v in found.lines.values()),
                    "confirm_s": round(top_s / max(len(lines), 1), 2),
                }
                append(out, record)
                print(
                    f"{kind}: {module}: {asked} {len(lines)} confirmed as scan does in"
                    f" {top_s:.0f} s ({record['suggestions']} suggestions decoded)",
                    flush=True,
                )
    summarize(out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--summary":
        summarize(Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "judge_cost.jsonl")
    else:
        main()

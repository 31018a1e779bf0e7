"""How far the judge's numbers move when its linear layers run in bfloat16 (``precision.py``).

The live model scores a standard-library module once; the judge confirms the same lines in
float32 and with bfloat16 matmuls (``--runtime``), same prefix bound; printed: the
per-token two-sided surprise and margin differences (p50/p99/max, bits), the line verdicts'
differences, and the time of each.

Usage: python benchmarks/bench_judge_precision.py [--module textwrap.py] [--lines 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bugloc"))

from mutants import module_text  # noqa: E402

from lossmap.analysis import analyze_text, load_model  # noqa: E402
from lossmap.analysis.verdicts.confirm import confirm  # noqa: E402


def quantiles(values: list[float]) -> str:
    values = sorted(values)
    at = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return f"p50 {at(0.5):.3f}, p99 {at(0.99):.3f}, max {values[-1]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module", default="textwrap.py")
    ap.add_argument("--lines", type=int, default=12)
    args = ap.parse_args()
    live = load_model("default", runtime="float32")
    analysis = analyze_text(live, module_text(args.module), args.module)
    with_code = [ln.line for ln in analysis.lines if ln.verdict is not None]
    step = max(1, len(with_code) // args.lines)
    lines = with_code[::step][: args.lines]
    found = {}
    for precision in ("float32", "bfloat16"):
        runtime = "float32" if precision == "float32" else "bfloat16-matmuls"
        judge = load_model("default-large", tokenizer_like=live, runtime=runtime)
        t = time.perf_counter()
        found[precision] = confirm(judge, live, analysis, lines, suggest=False).lines
        print(f"{judge.precision}: {len(lines)} lines in {time.perf_counter() - t:.1f} s")
        del judge
    exact, mixed = found["float32"], found["bfloat16"]
    surprise, margin, verdicts = [], [], []
    for n in lines:
        a, b = exact[n], mixed[n]
        for i, tok in a.tokens.items():
            surprise.append(abs(tok.surprise - b.tokens[i].surprise))
            margin.append(abs(tok.code_margin - b.tokens[i].code_margin))
        if a.combined is not None and b.combined is not None:
            verdicts.append(abs(a.combined - b.combined))
    print(f"{args.module}, {len(lines)} lines, {len(surprise)} tokens, |bfloat16 - float32| bits:")
    print(f"  two-sided surprise: {quantiles(surprise)}")
    print(f"  two-sided margin:   {quantiles(margin)}")
    print(f"  line verdict:       {quantiles(verdicts)}")


if __name__ == "__main__":
    main()

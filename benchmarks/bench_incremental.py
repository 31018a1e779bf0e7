"""Incremental re-scoring vs a full re-score, measured side by side in one run.

[2] A ~1,024-token file is edited at 10 %, 50 % and 90 % of its tokens. For each position:
    - full: ``score_text`` of the edited text (one pass per window, no cache kept);
    - incremental: a scorer that holds the previous version re-scores the edited text;
    - first highlights: the time until the server could publish highlights around the edit
      (the local-first partial result, or the whole result when no partial is due).
    Both include alignment and aggregation (``analyze_scored``), as the server does.
    Goals: incremental at 90 % <= 0.2x of full; first highlights <= 0.3x at any position.
[2b] Many random single edits: p50/p95 incremental update time (the GPU goal: p50 <= 30 ms on a
    2,000-token file with the default model: ``--tokens 2000 --device cuda``).

Usage: python benchmarks/bench_incremental.py [--model default] [--device auto] [--tokens 1024]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from bench_scoring import corpus_text, machine_line, sync, take_tokens

from lossmap.analysis import load_model
from lossmap.analysis.analyze import analyze_scored
from lossmap.analysis.scoring.document_scorer import DocumentScorer, score_text
from lossmap.analysis.scoring.tokens import encode


def edit_at(loaded, text: str, fraction: float) -> str:
    """``text`` with `` + 1`` appended to the token at ``fraction`` of its tokens."""
    _, spans, has_bos = encode(loaded, text)
    spans = spans[1:] if has_bos else spans
    end = spans[int(fraction * (len(spans) - 1))][1]
    return text[:end] + " + 1" + text[end:]


def full_rescore(loaded, text: str) -> float:
    sync(loaded.device)
    t = time.perf_counter()
    analyze_scored(score_text(loaded, text), "bench.py")  # the fastest full pass: no caches
    sync(loaded.device)
    return time.perf_counter() - t


def incremental(loaded, before: str, after: str) -> tuple[float, float, DocumentScorer]:
    """(seconds to the whole result, seconds to the first highlights, scorer)."""
    scorer = DocumentScorer(loaded)
    scorer.score(before)
    first: list[float] = []

    def on_partial(scored) -> None:
        analyze_scored(scored, "bench.py")
        sync(loaded.device)
        first.append(time.perf_counter() - t)

    sync(loaded.device)
    t = time.perf_counter()
    analyze_scored(scorer.score(after, on_partial=on_partial), "bench.py")
    sync(loaded.device)
    total = time.perf_counter() - t
    return total, (first[0] if first else total), scorer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--edits", type=int, default=20, help="random edits for [2b]")
    args = ap.parse_args()

    loaded = load_model(args.model, device=args.device)
    print(machine_line(loaded))
    text = take_tokens(loaded, corpus_text(), args.tokens)
    n = len(encode(loaded, text)[0])
    full_rescore(loaded, text)  # warm-up: per-tokenizer tables, allocator
    for fraction in (0.1, 0.5, 0.9):
        after = edit_at(loaded, text, fraction)
        full_t, inc_t, first_t = [], [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            full_t.append(full_rescore(loaded, after))
            total, first, scorer = incremental(loaded, text, after)
            inc_t.append(total)
            first_t.append(first)
        f, i, h = (statistics.median(x) for x in (full_t, inc_t, first_t))
        run = scorer.last_run
        print(
            f"[2] {n} tokens, edit at {fraction:.0%} (token {run.reused}): full {f:.3f} s,"
            f" incremental {i:.3f} s = {i / f:.2f}x, first highlights {h:.3f} s = {h / f:.2f}x"
            f" (model ran {run.run} of {run.tokens} tokens)"
        )

    rng = random.Random(0)
    scorer = DocumentScorer(loaded)
    scorer.score(text)
    times, current = [], text
    for _ in range(args.edits):
        current = edit_at(loaded, current, rng.random())
        sync(loaded.device)
        t = time.perf_counter()
        analyze_scored(scorer.score(current), "bench.py")
        sync(loaded.device)
        times.append(time.perf_counter() - t)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(
        f"[2b] {args.edits} random edits of a {n}-token file: incremental update"
        f" p50 {1000 * statistics.median(times):.0f} ms, p95 {1000 * p95:.0f} ms"
    )


if __name__ == "__main__":
    main()

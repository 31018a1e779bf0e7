"""Scoring overhead and alignment cost, measured side by side in one run.

1. lossmap ``score_text`` on a ~1,024-token file vs a bare transformers forward pass on the same
   tokens and device (logits + log-softmax + gather of the actual tokens). Goal: <= 1.10x.
2. Alignment + aggregation time as a fraction of scoring time on a ~2,000-line file.
   Goal: < 5%. Scoring 2,000 lines on a CPU takes minutes; ``--lines`` makes it smaller.

Usage: python benchmarks/bench_scoring.py [--model default] [--device auto] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from pathlib import Path

import torch

from lossmap.analysis import load_model
from lossmap.analysis.scoring.document_scorer import score_text
from lossmap.analysis.scoring.tokens import encode
from lossmap.analysis.syntax.align import align, parse
from lossmap.analysis.verdicts.lines import summarize_definitions, summarize_lines

REPO = Path(__file__).resolve().parent.parent


def corpus_text() -> str:
    return "\n\n".join(p.read_text() for p in sorted((REPO / "lossmap").rglob("*.py")))


def take_tokens(loaded, text: str, n: int) -> str:
    ids, spans, has_bos = encode(loaded, text)
    spans = spans[1:] if has_bos else spans
    return text[: spans[min(n, len(spans)) - 1][1]]


def machine_line(loaded) -> str:
    """What the numbers were measured on."""
    return (
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()}"
        f" threads, torch {torch.__version__}, device {loaded.device}, dtype {loaded.dtype}"
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def bare_forward(loaded, ids: list[int]) -> torch.Tensor:
    x = torch.tensor([ids], device=loaded.device)
    logits = loaded.model(x).logits[0].float()
    lp = torch.log_softmax(logits[:-1], -1)
    return lp.gather(1, x[0, 1:, None])[:, 0].cpu()


def timed(fn, device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--lines", type=int, default=2000)
    args = ap.parse_args()

    loaded = load_model(args.model, device=args.device)
    print(machine_line(loaded))
    text = take_tokens(loaded, corpus_text(), args.tokens)
    ids, _, _ = encode(loaded, text)
    score_text(loaded, text)  # warm-up: builds the per-tokenizer tables once
    bare_forward(loaded, ids)
    lossmap_t, bare_t = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        bare_t.append(timed(lambda: bare_forward(loaded, ids), loaded.device))
        lossmap_t.append(timed(lambda: score_text(loaded, text), loaded.device))
    b, m = statistics.median(bare_t), statistics.median(lossmap_t)
    print(
        f"[1] {len(ids)} tokens: bare forward {b:.3f} s, lossmap score_text {m:.3f} s,"
        f" ratio {m / b:.3f}x (goal <= 1.10x)"
    )

    lines = corpus_text().splitlines(keepends=True)
    while len(lines) < args.lines:
        lines += lines
    big = "".join(lines[: args.lines])
    t = time.perf_counter()
    scored = score_text(loaded, big)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    parsed = parse(big, "python")
    syntax = align(big, [(tok.start, tok.end) for tok in scored.tokens], parsed)
    summarize_lines(big, scored.tokens, syntax)
    summarize_definitions(big, scored.tokens, parsed)
    align_s = time.perf_counter() - t
    print(
        f"[3] {args.lines} lines, {len(scored.tokens)} tokens: scoring {score_s:.2f} s,"
        f" parse+align+aggregate {align_s:.3f} s = {100 * align_s / score_s:.2f}% (goal < 5%)"
    )
    with_gc = alignment_scaling()
    gc.disable()
    without_gc = alignment_scaling()
    gc.enable()
    print(
        f"[3b] alignment scaling, 10x the code: {without_gc:.1f}x the time with Python's"
        f" garbage collector off, {with_gc:.1f}x with it on (linear: 10x; a token-by-node"
        " scan: 100x)"
    )


def alignment_scaling() -> float:
    """Time of parse + align on 15,000 lines over 1,500 lines, with whitespace-split spans."""

    def run(n: int) -> float:
        text = "".join(f"def f_{i}(x):\n    return x + {i}\n" for i in range(n))
        spans, pos = [], 0
        for word in text.replace(" ", " \0").replace("\n", "\n\0").split("\0"):
            if word:
                spans.append((pos, pos + len(word)))
                pos += len(word)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            align(text, spans, parse(text, "python"))
            best = min(best, time.perf_counter() - t)
        return best

    return run(7500) / run(750)


if __name__ == "__main__":
    main()

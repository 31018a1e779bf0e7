"""lossmap vs the perplexed package, measured side by side in one run.

Peer: perplexed 0.0.1 (PyPI), the tool of the paper "Perplexed: Understanding When Large
Language Models are Confused", on the same model, the same files and the same device.
Install it with ``pip install -e '.[bench]'``.

Configured fairly: every file is cut so that both tools run exactly ``--window`` ids in one
window, batch size 1, so perplexed's ``padding="max_length"`` (with
``tokenizer.model_max_length`` set to the window) adds no padding at all. lossmap prepends the
tokenizer's BOS id when it defines one (the default model's GGUF tokenizer does, though the
tokenizer itself adds none); perplexed then gets the BOS token spelled out at the start of its
text, so both tools see the same ids and score the same ``window - 1`` tokens per file. Files
are the first ``--files`` modules of the running interpreter's standard library (sorted by
name; private ``_*`` modules and files shorter than the window skipped) whose cut text
tokenizes back to exactly those ids under both tools' tokenizer calls.

Reported:
[1] tokens per second of both (scored tokens: window - 1 per file; medians over repeats, the
    tools alternating ABBA so drift hits both alike) and the ratio (goal: lossmap >= 2x).
    perplexed's headline is its end-to-end ``perplexed(...)`` call as a user runs it, its
    dataset.map included (a fixed cost per call, mostly ``datasets`` hashing the tokenizer
    for a fingerprint); its model part alone (the summed time of its ``get_counts`` over the
    same batches) is shown too. Per-file medians: lossmap ``score_text`` vs perplexed
    ``get_counts``. The transformer body (``model.base_model``, timed with forward hooks;
    both tools go through it) is shown for both.
[2] the max per-token loss difference on shared tokens, in nats and bits (goal: identical).
    perplexed keeps, per decoded token string, a list of ``2**loss`` (loss in nats) in order
    of occurrence; lossmap's ids are grouped the same way and compared position by position.

Usage: python benchmarks/bench_peer.py [--device auto] [--window 1024] [--files 20]
       [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import sysconfig
import time
from collections import defaultdict
from pathlib import Path

import torch
from bench_scoring import sync

from lossmap.analysis import load_model
from lossmap.analysis.scoring.document_scorer import score_text
from lossmap.analysis.scoring.tokens import encode

LN2 = math.log(2.0)


def timed(fn, device) -> tuple[float, object]:
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t, out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(loaded) -> str:
    gpu = ""
    if loaded.device.type == "cuda":
        gpu = f", GPU {torch.cuda.get_device_name(loaded.device)}"
    return (
        f"machine: CPU {cpu_name()}{gpu}, {torch.get_num_threads()} threads, torch"
        f" {torch.__version__}, Python {platform.python_version()}, device {loaded.device},"
        f" dtype {loaded.dtype}"
    )


def pick_files(loaded, window: int, count: int) -> tuple[list[str], list[str], list[str], int]:
    """``count`` stdlib modules cut to ``window`` ids; texts for lossmap and perplexed, names.

    lossmap prepends the tokenizer's BOS id when it defines one (the default model's GGUF
    tokenizer does: ``<|endoftext|>``) but the tokenizer itself adds none; perplexed gets the
    BOS spelled out at the start of its text, so that both run the same ``window`` ids. Files
    whose cut text does not tokenize back to exactly those ids are skipped (counted).
    """
    tok = loaded.tokenizer
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ours, theirs, names, dropped = [], [], [], 0
    for path in sorted(stdlib.glob("*.py")):
        if len(ours) == count:
            break
        if path.name.startswith("_"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        ids, spans, has_bos = encode(loaded, text)
        if len(ids) < window:
            continue  # tiny: perplexed would pad it
        cut = text[: spans[window - 1][1]]
        want = ids[:window]
        peer_text = tok.bos_token + cut if has_bos else cut
        # Both tools' tokenizer calls must give the same window ids.
        same = encode(loaded, cut)[0] == want
        peer = tok(peer_text, truncation=True, padding="max_length")["input_ids"]
        if not (same and list(peer) == want):
            dropped += 1
            continue
        ours.append(cut)
        theirs.append(peer_text)
        names.append(path.name)
    if len(ours) < count:
        sys.exit(f"only {len(ours)} stdlib files of >= {window} tokens round-trip")
    return ours, theirs, names, dropped


class BodyTimer:
    """Time spent in ``model.base_model`` (forward hooks; both tools call it)."""

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.device, self.total, self._t = device, 0.0, 0.0
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, *_):
        sync(self.device)
        self._t = time.perf_counter()

    def _post(self, *_):
        sync(self.device)
        self.total += time.perf_counter() - self._t

    def take(self) -> float:
        total, self.total = self.total, 0.0
        return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import datasets
    import perplexed.core as pcore

    loaded = load_model(args.model, device=args.device)
    dev, tok, w = loaded.device, loaded.tokenizer, args.window
    print(machine(loaded))
    print(
        f"peer: perplexed {_version('perplexed')}, datasets {datasets.__version__},"
        f" transformers {_version('transformers')}; model {loaded.name}"
    )
    texts, peer_texts, names, dropped = pick_files(loaded, w, args.files)
    bos = ""
    if texts[0] != peer_texts[0]:
        bos = f"; the BOS {tok.bos_token!r} lossmap prepends is spelled out for perplexed"
    print(
        f"files: {len(texts)} stdlib modules cut to {w} ids ({names[0]} .. {names[-1]};"
        f" {dropped} skipped for not round-tripping){bos}"
    )

    # perplexed, configured fairly: the window is the tokenizer's max length, so
    # padding="max_length" pads nothing; batch size 1; one tokenizing process.
    tok.model_max_length = w
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    body = BodyTimer(loaded.model.base_model, dev)
    counts_t: list[float] = []
    real_get_counts = pcore.get_counts

    def get_counts(*a, **k):
        t, out = timed(lambda: real_get_counts(*a, **k), dev)
        counts_t.append(t)
        return out

    pcore.get_counts = get_counts

    def run_peer(data: list[str]) -> dict:
        return pcore.perplexed(
            loaded.model,
            datasets.Dataset.from_dict({"text": data}),
            tokenizer=tok,
            column="text",
            batch_size=1,
            num_proc=1,
            device=dev,
            return_distributions=True,
        )

    def run_lossmap(data: list[str]) -> list:
        return [score_text(loaded, text, window=w) for text in data]

    # Warm-up (lossmap builds its per-tokenizer tables; perplexed prints its bars this once).
    run_lossmap(texts[:1])
    run_peer(peer_texts[:1])
    pcore.track = lambda seq, description=None: seq
    datasets.disable_progress_bars()

    ours = {"total": [], "file": [[] for _ in texts], "body": []}
    peer = {"total": [], "counts": [], "file": [[] for _ in texts], "body": []}
    scored = peer_out = None

    def lossmap_pass():
        nonlocal scored
        scored = []
        body.take()
        start = time.perf_counter()
        for i, text in enumerate(texts):
            t, s = timed(lambda text=text: score_text(loaded, text, window=w), dev)
            ours["file"][i].append(t)
            scored.append(s)
        ours["total"].append(time.perf_counter() - start)
        ours["body"].append(body.take())

    def peer_pass():
        nonlocal peer_out
        counts_t.clear()
        body.take()
        t, peer_out = timed(lambda: run_peer(peer_texts), dev)
        peer["total"].append(t)
        peer["body"].append(body.take())
        peer["counts"].append(sum(counts_t))
        for i, c in enumerate(counts_t):
            peer["file"][i].append(c)

    for r in range(args.repeats):  # ABBA: each tool goes first every other repeat
        for step in (lossmap_pass, peer_pass) if r % 2 == 0 else (peer_pass, lossmap_pass):
            step()

    n = len(texts) * (w - 1)
    med = statistics.median
    m_total, p_total, p_counts = med(ours["total"]), med(peer["total"]), med(peer["counts"])
    m_file = med(med(f) for f in ours["file"])
    p_file = med(med(f) for f in peer["file"])
    print(
        f"[1] {len(texts)} files x {w - 1} scored tokens, batch size 1, median of"
        f" {args.repeats}: lossmap {n / m_total:.1f} tok/s ({m_total:.2f} s), perplexed"
        f" end-to-end {n / p_total:.1f} tok/s ({p_total:.2f} s): lossmap"
        f" {p_total / m_total:.2f}x faster (goal >= 2x)"
    )
    print(
        f"[1a] perplexed model part alone (get_counts: forward with labels, loss, per-token"
        f" bookkeeping) {n / p_counts:.1f} tok/s ({p_counts:.2f} s): lossmap"
        f" {p_counts / m_total:.2f}x faster; its tokenizing/dataset.map/loader rest"
        f" {p_total - p_counts:.2f} s"
    )
    print(
        f"[1b] per-file medians: lossmap score_text {m_file:.3f} s, perplexed get_counts"
        f" {p_file:.3f} s, ratio {p_file / m_file:.2f}x; transformer body (base_model) per run:"
        f" lossmap {med(ours['body']):.2f} s, perplexed {med(peer['body']):.2f} s"
    )
    compare_losses(loaded, scored, peer_out, n)


def compare_losses(loaded, scored, peer_out: dict, n: int) -> None:
    """Group lossmap's losses the way perplexed does and compare them position by position."""
    tok = loaded.tokenizer
    decoded: dict[int, str] = {}
    ours: dict[str, list[float]] = defaultdict(list)
    for s in scored:
        for t in s.tokens:
            if t.surprise is None:
                continue  # the first token without a BOS: perplexed does not score it either
            key = decoded.get(t.token_id)
            if key is None:
                key = decoded[t.token_id] = tok.decode(torch.tensor(t.token_id))
            ours[key].append(t.surprise * LN2)  # bits -> nats
    peer_n = sum(len(v) for v in peer_out.values())
    worst, total, compared, worst_key = 0.0, 0.0, 0, None
    for key, values in peer_out.items():
        mine = ours.get(key, [])
        for a, v in zip(mine, values, strict=False):
            d = abs(a - math.log2(v))  # perplexed stores 2**nats
            compared += 1
            total += d
            if d > worst:
                worst, worst_key = d, key
    unmatched = sum(abs(len(ours.get(k, [])) - len(peer_out.get(k, []))) for k in ours | peer_out)
    print(
        f"[2] losses on {compared} shared tokens (lossmap {sum(map(len, ours.values()))},"
        f" perplexed {peer_n}, expected {n}; {unmatched} unmatched): max |difference|"
        f" {worst:.2e} nats = {worst / LN2:.2e} bits (at {worst_key!r}), mean"
        f" {total / max(compared, 1):.2e} nats (goal: identical)"
    )
    if loaded.dtype != torch.float32:
        print(
            f"    note: in {loaded.dtype} perplexed takes its cross-entropy of {loaded.dtype}"
            " logits (its loss is rounded to that dtype); lossmap's log-softmax is float32"
        )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()

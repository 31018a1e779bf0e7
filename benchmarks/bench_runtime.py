"""CPU runtimes side by side: tokens/s, memory, load time and surprise difference from float32.

For each model (the offline 0.5B and 1.5B) and each runtime, a fresh process loads the model
and scores the same tokens of a real file (the first N tokens of the standard library's
``difflib.py``) the way the product does (sliding windows of 2,048 tokens, 512 of context,
every token's statistics), for N = 1,024 and 4,096. Runtimes:

- ``float32``: transformers in float32 (the reference).
- ``bfloat16-matmuls``: transformers, linear layers in bfloat16 on the CPU's matrix units,
  row-exact passes (``lossmap.analysis.models.row_exact``): the product's CPU default where
  the CPU has bfloat16 matrix units.
- ``int8-dynamic``: torch's dynamic int8 quantisation of the linear layers (not the LM head),
  ``torch.ao.quantization.quantize_dynamic``.
- ``llama.cpp``: llama-cpp-python (a source build: ``pip install llama-cpp-python``) running the
  GGUF file as shipped, logits for every position, lossmap's statistics from those logits.
  Skipped with the reason when not installed.

Per run it records tokens/s, load seconds, the process's peak RSS, and per-token surprise
against float32 of the same round (p50/p99/max bits). It also checks what incremental
re-scoring needs: a cache cropped to a prefix and extended again must give the numbers of a
full pass in the same runtime (``exact`` column: max difference in bits). Rounds alternate
the runtimes' order; ratios are taken within a round (this machine is noisy), the table shows
the median over rounds. Results are appended per (model, runtime, round) to ``--out``, so an
interrupted run resumes where it stopped.

Usage: python benchmarks/bench_runtime.py [--models default,default-large]
           [--runtimes float32,bfloat16-matmuls,int8-dynamic,llama.cpp]
           [--tokens 1024,4096] [--rounds 2] [--out benchmarks/runtime.jsonl]
       python benchmarks/bench_runtime.py --summary [benchmarks/runtime.jsonl]
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
RUNTIMES = ("float32", "bfloat16-matmuls", "int8-dynamic", "llama.cpp")
WINDOW, MIN_CONTEXT = 2048, 512


def source_text() -> str:
    return Path(inspect.getsourcefile(difflib)).read_text()


# -- the child: one model, one runtime -------------------------------------------------------
def child(model: str, runtime: str, tokens: list[int], out_dir: Path) -> dict:
    import torch

    from lossmap.analysis import load_model
    from lossmap.analysis.scoring.tokens import encode

    text = source_text()
    start = time.perf_counter()
    if runtime == "llama.cpp":
        scorer = LlamaCppScorer(model)
    else:
        loaded = load_model(
            model, device="cpu", runtime="float32" if runtime == "int8-dynamic" else runtime
        )
        if runtime == "int8-dynamic":
            quantize_int8_dynamic(loaded)
        scorer = TorchScorer(loaded)
    load_s = time.perf_counter() - start
    ids, _, has_bos = encode(scorer.loaded, text)
    record: dict = {"load_s": round(load_s, 2), "runs": {}}
    torch.set_grad_enabled(False)
    for n in tokens:
        part = ids[: n + (1 if has_bos else 0)]
        scorer.score(part[: min(len(part), 256)])  # warm-up (kernels, buffers)
        t0 = time.perf_counter()
        surprise = scorer.score(part)
        seconds = time.perf_counter() - t0
        np.save(out_dir / f"{runtime}-{n}.npy", surprise)
        record["runs"][str(n)] = {"tokens": len(part), "seconds": round(seconds, 3)}
    record["exact"] = scorer.prefix_reuse_error(ids[:1024])
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    record["threads"] = torch.get_num_threads()
    return record


class TorchScorer:
    """The product's own path: ``score_text`` and ``DocumentScorer``."""

    def __init__(self, loaded) -> None:
        self.loaded = loaded

    def score(self, ids: list[int]) -> np.ndarray:
        from lossmap.analysis.scoring.document_scorer import DocumentScorer

        scorer = DocumentScorer(self.loaded, top_k=5, window=WINDOW, keep_cache=False)
        rows = scorer._score_ids(ids, None, _no, 0, None)
        return np.array([r.surprise if r is not None else np.nan for r in rows[1:]])

    def prefix_reuse_error(self, ids: list[int]) -> float:
        """Max |surprise| difference between an incremental re-score (half the tokens
        reused from a cache, the rest run in pieces) and a full pass."""
        from lossmap.analysis.scoring.document_scorer import DocumentScorer

        scorer = DocumentScorer(self.loaded, top_k=5, window=WINDOW)
        half = len(ids) // 2
        scorer._score_ids(ids[:half] + [ids[half] + 1] + ids[half + 1 :], None, _no, 128, None)
        inc = scorer._score_ids(ids, None, _no, 128, None)
        full = self.score(ids)
        got = np.array([r.surprise for r in inc[1:]])
        return float(np.nanmax(np.abs(got - full)))


def _no(*_args) -> None:
    return None


def quantize_int8_dynamic(loaded) -> None:
    """torch's dynamic int8 linear layers in place of the float32 ones (not the LM head)."""
    import torch

    head = loaded.model.get_output_embeddings()
    names = {
        name
        for name, module in loaded.model.named_modules()
        if type(module) is torch.nn.Linear and module is not head
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.model = torch.ao.quantization.quantize_dynamic(
            loaded.model, names, dtype=torch.qint8
        )
    loaded.precision = "int8-dynamic"


class LlamaCppScorer:
    """llama.cpp on the GGUF file as shipped (assembled from the offline parts)."""

    def __init__(self, model: str) -> None:
        import ctypes

        import llama_cpp as ll
        import torch

        from lossmap.analysis.models.offline import OFFLINE_MODELS
        from lossmap.analysis.models.spec import parse_model_spec
        from lossmap.analysis.models.store import prepare

        gguf = Path(tempfile.gettempdir()) / f"lossmap-bench-{model}.gguf"
        if not gguf.exists():
            OFFLINE_MODELS[model].assemble(gguf)  # verifies SHA-256
        self.ll = ll
        ll.llama_backend_init()
        self._log = ll.llama_log_callback(lambda *_: None)  # kept: C holds the pointer
        ll.llama_log_set(self._log, ctypes.c_void_p(0))
        params = ll.llama_model_default_params()
        # The AMX repacking of llama-cpp-python 0.3.36 crashed on this machine (SIGSEGV in
        # the first decode); the plain AVX-512 VNNI kernels run.
        params.use_extra_bufts = False
        self.model = ll.llama_model_load_from_file(str(gguf).encode(), params)
        ctx = ll.llama_context_default_params()
        ctx.n_ctx, ctx.n_batch, ctx.n_ubatch = WINDOW, 512, 512
        ctx.n_threads = ctx.n_threads_batch = _threads()
        self.ctx = ll.llama_init_from_model(self.model, ctx)
        self.vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(self.model))
        self.batch = ll.llama_batch_init(512, 0, 1)
        # lossmap's tokenizer for the same model; no weights (the statistics only ask the
        # vocabulary size of the model).
        from transformers import AutoTokenizer

        path = prepare(parse_model_spec(model))
        self.loaded = SimpleNamespace(
            tokenizer=AutoTokenizer.from_pretrained(str(path)),
            cache={},
            device=torch.device("cpu"),
            model=_HeadShape(self.vocab),
            name=model,
        )

    def _decode(self, ids: list[int], at: int) -> np.ndarray:
        """Append ``ids`` at position ``at``; logits (len(ids), vocab) for every one."""
        out = []
        for p in range(0, len(ids), 512):
            chunk = ids[p : p + 512]
            b = self.batch
            b.n_tokens = len(chunk)
            for i, t in enumerate(chunk):
                b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = t, at + p + i, 1, 1
                b.seq_id[i][0] = 0
            if self.ll.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
            logits = self.ll.llama_get_logits(self.ctx)
            out.append(np.ctypeslib.as_array(logits, shape=(len(chunk), self.vocab)).copy())
        return np.concatenate(out)

    def _crop(self, n: int) -> None:
        self.ll.llama_memory_seq_rm(self.ll.llama_get_memory(self.ctx), 0, n, -1)

    def score(self, ids: list[int]) -> np.ndarray:
        import torch

        from lossmap.analysis.scoring.head import stats_from_logits
        from lossmap.analysis.scoring.windows import plan_windows

        surprise = np.full(len(ids) - 1, np.nan)
        for w in plan_windows(len(ids), WINDOW, MIN_CONTEXT):
            self._crop(0)
            logits = self._decode(ids[w.start : w.end], 0)
            first = max(w.score_from, w.start + 1)
            for c in range(first, w.end, 256):
                tgt = range(c, min(c + 256, w.end))
                z = torch.from_numpy(logits[[t - 1 - w.start for t in tgt]])
                actual = torch.tensor([ids[t] for t in tgt])
                for t, s in zip(tgt, stats_from_logits(self.loaded, z, actual, 5), strict=True):
                    surprise[t - 1] = s.surprise
        return surprise

    def prefix_reuse_error(self, ids: list[int]) -> float:
        """Max |surprise| difference, in bits, between logits of a cropped-and-extended
        cache and of one pass over the same tokens."""
        self._crop(0)
        full = self._decode(ids, 0)
        half = len(ids) // 2
        self._crop(half)
        extended = self._decode(ids[half:], half)

        def bits(lg: np.ndarray, at: int) -> np.ndarray:
            lg = lg.astype(np.float64)
            lse = np.log(np.exp(lg - lg.max(1, keepdims=True)).sum(1)) + lg.max(1)
            nxt = np.array(ids[at + 1 : at + 1 + len(lg)])
            return (lse[: len(nxt)] - lg[np.arange(len(nxt)), nxt]) / np.log(2)

        return float(np.abs(bits(extended, half) - bits(full[half:], half)).max())


class _HeadShape:
    """Stands in for the transformers model where the statistics ask for the vocabulary."""

    def __init__(self, vocab: int) -> None:
        import torch

        self._head = torch.nn.Linear(1, vocab, bias=False, device="meta")

    def get_output_embeddings(self):
        return self._head


def _threads() -> int:
    import torch

    return torch.get_num_threads()


# -- the parent: rounds of children ----------------------------------------------------------
def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["model"], r["runtime"], r["round"]))
    tokens = [int(t) for t in args.tokens.split(",")]
    for model in args.models.split(","):
        for rnd in range(args.rounds):
            runtimes = args.runtimes.split(",")
            order = runtimes if rnd % 2 == 0 else runtimes[::-1]
            with tempfile.TemporaryDirectory() as tmp:
                records = []
                for runtime in order:
                    if (model, runtime, rnd) in done:
                        continue
                    rec = _run_child(model, runtime, tokens, Path(tmp))
                    rec.update(model=model, runtime=runtime, round=rnd, machine=_machine())
                    records.append(rec)
                # Differences once the round is complete (float32 may run last in it); the
                # round is written whole, so an interrupted one is run again.
                for rec in records:
                    _add_differences(rec, Path(tmp))
                with out.open("a") as f:
                    f.writelines(json.dumps(rec) + "\n" for rec in records)
                for rec in records:
                    print(json.dumps(rec), flush=True)
    summary(out)


def _add_differences(rec: dict, tmp: Path) -> None:
    """Per length, p50/p99/max |surprise - float32's| (bits) of the same round."""
    if rec["runtime"] == "float32":
        return
    for n, run_n in rec.get("runs", {}).items():
        ref, mine = tmp / f"float32-{n}.npy", tmp / f"{rec['runtime']}-{n}.npy"
        if ref.exists() and mine.exists():
            d = np.abs(np.load(mine) - np.load(ref))
            d = d[~np.isnan(d)]
            run_n["diff_bits"] = [round(float(np.percentile(d, q)), 4) for q in (50, 99)] + [
                round(float(d.max()), 4)
            ]


def _run_child(model: str, runtime: str, tokens: list[int], tmp: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", model, runtime]
    cmd += [",".join(map(str, tokens)), str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"skipped": tail[:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()}, torch {torch.__version__}"


def summary(path: Path) -> None:
    """The table: per model, runtime and length, medians over rounds; the speed ratio is
    float32's time over the runtime's time in the same round."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by = {(r["model"], r["runtime"], r["round"]): r for r in rows}
    print(
        "| model | runtime | tokens | tokens/s | vs float32 | surprise diff p50 / p99 / max"
        " (bits) | crop + extend = full (max bits) | peak RSS | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["model"], r["runtime"]) for r in rows}, key=lambda k: (k[0], _order(k[1])))
    for model, runtime in keys:
        mine = [r for r in rows if r["model"] == model and r["runtime"] == runtime]
        if all("skipped" in r for r in mine):
            print(f"| {model} | {runtime} | | skipped: {mine[-1]['skipped']} | | | | | |")
            continue
        mine = [r for r in mine if "skipped" not in r]
        for n in sorted({int(n) for r in mine for n in r["runs"]}):
            speeds, ratios, diffs = [], [], []
            for r in mine:
                run_n = r["runs"].get(str(n))
                if not run_n:
                    continue
                speeds.append(run_n["tokens"] / run_n["seconds"])
                ref = by.get((model, "float32", r["round"]))
                if ref and str(n) in ref.get("runs", {}):
                    ratios.append(ref["runs"][str(n)]["seconds"] / run_n["seconds"])
                if "diff_bits" in run_n:
                    diffs.append(run_n["diff_bits"])
            diff = (
                " / ".join(f"{statistics.median(d[i] for d in diffs):.3f}" for i in range(3))
                if diffs
                else "reference"
            )
            ratio = f"{statistics.median(ratios):.2f}x" if ratios else ""
            if len(ratios) > 1:  # the rounds' spread: this machine is noisy
                ratio += f" ({min(ratios):.2f}-{max(ratios):.2f})"
            exact = max(r["exact"] for r in mine)
            print(
                f"| {model} | {runtime} | {n:,} | {statistics.median(speeds):.0f} | {ratio} |"
                f" {diff} | {exact:.1e} | {max(r['peak_rss_mb'] for r in mine):,} MB |"
                f" {statistics.median(r['load_s'] for r in mine):.1f} s |"
            )


def _order(runtime: str) -> int:
    return RUNTIMES.index(runtime) if runtime in RUNTIMES else len(RUNTIMES)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model, runtime, tokens, out_dir = sys.argv[2:6]
        rec = child(model, runtime, [int(t) for t in tokens.split(",")], Path(out_dir))
        print(json.dumps(rec))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="default,default-large")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--tokens", default="1024,4096")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "runtime.jsonl"))
    ap.add_argument("--summary", nargs="?", const=str(HERE / "runtime.jsonl"))
    args = ap.parse_args()
    if args.summary:
        summary(Path(args.summary))
        return
    run(args)


if __name__ == "__main__":
    main()

"""Remote scoring on this machine: a model server against the same model scored locally.

The server is ``--url`` (any model spec of a server, e.g. a GPU machine's vLLM serving the
same model), or else llama-cpp-python's OpenAI-compatible server (the ``test-server`` extra),
started here on a loopback port serving the offline default GGUF (``tests/llama_server.py``:
2 threads, ``--logits_all``). For each size N (the first N tokens of the standard library's
``difflib.py``, a real file, scored the product's way: windows of at most the server's
context), side by side in one run:

- ``local``: the same model in this process (the product's CPU runtime, ``auto``), a full
  score from scratch;
- ``remote``: a full score through the server (``lossmap.analysis`` with the model spec
  ``http://127.0.0.1:PORT/v1#default``), the server's prefix cache cleared first;
- ``engine``: the same prompts with no log-probabilities asked (``echo`` off): what the
  server's forward pass costs, the rest of ``remote`` being the engine's answer building and
  the client;
- ``edit``: one token changed at 90 % of the text, then re-scored remotely (the server
  reuses its cached prefix; lossmap sends each window holding the change) and locally (the
  ``DocumentScorer`` reuses its KV caches).

Rounds repeat each size; records are appended per (size, round) to ``--out``, so an
interrupted run resumes. ``--summary`` prints the table for RESULTS.md.

Usage: python benchmarks/bench_remote.py [--tokens 256,1024,2000] [--rounds 2]
           [--out benchmarks/remote.jsonl] [--url SPEC]
       python benchmarks/bench_remote.py --summary [benchmarks/remote.jsonl]
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def source_ids(tokenizer, n: int) -> list[int]:
    text = Path(inspect.getsourcefile(difflib)).read_text()
    return tokenizer(text, add_special_tokens=False)["input_ids"][:n]


def clear_server_cache(remote) -> None:
    """Send an unrelated prompt: llama-cpp-python keeps only the last prompt's prefix."""
    remote.client.post(
        "completions", {"model": remote.model, "prompt": "x", "max_tokens": 1, "temperature": 0}
    )


def run(args) -> None:
    import llama_server

    from lossmap.analysis import load_model
    from lossmap.analysis.models.offline import DEFAULT_MODEL
    from lossmap.analysis.scoring.document_scorer import DocumentScorer

    if args.url is None and not llama_server.available():
        sys.exit(llama_server.MISSING)
    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["tokens"], r["round"]))
    todo = [(n, k) for k in range(args.rounds) for n in args.tokens if (n, k) not in done]
    if not todo:
        print("all cases done; --summary prints them")
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.url is None:
            gguf = Path(tmp) / "default.gguf"
            DEFAULT_MODEL.assemble(gguf)
            server = llama_server.LlamaServer(gguf, Path(tmp) / "server.log")
            server.start()
        try:
            local = load_model("default")
            spec = args.url or f"{server.url}#{llama_server.ALIAS}"
            remote = load_model(spec)
            tok = local.tokenizer
            for n, k in todo:
                ids = source_ids(tok, n)
                text = tok.decode(ids)
                edit_at = int(len(text) * 0.9)
                edited = text[:edit_at] + "Q" + text[edit_at + 1 :]
                record = {"tokens": n, "round": k, "engine": remote.remote.engine}
                scorer = DocumentScorer(local)
                t = time.perf_counter()
                scorer.score(text)
                record["local_s"] = time.perf_counter() - t
                t = time.perf_counter()
                scorer.score(edited)
                record["local_edit_s"] = time.perf_counter() - t
                clear_server_cache(remote.remote)
                rscorer = DocumentScorer(remote)
                t = time.perf_counter()
                scored = rscorer.score(text)
                record["remote_s"] = time.perf_counter() - t
                t = time.perf_counter()
                rscorer.score(edited)
                record["remote_edit_s"] = time.perf_counter() - t
                clear_server_cache(remote.remote)
                body = {"model": remote.remote.model, "max_tokens": 1, "temperature": 0}
                body["prompt"] = "<|endoftext|>" + text
                t = time.perf_counter()
                remote.remote.client.post("completions", body)
                record["engine_s"] = time.perf_counter() - t
                record["scored_tokens"] = sum(1 for x in scored.tokens if x.scored)
                print(json.dumps(record), flush=True)
                with out.open("a") as f:
                    f.write(json.dumps(record) + "\n")
        finally:
            if server is not None:
                server.stop()


def summary(path: Path) -> None:
    rows: dict[int, list[dict]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows.setdefault(r["tokens"], []).append(r)
    print("| tokens | local s | remote s | remote / local | engine forward s | edit: local s"
          " | edit: remote s | rounds |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sorted(rows):
        rs = rows[n]

        def med(key: str, rs=rs) -> float:
            return statistics.median(r[key] for r in rs)

        ratio = statistics.median(r["remote_s"] / r["local_s"] for r in rs)
        print(
            f"| {n:,} | {med('local_s'):.1f} | {med('remote_s'):.1f} | {ratio:.0f}x"
            f" | {med('engine_s'):.1f} | {med('local_edit_s'):.2f} | {med('remote_edit_s'):.1f}"
            f" | {len(rs)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="256,1024,2000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "remote.jsonl"))
    parser.add_argument(
        "--url",
        help="a running model server's spec (e.g. a GPU machine's vLLM:"
        " http://host:8000/v1#Qwen/Qwen2.5-Coder-0.5B) instead of starting llama-cpp-python",
    )
    parser.add_argument("--summary", nargs="?", const=str(HERE / "remote.jsonl"))
    args = parser.parse_args()
    if args.summary:
        summary(Path(args.summary))
        return
    args.tokens = [int(x) for x in args.tokens.split(",")]
    run(args)


if __name__ == "__main__":
    main()

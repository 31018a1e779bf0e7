"""The language server end to end over stdio, driven like an editor.

[4] A scripted typing session: 200 keystrokes typed into a ~1,000-token file, word by word
    (80 ms between keys, a pause after each word: 0.65 s + ``--pause``). Latency from a
    version's didChange to its first publishDiagnostics (local-first or whole) and to its
    complete result, p50/p95 over the versions the server published (versions typed over
    before the debounce fires or while they are scored are dropped, by design). Hover
    requests sent while a re-score runs: answered within 50 ms?
[6] The judge in a whole file (``--judge-edits N``): a standard-library module of about
    ``--judge-lines`` lines is opened; once it is scored, N edits at random code lines (a
    name gets one letter more, as a typo would), each after the previous version's full
    result. Latency from the didChange to the first publishDiagnostics of that version (the
    live highlights) and to the twoSidedReady of that version that lists the edited line
    (the judge's verdict on it), p50 and max.
[5] Cold start: server process start -> first diagnostics of an opened file; the first run on an
    empty model cache (the GGUF is converted) and later runs.

Neovim 0.11's capabilities (pushed diagnostics). Usage:
python benchmarks/bench_lsp.py [--device auto] [--keys 200] [--cold-runs 2] [--skip-first-run]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_scoring import corpus_text
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pytest_lsp import client_capabilities

URI = Path("/tmp/lossmap-bench/typing.py").as_uri()


class Editor:
    """A pygls client that records when diagnostics and scoresReady arrive, per version."""

    def __init__(self, env: dict[str, str], options: dict) -> None:
        self.client = LanguageClient("lossmap-bench", "1")
        self.env, self.options = env, options
        self.first_diag: dict[int, float] = {}
        self.complete: dict[int, float] = {}
        self.partial: dict[int, float] = {}
        c = self.client

        @c.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diags(ls, params: types.PublishDiagnosticsParams) -> None:
            if params.version is not None:
                self.first_diag.setdefault(params.version, time.perf_counter())

        @c.feature("lossmap/scoresReady")
        def _ready(ls, params) -> None:
            get = params.get if isinstance(params, dict) else lambda k: getattr(params, k, None)
            if not get("partial"):
                self.complete.setdefault(get("version"), time.perf_counter())
            else:
                self.partial.setdefault(get("version"), time.perf_counter())

        @c.feature(types.WORKSPACE_CONFIGURATION)
        def _config(ls, params):
            return [self.options for _ in params.items]

        for method in (
            types.CLIENT_REGISTER_CAPABILITY,
            types.WINDOW_WORK_DONE_PROGRESS_CREATE,
            types.WORKSPACE_SEMANTIC_TOKENS_REFRESH,
        ):
            c.feature(method)(lambda ls, params: None)
        c.feature(types.WINDOW_SHOW_MESSAGE)(lambda ls, params: None)
        c.feature(types.WINDOW_LOG_MESSAGE)(lambda ls, params: None)
        c.feature(types.PROGRESS)(lambda ls, params: None)

    async def start(self) -> None:
        await self.client.start_io(sys.executable, "-m", "lossmap", "serve", env=self.env)
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=client_capabilities("neovim@v0.11"),
                initialization_options=self.options,
            )
        )
        self.client.initialized(types.InitializedParams())

    def open(self, text: str) -> None:
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=URI, language_id="python", version=1, text=text
                )
            )
        )

    def type_at(self, version: int, line: int, character: int, text: str) -> None:
        pos = types.Position(line=line, character=character)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=pos, end=pos), text=text
                    )
                ],
            )
        )

    async def hover_ms(self, line: int, character: int) -> float:
        t = time.perf_counter()
        await self.client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=types.Position(line=line, character=character),
            )
        )
        return 1000 * (time.perf_counter() - t)

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        # The server is gone after exit; the client's teardown has been seen to hang.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.client.stop(), 30)


async def until(predicate, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the server did not answer in time")
        await asyncio.sleep(0.005)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def session_text(model: str, tokens: int) -> tuple[str, int, int]:
    """Whole lines of real code up to ``tokens`` tokens of ``model``'s tokenizer: (text,
    the line in its middle where typing goes, its token count)."""
    from transformers import AutoTokenizer

    from lossmap.analysis.models.spec import parse_model_spec
    from lossmap.analysis.models.store import prepare

    tok = AutoTokenizer.from_pretrained(str(prepare(parse_model_spec(model))))
    text, count = "", 0
    for line in corpus_text().splitlines(keepends=True):
        n = len(tok(text + line, add_special_tokens=False)["input_ids"])
        if n > tokens:
            break
        text, count = text + line, n
    return text, text.count("\n") // 2, count


async def typing_session(args, env: dict[str, str]) -> None:
    text, line, n_tokens = session_text(args.model, args.tokens)
    options = {"model": args.model, "judge": args.judge, "device": args.device, "debounceMs": 300}
    editor = Editor(env, options)
    await editor.start()
    editor.open(text)
    await until(lambda: 1 in editor.complete, 600)
    # Type a new statement on an empty line inserted in the middle of the file.
    statement = "    total_count = compute_total(items, limit=limit) + offset\n" * 8
    words = statement.replace(" ", " \0").split("\0")
    sent: dict[int, float] = {}
    version, char, row = 1, 0, line
    editor.type_at(version + 1, row, 0, "\n")
    version += 1
    keys = 0
    hovers: list[float] = []
    for word in words:
        for ch in word:
            if keys >= args.keys:
                break
            version += 1
            editor.type_at(version, row, char, ch)
            sent[version] = time.perf_counter()
            keys += 1
            if ch == "\n":
                row, char = row + 1, 0
            else:
                char += 1
            await asyncio.sleep(0.08)
        # A pause after the word: the debounce fires and the server scores; meanwhile hover.
        await asyncio.sleep(0.35)
        for _ in range(3):
            hovers.append(await editor.hover_ms(max(0, line - 5), 4))
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.pause)
        if keys >= args.keys:
            break
    await until(lambda: version in editor.complete, 600)
    first = [1000 * (editor.first_diag[v] - sent[v]) for v in sent if v in editor.first_diag]
    whole = [1000 * (editor.complete[v] - sent[v]) for v in sent if v in editor.complete]
    print(
        f"[4] typing session, {keys} keystrokes into a {n_tokens}-token file: {len(whole)}"
        f" versions scored; didChange -> first publishDiagnostics p50"
        f" {statistics.median(first):.0f} ms, p95 {pct(first, 0.95):.0f} ms; -> complete result p50"
        f" {statistics.median(whole):.0f} ms, p95 {pct(whole, 0.95):.0f} ms"
    )
    print(
        f"[4] hover while re-scoring: {len(hovers)} requests, p50 {statistics.median(hovers):.1f}"
        f" ms, max {max(hovers):.1f} ms, {sum(h <= 50 for h in hovers)}/{len(hovers)} within 50 ms"
    )
    await editor.stop()


async def judge_session(args, env: dict[str, str]) -> None:
    import io
    import keyword
    import random
    import re
    import tokenize

    sys.path.insert(0, str(Path(__file__).parent / "bugloc"))
    from bench_judge_cost import closest_module
    from mutants import module_text

    module, n_lines = closest_module(args.judge_lines)
    text = module_text(module)
    options = {"model": args.model, "judge": args.judge, "device": args.device, "debounceMs": 300}
    editor = Editor(env, options)
    verdicts: dict[int, tuple[float, list[int]]] = {}

    @editor.client.feature("lossmap/twoSidedReady")
    def _two_sided(ls, params) -> None:
        get = params.get if isinstance(params, dict) else lambda k: getattr(params, k, None)
        verdicts.setdefault(get("version"), (time.perf_counter(), []))[1].append(
            (time.perf_counter(), list(get("lines")))
        )

    await editor.start()
    t = time.perf_counter()
    editor.open(text)
    await until(lambda: 1 in editor.complete, 1800)
    print(f"[6] {module} ({n_lines} lines) scored in {time.perf_counter() - t:.0f} s", flush=True)
    rng = random.Random(module)
    # Names in code (not in strings or comments, which the judge never confirms): (row, end).
    names = [
        (tok.end[0] - 1, tok.end[1])
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.NAME
        and re.fullmatch(r"[a-z_]{4,}", tok.string)
        and not keyword.iskeyword(tok.string)
    ]
    highlights, judged = [], []
    version = 1
    for row, end in sorted(rng.sample(names, args.judge_edits), key=lambda _: rng.random()):
        version += 1
        sent = time.perf_counter()
        editor.type_at(version, row, end, "x")  # a typo: one letter more on a name

        def has_verdict(v=version, line=row + 1) -> bool:
            return any(line in ls for _, ls in verdicts.get(v, (0, []))[1])

        await until(lambda v=version: v in editor.first_diag, 600)
        await until(has_verdict, 900)
        first_ok = min(t for t, ls in verdicts[version][1] if row + 1 in ls)
        highlights.append(editor.first_diag[version] - sent)
        judged.append(first_ok - sent)
        local = editor.partial.get(version)
        print(
            f"[6] edit of line {row + 1}: highlights {highlights[-1]:.1f} s"
            f" (local result {'-' if local is None else f'{local - sent:.1f} s'}),"
            f" the judge's verdict on it {judged[-1]:.1f} s",
            flush=True,
        )
        await until(lambda v=version: v in editor.complete, 900)
    print(
        f"[6] {len(judged)} edits in {module} ({n_lines} lines): didChange -> first"
        f" publishDiagnostics p50 {statistics.median(highlights):.1f} s, max"
        f" {max(highlights):.1f} s; -> the judge's verdict on the edited line p50"
        f" {statistics.median(judged):.1f} s, max {max(judged):.1f} s"
    )
    await editor.stop()


async def cold_start(args, env: dict[str, str], label: str) -> float:
    options = {"model": args.model, "judge": args.judge, "device": args.device}
    t = time.perf_counter()
    editor = Editor(env, options)
    await editor.start()
    editor.open("def add(a, b):\n    return a + b\n")
    await until(lambda: 1 in editor.first_diag, 900)
    seconds = time.perf_counter() - t
    await editor.stop()
    print(f"[5] cold start, {label}: server start -> first diagnostics {seconds:.1f} s")
    return seconds


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument(
        "--judge", default="auto", help="auto (default-large on CPU), same, none, or a spec"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument(
        "--pause", type=float, default=0.6, help="extra seconds after each word's hovers"
    )
    ap.add_argument("--cold-runs", type=int, default=2, help="later (warm-cache) runs for [5]")
    ap.add_argument("--skip-first-run", action="store_true", help="no empty-cache run for [5]")
    ap.add_argument("--judge-edits", type=int, default=0, help="[6] edits in a whole file")
    ap.add_argument("--judge-lines", type=int, default=2000, help="[6] the file's size")
    ap.add_argument("--only-judge", action="store_true", help="run [6] alone")
    ap.add_argument("--server-log", help="the server's job timings (LOSSMAP_LOG=debug) go here")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.server_log:
        env.update(LOSSMAP_LOG="debug", LOSSMAP_LOG_FILE=args.server_log)
    if args.judge_edits:
        await judge_session(args, env)
    if args.only_judge:
        return
    await typing_session(args, env)
    if not args.skip_first_run:
        with tempfile.TemporaryDirectory() as empty:
            await cold_start(args, {**env, "LOSSMAP_CACHE_DIR": empty}, "first run (empty cache)")
    for n in range(args.cold_runs):
        await cold_start(args, env, f"later run {n + 1}")


if __name__ == "__main__":
    asyncio.run(main())

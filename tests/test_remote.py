"""Scoring with a model server: the spec, the HTTP client (against a real stdlib HTTP
server), the numbers derived from an engine's top-k, and a real llama-cpp-python server
serving the offline default GGUF (its answers against the local model's, a killed and
restarted server, two clients at once, the CLI).

llama-cpp-python's server spends about 0.3 s per prompt token building its echoed
log-probabilities (it sorts the vocabulary in Python for each token), so the texts here are
short.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import llama_server
import pytest
import pytest_lsp
import torch
from lsprotocol import types
from pytest_lsp import LanguageClient

from lossmap.analysis.errors import ModelSpecError
from lossmap.analysis.models.http_client import HttpClient, RemoteError, RemoteUnavailable
from lossmap.analysis.models.remote import _PROBE_TEXTS, PromptLogprob, parse_remote_spec
from lossmap.analysis.models.spec import parse_model_spec
from lossmap.analysis.scoring.head import token_stats
from lossmap.analysis.scoring.remote_stats import _classes, stats_from_top

from lsp_helpers import SERVER, hover_at, open_doc, ready_versions, start, wait_for

#: A short function with a planted bug (line 5 returns ``item``; ``best`` was meant).
BUGGY = (
    "def find_max(items):\n"
    "    best = items[0]\n"
    "    for item in items:\n"
    "        if item > best:\n"
    "            best = item\n"
    "    return item\n"
)


# -- the spec -------------------------------------------------------------------------------
def test_remote_spec_parses_settings_and_model():
    spec = parse_remote_spec("https://gpu:8000/v1?tokenizer=default-large&context=8192#Qwen/7B")
    assert (spec.url, spec.model, spec.tokenizer, spec.context) == (
        "https://gpu:8000/v1",
        "Qwen/7B",
        "default-large",
        8192,
    )
    assert spec.root == "https://gpu:8000"
    assert parse_model_spec("http://127.0.0.1:8080/v1#m").kind == "remote"
    plain = parse_remote_spec("http://h:1/v1/")
    assert (plain.model, plain.tokenizer, plain.engine) == (None, "default", None)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("http://user:secret@h/v1", "LOSSMAP_API_KEY"),
        ("http://h/v1?colour=red", "unknown setting 'colour'"),
        ("http://h/v1?context=lots", "context must be a number"),
        ("http://h/v1?engine=ollama", "engine must be one of"),
        ("http://", "expected http(s)://host:port/v1#model"),
    ],
)
def test_bad_remote_specs_say_what_is_wrong(spec, says):
    with pytest.raises(ModelSpecError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_model_spec(spec)


# -- the HTTP client, against a real HTTP server ------------------------------------------
class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next (status, body) of the server's script."""

    def do_POST(self):  # noqa: N802 - the stdlib's name
        server = self.server
        server.seen.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = server.script.pop(0)
        if status == "slow":  # answer after the client gave up
            time.sleep(1.0)
            status = 200
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if "Location" in body:
            self.send_header("Location", body["Location"])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up
            self.wfile.write(data)

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.script, server.seen = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_client_retries_a_busy_server_with_backoff(scripted):
    scripted.script = [(503, {"error": "loading"}), (503, {}), (200, {"ok": 1})]
    waits = []
    client = HttpClient(f"http://127.0.0.1:{scripted.server_port}/v1", sleep=waits.append)
    assert client.post("completions", {"prompt": "x"}) == {"ok": 1}
    assert waits == [0.5, 1.0]


def test_client_names_the_server_error_and_the_api_key(scripted, monkeypatch):
    monkeypatch.setenv("LOSSMAP_API_KEY", "k-123")
    scripted.script = [(401, {"error": {"message": "invalid key"}})]
    client = HttpClient(f"http://127.0.0.1:{scripted.server_port}/v1", sleep=lambda s: None)
    with pytest.raises(RemoteError, match="HTTP 401: invalid key .*LOSSMAP_API_KEY"):
        client.post("completions", {})
    assert scripted.seen[0]["Authorization"] == "Bearer k-123"
    scripted.script = [(400, {"detail": "prompt too long " + "x" * 500})]
    with pytest.raises(RemoteError, match=r"HTTP 400: prompt too long x+\.\.\.$") as err:
        client.post("completions", {})
    assert not isinstance(err.value, RemoteUnavailable)  # a refusal is not retried


def test_a_request_that_times_out_is_not_sent_again(scripted):
    """A server that took the request and is still working (a busy llama-cpp-python server
    would queue a second copy behind the first) gets it once; the error says what to do."""
    scripted.script = [("slow", {"ok": 1})]
    client = HttpClient(f"http://127.0.0.1:{scripted.server_port}/v1", timeout=0.3)
    with pytest.raises(RemoteError, match=r"no answer within 0 s .*\?timeout=") as err:
        client.post("completions", {})
    assert not isinstance(err.value, RemoteUnavailable)
    assert len(scripted.seen) == 1


def test_redirects_are_refused_and_the_key_stays_off_plain_http(scripted, monkeypatch):
    scripted.script = [(307, {"Location": "http://elsewhere.invalid/v1/completions"})]
    client = HttpClient(f"http://127.0.0.1:{scripted.server_port}/v1", sleep=lambda s: None)
    with pytest.raises(RemoteError, match="redirected to http://elsewhere.invalid.*final address"):
        client.post("completions", {})
    monkeypatch.setenv("LOSSMAP_API_KEY", "k-123")
    far = HttpClient("http://gpu-box.invalid:8000/v1", tries=1)
    with pytest.raises(RemoteError, match="clear text.*use https"):
        far.get("models")  # refused before any connection


def test_the_engine_is_told_by_what_the_server_answers(scripted):
    """No ``?engine=``: vLLM answers ``/version``; llama-cpp-python's server does not (404)
    but answers ``/extras/tokenize``; a server answering neither is named as unknown; a
    refused key stops the probing at once."""
    from lossmap.analysis.models.remote import _detect_engine

    spec = parse_remote_spec(f"http://127.0.0.1:{scripted.server_port}/v1")
    client = HttpClient(spec.url, sleep=lambda s: None)
    scripted.script = [(404, {"detail": "Not Found"}), (200, {"tokens": [87]})]
    assert _detect_engine(spec, client) == "llama-cpp-python"
    scripted.script = [(200, {"name": "no version field"}), (404, {})]
    with pytest.raises(RemoteError, match="not a server lossmap knows.*engine="):
        _detect_engine(spec, client)
    scripted.script = [(404, {}), (401, {"error": {"message": "invalid key"}})]
    with pytest.raises(RemoteError, match="HTTP 401"):
        _detect_engine(spec, client)


def test_vllm_answers_are_read_by_token_id(scripted, real_model):
    """vLLM's documented answer shapes (``/version``, ``/v1/models``, ``/tokenize``,
    ``prompt_logprobs`` keyed by token-id strings with ranks), served by a scripted HTTP
    server: a stand-in until a vLLM server can be run here (it needs a GPU machine)."""
    from lossmap.analysis.models.remote import connect

    tok = real_model.tokenizer
    probes = [
        (200, {"tokens": tok(t, add_special_tokens=False)["input_ids"]}) for t in _PROBE_TEXTS
    ]
    scripted.script = [
        (200, {"version": "0.11.0"}),
        (200, {"data": [{"id": "coder", "max_model_len": 8192}]}),
        *probes,
    ]
    spec = parse_remote_spec(f"http://127.0.0.1:{scripted.server_port}/v1#coder")
    remote = connect(spec, tok, HttpClient(spec.url, sleep=lambda s: None))
    assert (remote.engine, remote.model, remote.context_length) == ("vllm", "coder", 8191)
    assert remote.tokenizer_check == "same tokens"

    def entry(actual, rank, top):
        out = {str(t): {"logprob": lp, "rank": r, "decoded_token": "x"} for t, lp, r in top}
        out.setdefault(str(actual), {"logprob": -9.0, "rank": rank, "decoded_token": "y"})
        return out

    top = [(11, -0.1, 1), (12, -2.5, 2)]
    scripted.script = [
        (
            200,
            {
                "choices": [  # out of order: matched by index
                    {"index": 1, "text": "", "prompt_logprobs": [None, entry(5, 57, top)]},
                    {"index": 0, "text": "", "prompt_logprobs": [None, entry(12, 2, top)]},
                ]
            },
        )
    ]
    first, second = remote.prompt_logprobs([[1, 12], [1, 5]], 2)
    assert first[0] is None and second[0] is None
    assert first[1].rank == 2 and first[1].logprob == -2.5
    assert first[1].top == [(11, -0.1), (12, -2.5)]
    assert second[1].rank == 57 and second[1].logprob == -9.0
    assert second[1].top == [(11, -0.1), (12, -2.5)]  # the actual token is past the top-k


def test_client_unreachable_server_is_named():
    port = llama_server.free_port()  # nothing listens there
    client = HttpClient(f"http://127.0.0.1:{port}/v1", tries=2, sleep=lambda s: None)
    with pytest.raises(RemoteUnavailable, match=rf"cannot reach .*127.0.0.1:{port}/v1 .*tried 2x"):
        client.get("models")


# -- numbers from a top-k -------------------------------------------------------------------
@pytest.mark.model
def test_numbers_from_a_top_k_match_the_full_distribution(real_model):
    """The per-token numbers lossmap derives from an engine's top-20 against those of the
    full vocabulary, on the real model's own distributions."""
    ids = real_model.tokenizer(BUGGY * 2)["input_ids"][:80]
    with torch.inference_mode():
        hidden = real_model.model.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        logits = real_model.model.get_output_embeddings()(hidden[:-1]).float()
        logprobs = torch.log_softmax(logits, -1)
        full = token_stats(real_model, hidden[:-1], torch.tensor(ids[1:]), 5)
    classes = _classes(real_model)
    entropy_err, class_err = [], []
    for pos, want in enumerate(full):
        top = logprobs[pos].topk(20)
        lp = float(logprobs[pos, ids[pos + 1]])
        rank = int((logprobs[pos] > lp).sum()) + 1
        alternatives = list(zip(top.indices.tolist(), top.values.tolist(), strict=True))
        entry = PromptLogprob(lp, rank if rank <= 20 else None, alternatives)
        got = stats_from_top(ids[pos + 1], entry, 5, classes)
        assert got.surprise == pytest.approx(want.surprise, abs=1e-3)
        assert got.top_ids == want.top_ids
        assert got.rank == (want.rank if want.rank <= 20 else None)
        entropy_err.append(abs(got.entropy - want.entropy))
        class_err.append(abs(got.code_margin - want.code_margin))
    # Estimates: the entropy from the top-20 plus an even tail; classes over the top-20.
    assert statistics.median(entropy_err) < 0.5, entropy_err
    assert statistics.median(class_err) < 0.05 and max(class_err) < 1.5, class_err


# -- a real llama-cpp-python server -----------------------------------------------------------
@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    if not llama_server.available():
        pytest.skip(llama_server.MISSING)
    from lossmap.analysis.models.offline import DEFAULT_MODEL

    folder = tmp_path_factory.mktemp("llama")
    gguf = folder / "default.gguf"
    DEFAULT_MODEL.assemble(gguf)  # verified by SHA-256 on the way
    server = llama_server.LlamaServer(gguf, folder / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote(llama):
    from lossmap.analysis import load_model

    return load_model(f"{llama.url}#{llama_server.ALIAS}")


@pytest.mark.model
def test_remote_model_connects_and_checks_the_tokenizer(remote, llama):
    assert remote.remote.engine == "llama-cpp-python"
    assert remote.remote.model == llama_server.ALIAS
    assert remote.remote.tokenizer_check == "same tokens"
    assert remote.context_length == llama_server.N_CTX - 2  # a BOS, the generated token
    assert remote.model is None


@pytest.mark.model
def test_remote_scores_equal_local_scores_of_the_same_gguf(remote, real_model):
    """llama.cpp computes the quantized weights as they are; transformers dequantizes them
    to float32: the runtimes differ by about what benchmarks/RESULTS.md ("CPU runtimes")
    measured for llama.cpp (p99 0.3-2.6 bits)."""
    from lossmap.analysis.scoring.document_scorer import score_text

    got, want = score_text(remote, BUGGY), score_text(real_model, BUGGY)
    assert [t.token_id for t in got.tokens] == [t.token_id for t in want.tokens]
    pairs = [(g, w) for g, w in zip(got.tokens, want.tokens, strict=True) if g.scored]
    assert len(pairs) == len(got.tokens) - 1  # all but the first (see models/remote.py)
    diff = [abs(g.surprise - w.surprise) for g, w in pairs]
    assert statistics.median(diff) < 0.2 and max(diff) < 3.0, diff
    margins = [abs(g.code_margin - w.code_margin) for g, w in pairs]
    assert statistics.median(margins) < 0.2, margins
    agree = sum(g.alternatives[0].token_id == w.alternatives[0].token_id for g, w in pairs)
    assert agree >= 0.85 * len(pairs)
    worst = max(pairs, key=lambda p: p[0].code_margin)
    assert worst[0].text == " item" and worst[0].start == BUGGY.rindex(" item")


@pytest.mark.model
def test_sliding_windows_over_a_server_with_a_short_context(llama, real_model):
    """A text longer than the server's context (``?context=`` says how long) is scored in
    sliding windows, each sent after a BOS; every token after the first gets numbers, close
    to the local model's with the same windows."""
    from lossmap.analysis import load_model
    from lossmap.analysis.scoring.document_scorer import score_text

    short = load_model(f"{llama.url}?context=32#{llama_server.ALIAS}")
    assert short.context_length == 30
    text = BUGGY
    got = score_text(short, text)
    want = score_text(real_model, text, window=30)
    assert got.window == want.window == 30 and len(got.tokens) > 30  # two windows
    pairs = [(g, w) for g, w in zip(got.tokens, want.tokens, strict=True)][1:]
    assert all(g.scored for g, _ in pairs)
    diff = [abs(g.surprise - w.surprise) for g, w in pairs]
    assert statistics.median(diff) < 0.3, diff


@pytest.mark.model
def test_remote_judge_confirms_two_sided_like_the_local_model(remote, real_model):
    from lossmap.analysis.analyze import analyze_text
    from lossmap.analysis.verdicts.confirm import confirm

    analysis = analyze_text(real_model, BUGGY, "find_max.py", "python")
    local = confirm(real_model, real_model, analysis, [6])
    served = confirm(remote, real_model, analysis, [6])
    a, b = local.lines[6], served.lines[6]
    assert b.suggestion == a.suggestion == "    return best"
    assert b.worst_token == a.worst_token
    # The two-sided margins agree up to the runtimes' difference; ``combined`` pairs them
    # with the judge's own causal margin, which the served judge (another model object
    # than the live one) computes itself (the local judge here is the live model).
    assert b.two_sided == pytest.approx(a.two_sided, abs=1.5)
    assert b.combined > 10 and b.tokens[b.worst_token].causal_margin is not None


@pytest.mark.model
def test_text_the_server_reads_as_control_tokens_is_refused_by_name(remote):
    from lossmap.analysis.scoring.document_scorer import score_text

    with pytest.raises(RemoteError, match="tokenized the text differently.*special token"):
        score_text(remote, "x = '<|endoftext|>'\n")


@pytest.mark.model
def test_a_killed_server_is_named_and_a_restarted_one_resumes(llama):
    from lossmap.analysis import load_model
    from lossmap.analysis.scoring.document_scorer import DocumentScorer

    loaded = load_model(f"{llama.url}#{llama_server.ALIAS}")
    loaded.remote.client.sleep = lambda s: None  # no backoff waits in the test
    scorer = DocumentScorer(loaded)
    before = scorer.score("def add(a, b):\n    return a + b\n")
    llama.stop()
    try:
        with pytest.raises(RemoteUnavailable, match=f"cannot reach .*{llama.port}"):
            scorer.score("def add(a, b):\n    return a - b\n")
    finally:
        llama.start()
    after = scorer.score("def add(a, b):\n    return a - b\n")
    assert before is not None and after is not None
    assert after.tokens[-3].text == " -" and after.tokens[-3].scored


@pytest.mark.model
def test_two_clients_share_one_server(llama, remote):
    """Two editors' servers score against one model server at once: each gets the numbers
    it gets alone."""
    from lossmap.analysis import load_model
    from lossmap.analysis.scoring.document_scorer import score_text

    other = load_model(f"{llama.url}#{llama_server.ALIAS}")
    texts = ["def twice(x):\n    return 2 * x\n", "for i in range(3):\n    print(i)\n"]
    alone = [score_text(remote, texts[0]), score_text(other, texts[1])]
    together: list = [None, None]

    def run(k, loaded):
        together[k] = score_text(loaded, texts[k])

    threads = [threading.Thread(target=run, args=(k, m)) for k, m in enumerate((remote, other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together, strict=True):
        # The server may reuse another prompt's cached prefix or not: the same numbers up to
        # llama.cpp's batch-dependent rounding.
        pairs = list(zip(a.tokens[1:], b.tokens[1:], strict=True))
        assert all(x.token_id == y.token_id for x, y in pairs)
        assert max(abs(x.surprise - y.surprise) for x, y in pairs) < 0.05


@pytest.mark.model
def test_cli_scans_and_shows_a_remote_model(llama, tmp_path):
    path = tmp_path / "find_max.py"
    path.write_text(BUGGY)
    spec = f"{llama.url}#{llama_server.ALIAS}"
    shown = subprocess.run(
        [sys.executable, "-m", "lossmap.cli", "model", "--model", spec, "--judge", "same"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"server:    {llama.url}" in shown.stdout
    assert "engine:    llama-cpp-python, model 'default', tokenizer: same tokens" in shown.stdout
    run = subprocess.run(
        [sys.executable, "-m", "lossmap.cli", "scan", str(path), "--json", "--model", spec]
        + ["--judge", "same", "--confirm", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["files"][0]["top_lines"][0] == 6, doc["files"][0]["top_lines"]
    assert Path(path).read_text() == BUGGY


# -- the language server with a remote live model --------------------------------------------
@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: LanguageClient, llama):
    lsp_client.stale = []  # type: ignore[attr-defined]

    @lsp_client.feature("lossmap/scoresStale")
    def _stale(ls, params):
        lsp_client.stale.append(params)

    options = {
        "model": f"{llama.url}#{llama_server.ALIAS}",
        "judge": "none",
        "debounceMs": 50,
    }
    await start(lsp_client, "neovim@v0.11", options)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.model
@pytest.mark.asyncio(loop_scope="function")
async def test_server_keeps_the_last_result_while_the_model_server_is_down(editor, llama):
    """A model server that stops answering: the editor is told, keeps the last result
    (marked stale), and gets fresh scores when the server is back, without another edit."""
    client = editor
    uri = (Path("/tmp/lossmap-test") / "remote.py").as_uri()
    open_doc(client, uri, BUGGY)
    await wait_for(lambda: 1 in ready_versions(client, uri), timeout=300, what="scores")
    llama.stop()
    try:
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=BUGGY + "\n")],
            )
        )
        await wait_for(lambda: client.stale, timeout=120, what="scoresStale")
        assert client.stale[0].version == 1
        assert "cannot reach the model server" in client.stale[0].reason
        assert any("showing the last result" in m.message for m in client.messages)
        hover = await hover_at(client, uri, 5, 12)  # ``item`` on the last line
        assert hover is not None and "surprise" in hover.contents.value
    finally:
        llama.start()
    await wait_for(lambda: 2 in ready_versions(client, uri), timeout=300, what="fresh scores")


@pytest.mark.model
def test_diff_and_report_with_a_remote_model(llama, tmp_path):
    """``diff`` with the served model as the judge of the local live model, and ``report``
    with the served model live (its records name the server's model)."""
    spec = f"{llama.url}#{llama_server.ALIAS}"
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (repo / "find_max.py").write_text(BUGGY.replace("return item", "return best"))
    git("add", ".")
    git("commit", "-q", "-m", "first")
    (repo / "find_max.py").write_text(BUGGY)

    def lossmap(*argv, cwd=repo):
        return subprocess.run(
            [sys.executable, "-m", "lossmap.cli", *argv],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
        )

    done = lossmap("diff", "--format", "json", "--model", "default", "--judge", spec)
    assert done.returncode in (0, 1), done.stderr
    review = json.loads(done.stdout)
    assert review["judge"] == spec
    assert review["lines"][0]["line"] == 6, review["lines"][:2]
    out, corpus = tmp_path / "report", tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "hello.py").write_text("print('hello')\n")  # short: the server is slow
    done = lossmap(
        "report", str(corpus), "--out", str(out), "--model", spec, "--judge", "same",
        "--confirm", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "report.json").read_text())
    assert [Path(f["path"]).name for f in doc["files"]] == ["hello.py"]


@pytest_lsp.fixture(config=SERVER)
async def late_editor(lsp_client: LanguageClient, llama):
    """An editor whose model server is down when the language server starts."""
    llama.stop()
    options = {"model": f"{llama.url}#{llama_server.ALIAS}", "judge": "none", "debounceMs": 50}
    await start(lsp_client, "neovim@v0.11", options)
    yield
    await lsp_client.shutdown_session()
    if llama.proc is None:
        llama.start()


@pytest.mark.model
@pytest.mark.asyncio(loop_scope="function")
async def test_server_waits_for_a_model_server_that_is_down_at_start(late_editor, llama):
    client = late_editor
    uri = (Path("/tmp/lossmap-test") / "late.py").as_uri()
    open_doc(client, uri, BUGGY)

    def retrying() -> bool:
        return any(
            "trying again" in (getattr(report, "message", None) or "")
            for reports in client.progress_reports.values()
            for report in reports
        )

    await wait_for(retrying, timeout=120, what="a 'trying again' progress report")
    llama.start()
    await wait_for(lambda: 1 in ready_versions(client, uri), timeout=300, what="scores")

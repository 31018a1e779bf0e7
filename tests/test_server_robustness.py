"""Bad input over stdio: what a user gets from the server when an editor sends what editors send.

The server runs as a subprocess on the tiny random model (seconds to start and to score), driven
by pytest-lsp with VS Code's capabilities (UTF-16, pull diagnostics) and Neovim's (UTF-8, push
diagnostics). For every case the user must get a clear message or a correct result, the server
must keep answering, and nothing may be published for a version older than the buffer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, make_test_lsp_client

from lsp_helpers import (
    SERVER,
    _get,
    _opt,
    decode_tokens,
    hover_at,
    open_doc,
    ready_versions,
    start,
    units_slice,
    wait_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Low thresholds, no extra bits for lines the judge did not confirm (there is no judge): the
#: tiny model is random, so every token is a little surprising and every document publishes
#: some diagnostics, which these tests need to see.
OPTIONS = {
    "judge": "none",
    "device": "cpu",
    "debounceMs": 20,
    "diagnosticThreshold": 0.5,
    "unconfirmedExtraBits": 0,
}
CODE = "def f(x):\n    return x + 1\n"


def recording_client() -> LanguageClient:
    """pytest-lsp's client, keeping every publishDiagnostics (with its version), not only the
    last per document."""
    client = make_test_lsp_client()
    client.published = []  # type: ignore[attr-defined]
    default = DEFAULT_CLIENT_FEATURES[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]
    client.protocol.fm.features.pop(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def publish(ls, params: types.PublishDiagnosticsParams) -> None:
        client.published.append(params)
        default(ls, params)

    return client


RECORDING = ClientServerConfig(
    server_command=SERVER.server_command, client_factory=recording_client
)


@pytest_lsp.fixture(config=SERVER, scope="module")
async def vscode(lsp_client: LanguageClient, tiny_model_dir):
    await start(lsp_client, "vscode", {**OPTIONS, "model": str(tiny_model_dir)})
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=RECORDING, scope="module")
async def neovim(lsp_client: LanguageClient, tiny_model_dir):
    await start(lsp_client, "neovim@v0.11", {**OPTIONS, "model": str(tiny_model_dir)})
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, scope="module")
async def broken(lsp_client: LanguageClient, tmp_path_factory):
    missing = tmp_path_factory.mktemp("gone") / "no-such-model"
    await start(lsp_client, "neovim@v0.11", {**OPTIONS, "model": str(missing)})
    yield
    await lsp_client.shutdown_session()


_counter = [0]


def fresh_uri(name: str, folder: str = "/tmp/lossmap-robust") -> str:
    """A new document each time (the server is shared by the module's tests)."""
    _counter[0] += 1
    return Path(folder, f"{_counter[0]}-{name}").as_uri()


def change(client, uri: str, version: int, text: str, rng: types.Range | None = None) -> None:
    event = (
        types.TextDocumentContentChangeWholeDocument(text=text)
        if rng is None
        else types.TextDocumentContentChangePartial(range=rng, text=text)
    )
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[event],
        )
    )


def at(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


async def scored(client, uri: str, version: int = 1) -> None:
    await wait_for(lambda: version in ready_versions(client, uri), 60, f"scores of {uri}")


async def tokens_of(client, uri: str) -> list[tuple[int, int, int, int, int]]:
    result = await client.text_document_semantic_tokens_full_async(
        types.SemanticTokensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    return decode_tokens(result.data)


async def scores_of(client, uri: str, **extra) -> dict | None:
    return await client.protocol.send_request_async(
        "lossmap/documentScores", {"textDocument": {"uri": uri}, **extra}
    )


def lsp_lines(text: str) -> list[str]:
    """The text's lines as LSP counts them (\\r\\n, \\r, \\n)."""
    import re

    return re.split(r"\r\n|\r|\n", text)


async def assert_tokens_name_the_clients_text(client, uri, text, encoding) -> None:
    """Every highlighted piece, read from the client's own copy at the range the server sent,
    is the text of a token the server scored (stripped): positions agree with the editor."""
    lines = lsp_lines(text)
    scores = await scores_of(client, uri)
    texts = {_get(t, "text").strip() for t in _get(scores, "tokens")}
    found = await tokens_of(client, uri)
    assert found, "no semantic tokens"
    for line, column, length, _, _ in found:
        piece = units_slice(lines[line], column, length, encoding)
        assert piece and any(piece in t for t in texts), (line, piece)


def messages(client) -> list[str]:
    return [m.message for m in client.messages]


# -- 1. percent-encoded URIs ------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    ["file:///tmp/my%20dir/x.py", "file:///c%3A/proj/x.py", "file:///tmp/gr%C3%BC%C3%9Fe.py"],
)
async def test_percent_encoded_uris_are_scored_and_published_under_the_clients_uri(neovim, uri):
    open_doc(neovim, uri, CODE * 4)  # past the first tokens, which count in no verdict
    await scored(neovim, uri)
    assert await hover_at(neovim, uri, 1, 11) is not None
    await wait_for(lambda: neovim.diagnostics.get(uri), 10, "diagnostics under the sent URI")
    neovim.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


# -- 2. line terminators ----------------------------------------------------------------
async def test_a_lone_cr_file_has_its_tokens_on_their_own_lines(vscode):
    uri = fresh_uri("cr.py")
    text = "a = 1\rb = 2\rc = a + b\r"
    open_doc(vscode, uri, text)
    await scored(vscode, uri)
    lines = {line for line, *_ in await tokens_of(vscode, uri)}
    assert lines == {0, 1, 2}
    await assert_tokens_name_the_clients_text(vscode, uri, text, "utf-16")


async def test_after_edits_around_form_feeds_and_separators_utf16_positions_match(vscode):
    await edit_around_separators(vscode, "utf-16")


async def test_after_edits_around_form_feeds_and_separators_utf8_positions_match(neovim):
    await edit_around_separators(neovim, "utf-8")


async def edit_around_separators(client, encoding: str) -> None:
    uri = fresh_uri("separators.py")
    text = "x = 1\x0c\ny = '\u2028'\x85 + '\u2029'\v\nz = x\t+ 😀\n"
    open_doc(client, uri, text)
    # Replace `y` on line 1 and append on the last line; pygls's splitlines() counted the
    # form feed, U+2028, U+0085 and U+2029 as line ends and edited the wrong place.
    change(client, uri, 2, "why", types.Range(start=at(1, 0), end=at(1, 1)))
    text = text.replace("y =", "why =")
    last = lsp_lines(text)[2]
    col = len(last.encode("utf-16-le")) // 2 if encoding == "utf-16" else len(last.encode())
    change(client, uri, 3, " * 2", types.Range(start=at(2, col), end=at(2, col)))
    text = text.replace("😀\n", "😀 * 2\n")
    await scored(client, uri, 3)
    await assert_tokens_name_the_clients_text(client, uri, text, encoding)
    scores = await scores_of(client, uri)
    scored_text = "".join(_get(t, "text") for t in _get(scores, "tokens"))
    assert "".join(scored_text.split()) == "".join(text.split())  # the edits landed right


# -- 3. long lines ----------------------------------------------------------------------
async def test_a_long_minified_line_answers_in_parts_and_says_so(vscode):
    uri = fresh_uri("min.js")
    text = "var a=[" + ",".join(f"'é{i}'" for i in range(1_000)) + "];\n"  # 7k tokens, one line
    open_doc(vscode, uri, text, "javascript")
    await scored(vscode, uri)
    scores = await scores_of(vscode, uri)
    assert _opt(scores, "truncated") is True and len(_get(scores, "tokens")) == 3_000
    surprising = await scores_of(vscode, uri, minLevel=1)
    assert all(_get(t, "level") >= 1 for t in _get(surprising, "tokens"))
    line_1 = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}}
    part = await scores_of(vscode, uri, range=line_1)
    assert list(_get(part, "tokens")) == [] and not _opt(part, "truncated")
    assert await tokens_of(vscode, uri)
    hover = await hover_at(vscode, uri, 0, 3_000)
    assert hover is not None and "surprise" in hover.contents.value
    await wait_for(
        lambda: any("more than 3,000 scored tokens" in m for m in messages(vscode)),
        10,
        "the message that the heat map is partial",
    )


# -- 4. no stale publication ------------------------------------------------------------
async def test_a_settings_change_while_an_edit_waits_publishes_for_the_current_text(neovim):
    uri = fresh_uri("stale.py")
    text = CODE * 3
    open_doc(neovim, uri, text)
    await scored(neovim, uri)
    await wait_for(lambda: neovim.diagnostics.get(uri), 10, "first diagnostics")
    before = {(d.range.start.line, d.message) for d in neovim.diagnostics[uri]}
    neovim.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"lossmap": {**OPTIONS, "debounceMs": 60_000}})
    )
    await asyncio.sleep(0.3)
    change(neovim, uri, 2, "# a new first line\n", types.Range(start=at(0, 0), end=at(0, 0)))
    published = len(neovim.published)
    neovim.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"lossmap": {**OPTIONS, "debounceMs": 60_000, "displayThreshold": 1.0}}
        )
    )
    await wait_for(lambda: len(neovim.published) > published, 10, "the republication")
    for params in neovim.published[published:]:
        if params.uri == uri:
            assert params.version == 2  # never the previous version's
    after = {(d.range.start.line, d.message) for d in neovim.diagnostics[uri]}
    assert after == {(line + 1, message) for line, message in before}  # moved with the text
    neovim.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"lossmap": OPTIONS})
    )


async def test_fifty_edits_in_a_burst_publish_only_for_the_last_version(neovim):
    uri = fresh_uri("burst.py")
    open_doc(neovim, uri, CODE)
    await scored(neovim, uri)
    start_at = len(neovim.published)
    text = CODE
    for version in range(2, 52):
        text += f"y{version} = {version}\n"
        change(neovim, uri, version, text)
    await scored(neovim, uri, 51)
    mine = [p for p in neovim.published[start_at:] if p.uri == uri]
    assert mine and all(p.version == 51 for p in mine if p.diagnostics)
    assert ready_versions(neovim, uri)[-1] == 51


async def test_a_version_going_backwards_never_revives_an_older_result(neovim):
    uri = fresh_uri("regress.py")
    open_doc(neovim, uri, CODE)
    await scored(neovim, uri)
    change(neovim, uri, 5, CODE + "a = 1\n")
    change(neovim, uri, 3, CODE + "b = 2\n")  # a client bug: the version went down
    await scored(neovim, uri, 3)
    scores = await scores_of(neovim, uri)
    assert _get(scores, "version") == 3
    assert any(_get(t, "text").strip() == "b" for t in _get(scores, "tokens"))


async def test_closing_a_document_while_it_is_scored_publishes_nothing_after(neovim):
    uri = fresh_uri("closed.py")
    open_doc(neovim, uri, CODE * 40)
    await asyncio.sleep(0.05)
    neovim.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await asyncio.sleep(0.2)
    closed_at = len(neovim.published)
    other = fresh_uri("after-close.py")
    open_doc(neovim, other, CODE)
    await scored(neovim, other)  # one worker: the closed document's job is over
    assert not [p for p in neovim.published[closed_at:] if p.uri == uri and p.diagnostics]
    assert await hover_at(neovim, uri, 0, 1) is None


# -- 8. smaller ones --------------------------------------------------------------------
async def test_an_unpaired_surrogate_is_named_once_not_on_every_rescore(vscode):
    uri = fresh_uri("surrogate.py")
    text = 'x = "\ud800"\n'
    open_doc(vscode, uri, text)
    await wait_for(lambda: any("surrogate" in m for m in messages(vscode)), 20, "a message")
    for version in range(2, 5):
        change(vscode, uri, version, text + f"y = {version}\n")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    told = [m for m in messages(vscode) if "surrogate" in m]
    assert len(told) == 1 and "line 1" in told[0] and "U+D800" in told[0]
    assert not any("TypeError" in m for m in messages(vscode))


async def test_a_change_to_a_document_never_opened_is_ignored_quietly(vscode, tmp_path):
    bad = tmp_path / "latin1.py"
    bad.write_bytes(b"caf\xe9 = 1\n")  # on disk, not valid UTF-8: pygls used to read it
    uri = bad.as_uri()
    before = len(vscode.messages)
    change(vscode, uri, 2, "x", types.Range(start=at(0, 0), end=at(0, 0)))
    await asyncio.sleep(0.3)
    assert not [m for m in vscode.messages[before:] if "Error" in m.message]
    assert await hover_at(vscode, uri, 0, 0) is None  # still answering


async def test_visible_ranges_are_taken_and_malformed_ones_ignored(vscode):
    uri = fresh_uri("visible.py")
    open_doc(vscode, uri, CODE)
    await scored(vscode, uri)
    before = len(vscode.messages)
    lines = {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}}
    vscode.protocol.notify(
        "lossmap/visibleRanges", {"textDocument": {"uri": uri}, "ranges": [lines]}
    )
    vscode.protocol.notify("lossmap/visibleRanges", {"textDocument": {"uri": uri}, "ranges": 5})
    vscode.protocol.notify("lossmap/visibleRanges", {"ranges": []})
    vscode.protocol.notify("lossmap/visibleRanges", {"textDocument": {"uri": fresh_uri("no.py")}})
    assert await hover_at(vscode, uri, 1, 5) is not None  # still answering
    assert not [m for m in vscode.messages[before:] if m.type == types.MessageType.Error]


async def test_a_hover_outside_the_text_shows_nothing(vscode):
    uri = fresh_uri("hover.py")
    open_doc(vscode, uri, CODE)
    await scored(vscode, uri)
    assert await hover_at(vscode, uri, 1, 5) is not None
    assert await hover_at(vscode, uri, 40, 0) is None  # past the last line
    assert await hover_at(vscode, uri, 0, 80) is None  # past the end of a line


async def test_top_k_has_an_upper_bound(vscode):
    before = len(vscode.messages)
    vscode.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"lossmap": {"topK": 100_000}})
    )
    await wait_for(lambda: len(vscode.messages) > before, 10, "a warning")
    assert "topK" in vscode.messages[-1].message and "at most 100" in vscode.messages[-1].message


async def test_most_surprising_says_which_version_its_ranges_belong_to(vscode):
    uri = fresh_uri("spots.py")
    open_doc(vscode, uri, CODE * 2)
    await scored(vscode, uri)
    spots = await vscode.workspace_execute_command_async(
        types.ExecuteCommandParams(command="lossmap.mostSurprising", arguments=[uri, 3])
    )
    assert spots and all(_get(s, "version") == 1 for s in spots)


# -- the rest of the bad-input list -------------------------------------------------------
async def test_nul_content_is_refused_with_a_message_and_no_scores(neovim):
    uri = fresh_uri("blob.py")
    open_doc(neovim, uri, "x = 1\n\x00\x01\x02")
    await wait_for(lambda: any("binary" in m for m in messages(neovim)), 20, "a message")
    assert uri not in [_get(p, "uri") for p in neovim.scores_ready]
    assert await hover_at(neovim, uri, 0, 0) is None


async def test_a_five_megabyte_buffer_is_refused_with_a_message(vscode):
    uri = fresh_uri("huge.py")
    open_doc(vscode, uri, "x = 1\n" * 900_000)
    await wait_for(
        lambda: any("larger than maxFileBytes" in m for m in messages(vscode)), 20, "why"
    )
    assert "raise lossmap.maxFileBytes" in [m for m in messages(vscode) if "larger" in m][-1]
    assert await hover_at(vscode, uri, 0, 0) is None


@pytest.mark.parametrize("text", ["", "   \n\t\n\n"])
async def test_empty_and_blank_files_are_scored_without_error(vscode, text):
    uri = fresh_uri("empty.py")
    before = len(vscode.messages)
    open_doc(vscode, uri, text)
    await scored(vscode, uri)
    assert not [m for m in vscode.messages[before:] if m.type == types.MessageType.Error]
    assert await tokens_of(vscode, uri) == []  # whitespace is never highlighted


async def test_a_bom_tabs_and_emoji_keep_utf16_columns(vscode):
    await bom_tabs_and_emoji(vscode, "utf-16")


async def test_a_bom_tabs_and_emoji_keep_utf8_columns(neovim):
    await bom_tabs_and_emoji(neovim, "utf-8")


async def bom_tabs_and_emoji(client, encoding: str) -> None:
    uri = fresh_uri("emoji.py")
    text = "\ufeffdef f(😀x):\n\treturn '😀😀' + x  # ünïcode\n"
    open_doc(client, uri, text)
    await scored(client, uri)
    await assert_tokens_name_the_clients_text(client, uri, text, encoding)


async def test_an_edit_past_the_end_is_clamped_as_lsp_says(vscode):
    uri = fresh_uri("clamp.py")
    open_doc(vscode, uri, CODE)
    change(vscode, uri, 2, "\nz = 3\n", types.Range(start=at(99, 0), end=at(120, 4)))
    await scored(vscode, uri, 2)
    scores = await scores_of(vscode, uri)
    assert "".join(_get(t, "text") for t in _get(scores, "tokens")).replace(" ", "").endswith("z=3")


async def test_an_unknown_language_is_scored_without_syntax_and_says_so(vscode):
    uri = fresh_uri("notes.weird")
    open_doc(vscode, uri, "frobnicate the widget\n", "weirdlang")
    await scored(vscode, uri)
    assert any("no grammar for language 'weirdlang'" in m for m in messages(vscode))


async def test_a_model_that_fails_to_load_is_named_and_the_server_keeps_answering(broken):
    await wait_for(
        lambda: any(m.type == types.MessageType.Error for m in broken.messages), 30, "the error"
    )
    error = next(m.message for m in broken.messages if m.type == types.MessageType.Error)
    assert "no-such-model" in error
    uri = fresh_uri("orphan.py")
    open_doc(broken, uri, CODE)
    assert await hover_at(broken, uri, 0, 0) is None
    assert await scores_of(broken, uri) is None

"""The lossmap language server: the ``LossmapServer`` and its handlers.

The server holds the settings, the open documents, what it keeps per document and the model
host (two roles: the live model scores as you type, the judge confirms suspicious lines
two-sided). Handlers are thin: notifications hand documents to ``scheduling`` (edit -> job
on the host -> result -> publication), requests are answered by ``answers`` from the stored
results only, and never wait on a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from .. import __version__
from ..analysis.errors import LossmapError
from ..analysis.models.roles import ModelRoles, resolve_roles
from . import answers, features, scheduling
from .answers import MAX_DOCUMENT_SCORES, MAX_SEMANTIC_TOKENS  # noqa: F401 (for benchmarks)
from .capabilities import ClientFeatures
from .config import ServerConfig, merge_config
from .doc_state import DocState
from .documents import DocumentStore, display_name, uri_key
from .load_progress import LoadProgress
from .model_host import ModelHost
from .protocol import (
    CMD_MOST_SURPRISING,
    CMD_RESCORE,
    DOCUMENT_SCORES,
    VISIBLE_RANGES,
    DocumentScores,
    SurprisingSpot,
)

SERVER_CANCELLED = -32802


class LossmapProtocol(LanguageServerProtocol):
    """pygls's protocol, except that text documents are lossmap's own (``documents.py``):
    pygls's workspace copy is never created, so it cannot drift from the editor's."""

    def _handlers(self, method: str, params: Any):
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        yield from self._handlers(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        yield from self._handlers(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        yield from self._handlers(types.TEXT_DOCUMENT_DID_CLOSE, params)


class LossmapServer(LanguageServer):
    """pygls server holding the configuration, the model host and per-document state."""

    def __init__(self) -> None:
        super().__init__("lossmap", __version__, protocol_cls=LossmapProtocol)
        self.config = ServerConfig()
        #: Problems with the initializationOptions, shown once the client is initialized.
        self.init_problems: list[str] = []
        #: What the client can do, resolved at ``initialize``.
        self.client = ClientFeatures()
        self.host = ModelHost()
        self.documents = DocumentStore()
        self.docs: dict[str, DocState] = {}  # by ``uri_key``, like ``documents``
        self.loop: asyncio.AbstractEventLoop | None = None
        self._result_counter = 0
        self._load_progress: LoadProgress | None = None  # of the last load started

    # -- messages -----------------------------------------------------------------------
    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"lossmap: {message}"))

    def log(self, message: str) -> None:
        self.window_log_message(
            types.LogMessageParams(type=types.MessageType.Log, message=f"lossmap: {message}")
        )

    def tell_once(self, key: str, message: str, kind=types.MessageType.Warning) -> None:
        """Show ``message`` once for the open document ``key`` (not on every re-score)."""
        state = self.docs.get(key)
        if state is not None and message not in state.told:
            state.told.add(message)
            self.show(message, kind)

    # -- model --------------------------------------------------------------------------
    def start_model(self) -> None:
        """(Re)load the configured models in the background, with $/progress if supported."""
        roles = self._roles()
        if roles.note:
            self.show(roles.note, types.MessageType.Info)
        if self._load_progress is not None:  # a load still running is superseded
            self._load_progress.end("superseded by another model")
        spec = (
            roles.live
            if roles.judge in (None, roles.live)
            else f"{roles.live} (judge {roles.judge})"
        )
        progress = LoadProgress(
            self, self.loop, f"lossmap: loading model {spec}", self.client.work_done_progress
        )
        self._load_progress = progress
        progress.start()
        self.host.judge_idle_seconds = self.config.judge_idle_seconds
        self.host.load(
            roles,
            self.config.device,
            progress.report,
            lambda error: self.loop.call_soon_threadsafe(self._live_loaded, progress, error),
            lambda error: self.loop.call_soon_threadsafe(self._judge_loaded, progress, error),
            runtime=self.config.runtime,
        )

    def _roles(self) -> ModelRoles:
        """The configured roles; a judge that cannot be resolved is left out, with a message."""
        cfg = self.config
        try:
            return resolve_roles(cfg.model, cfg.judge, cfg.device)
        except LossmapError as err:
            try:  # a bad judge: score live without one, and say why
                roles = resolve_roles(cfg.model, "none", cfg.device)
                self.show(f"{err}; line verdicts stay causal only", types.MessageType.Error)
                return roles
            except LossmapError:  # a bad live model: loading it reports the error
                return ModelRoles(cfg.model, None)

    def _live_loaded(self, progress: LoadProgress, error: str | None) -> None:
        """The live model of a load is ready (scoring starts) or failed."""
        if error:
            progress.end("failed")
        if self.client.pull_diagnostics:
            self.workspace_diagnostic_refresh(None)  # pulls refused while loading: ask again
        if error:
            self.show(error, types.MessageType.Error)
            return
        loaded = self.host.loaded
        self.log(f"model {loaded.name} ready on {loaded.device} in {loaded.load_seconds:.1f} s")
        for key in list(self.docs):
            scheduling.schedule(self, key, immediate=True)

    def _judge_loaded(self, progress: LoadProgress, error: str | None) -> None:
        """A load of the judge ended (also called when there is none, and after a reload of a
        judge freed when idle)."""
        if self.host.loaded is not None:
            judge = "" if error is None else "; the judge failed"
            progress.end(f"ready on {self.host.loaded.device}{judge}")
        if error:
            self.show(f"{error}; line verdicts stay causal only", types.MessageType.Error)
            scheduling.republish_all(self)
        elif self.host.judge is not None and self.host.judge is not self.host.loaded:
            judge = self.host.judge
            self.log(f"judge {judge.name} ready in {judge.load_seconds:.1f} s")
            for key in list(self.docs):
                scheduling.confirm(self, key)

    # -- documents ----------------------------------------------------------------------
    def current_revision(self, key: str) -> int | None:
        """The revision of the document's text now; None once it is closed."""
        doc = self.documents.get(key)
        return doc.revision if doc is not None and key in self.docs else None

    def client_uri(self, key: str) -> str:
        """The URI of document ``key`` as the client sent it (what it matches results on)."""
        doc = self.documents.get(key)
        return doc.uri if doc is not None else key

    def doc_name(self, key: str) -> str:
        """The document's path (or URI) for messages."""
        doc = self.documents.get(key)
        return doc.name if doc is not None else display_name(key)

    def current_text(self, key: str) -> str:
        doc = self.documents.get(key)
        return doc.text if doc is not None else ""

    def next_result_id(self) -> str:
        self._result_counter += 1
        return str(self._result_counter)


server = LossmapServer()


# -- lifecycle and settings ---------------------------------------------------------------
@server.feature(types.INITIALIZE)
def on_initialize(ls: LossmapServer, params: types.InitializeParams) -> None:
    ls.client = ClientFeatures.resolve(params.capabilities, ls.workspace.position_encoding)
    ls.config, ls.init_problems = merge_config(ServerConfig(), params.initialization_options)
    ls.host.pool.budget_bytes = ls.config.cache_budget_mb * 2**20


@server.feature(types.INITIALIZED)
async def on_initialized(ls: LossmapServer, params: types.InitializedParams) -> None:
    ls.loop = asyncio.get_running_loop()
    for problem in ls.init_problems:
        ls.show(problem, types.MessageType.Warning)
    if ls.client.configuration:
        await pull_configuration(ls)
    if ls.client.config_change_registration:
        try:
            await ls.client_register_capability_async(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id="lossmap-config", method=types.WORKSPACE_DID_CHANGE_CONFIGURATION
                        )
                    ]
                )
            )
        except Exception as err:  # not fatal: pushes still arrive from most clients
            ls.log(f"could not register for configuration changes: {err}")
    ls.start_model()


async def pull_configuration(ls: LossmapServer) -> bool:
    """Fetch the ``lossmap`` section; True if the model or device changed."""
    try:
        (section,) = await ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section="lossmap")])
        )
    except Exception as err:
        ls.log(f"workspace/configuration failed: {err}")
        return False
    return apply_settings(ls, section)


def apply_settings(ls: LossmapServer, section: Any) -> bool:
    before = ls.config
    ls.config, problems = merge_config(before, section)
    ls.host.pool.budget_bytes = ls.config.cache_budget_mb * 2**20
    for problem in problems:
        ls.show(problem, types.MessageType.Warning)
    ls.host.judge_idle_seconds = ls.config.judge_idle_seconds
    old = (before.model, before.judge, before.device, before.runtime)
    return old != (ls.config.model, ls.config.judge, ls.config.device, ls.config.runtime)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_change_configuration(
    ls: LossmapServer, params: types.DidChangeConfigurationParams
) -> None:
    settings = params.settings
    if isinstance(settings, dict) and "lossmap" in settings:
        model_changed = apply_settings(ls, settings["lossmap"])
    else:
        model_changed = await pull_configuration(ls)
    if model_changed:
        ls.start_model()
    else:
        scheduling.republish_all(ls)


# -- documents ----------------------------------------------------------------------------
@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def on_open(ls: LossmapServer, params: types.DidOpenTextDocumentParams) -> None:
    key = uri_key(params.text_document.uri)
    previous = ls.docs.pop(key, None)  # opened again without a close: start afresh
    if previous is not None and previous.timer is not None:
        previous.timer.cancel()
    if previous is not None:
        previous.cancel_retry()
    ls.documents.open(params.text_document)
    ls.docs[key] = DocState()
    scheduling.schedule(ls, key, immediate=True)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_change(ls: LossmapServer, params: types.DidChangeTextDocumentParams) -> None:
    key = uri_key(params.text_document.uri)
    state = ls.docs.get(key)
    if state is None or ls.documents.change(params, ls.client.position_encoding) is None:
        ls.log(f"ignored a change to {display_name(params.text_document.uri)}, which is not open")
        return
    state.note_edits(params.content_changes)
    scheduling.schedule(ls, key)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_close(ls: LossmapServer, params: types.DidCloseTextDocumentParams) -> None:
    key = uri_key(params.text_document.uri)
    ls.documents.close(key)
    state = ls.docs.pop(key, None)
    if state and state.timer:
        state.timer.cancel()
    if state:
        state.cancel_retry()
    ls.host.discard(key)
    if not ls.client.pull_diagnostics:
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )


# -- requests -----------------------------------------------------------------------------
@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, features.LEGEND)
def on_tokens_full(ls: LossmapServer, params: types.SemanticTokensParams) -> types.SemanticTokens:
    return answers.semantic_tokens(ls, uri_key(params.text_document.uri))


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL_DELTA)
def on_tokens_delta(
    ls: LossmapServer, params: types.SemanticTokensDeltaParams
) -> types.SemanticTokens | types.SemanticTokensDelta:
    return answers.semantic_tokens(ls, uri_key(params.text_document.uri), params.previous_result_id)


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_RANGE)
def on_tokens_range(
    ls: LossmapServer, params: types.SemanticTokensRangeParams
) -> types.SemanticTokens:
    r = params.range
    return types.SemanticTokens(
        data=answers.semantic_data(
            ls, uri_key(params.text_document.uri), (r.start.line, r.end.line)
        )
    )


@server.feature(types.TEXT_DOCUMENT_DIAGNOSTIC)
def on_diagnostic(
    ls: LossmapServer, params: types.DocumentDiagnosticParams
) -> types.DocumentDiagnosticReport:
    if ls.host.state in ("idle", "loading"):
        raise _retrigger("the model is still loading")
    return answers.diagnostic_report(
        ls, uri_key(params.text_document.uri), params.previous_result_id
    )


def _retrigger(why: str) -> JsonRpcException:
    """ServerCancelled with retrigger: the client asks again after our diagnostic refresh."""
    return JsonRpcException(
        message=f"lossmap: {why}", code=SERVER_CANCELLED, data={"retriggerRequest": True}
    )


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: LossmapServer, params: types.HoverParams) -> types.Hover | None:
    return answers.hover(ls, uri_key(params.text_document.uri), params.position)


@server.feature(VISIBLE_RANGES)
def on_visible_ranges(ls: LossmapServer, params: Any) -> None:
    """The lines of a document the user sees: the judge confirms the candidates there before
    the rest of the file's. Malformed parameters are logged and ignored (a notification has
    no answer to carry an error)."""
    try:
        uri = _param_uri(params)
        spans = [(a + 1, b + 1) for a, b in map(_range_lines, _param_field(params, "ranges") or [])]
    except (JsonRpcException, TypeError):
        ls.log(f"ignored {VISIBLE_RANGES} with malformed parameters")
        return
    scheduling.on_visible_ranges(ls, uri_key(uri), spans)


@server.feature(DOCUMENT_SCORES)
def on_document_scores(ls: LossmapServer, params: Any) -> DocumentScores | None:
    """Per-token scores of the last result, in its text's positions (``version`` says which
    text). Optional ``range``: only tokens on its lines; optional ``minLevel``: only tokens
    at that surprise level or above (1: those a heat map tints). At most
    ``MAX_DOCUMENT_SCORES`` tokens per answer; ``truncated`` says when more remain (ask by
    ``range`` for the rest)."""
    uri = _param_uri(params)
    key = uri_key(uri)
    state = ls.docs.get(key)
    if state is None or state.result is None:
        return None  # nothing to answer (the other parameters are not read)
    return answers.document_scores(ls, uri, key, _param_lines(params), _param_min_level(params))


def _param_field(params: Any, name: str) -> Any:
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)


def _param_uri(params: Any) -> str:
    if isinstance(params, str):
        return params
    td = _param_field(params, "text_document") or _param_field(params, "textDocument")
    uri = _param_field(td, "uri") if td is not None else None
    if not isinstance(uri, str):
        raise JsonRpcException(message="expected {textDocument: {uri}}", code=-32602)
    return uri


def _param_min_level(params: Any) -> int:
    level = 0 if isinstance(params, str) else _param_field(params, "minLevel")
    if level is None:
        return 0
    if isinstance(level, bool) or not isinstance(level, int):
        raise JsonRpcException(message="minLevel must be an integer", code=-32602)
    return level


def _param_lines(params: Any) -> tuple[int, int] | None:
    """(first, last) 0-based lines of an optional LSP ``range`` parameter."""
    if isinstance(params, str):
        return None
    rng = _param_field(params, "range")
    return None if rng is None else _range_lines(rng)


def _range_lines(rng: Any) -> tuple[int, int]:
    """(first, last) 0-based lines of an LSP range in a request's parameters."""
    try:
        first = int(_param_field(_param_field(rng, "start"), "line"))
        last = int(_param_field(_param_field(rng, "end"), "line"))
    except (TypeError, ValueError):
        raise JsonRpcException(
            message="range must be {start: {line}, end: {line}}", code=-32602
        ) from None
    return first, last


# -- commands -----------------------------------------------------------------------------
@server.command(CMD_RESCORE)
def cmd_rescore(ls: LossmapServer, *args: Any) -> bool:
    """Re-score a document now (argument: its uri), or every open document."""
    keys = [uri_key(a) for a in args if isinstance(a, str)] or list(ls.docs)
    for key in keys:
        if key in ls.docs:
            scheduling.schedule(ls, key, immediate=True)
    return True


@server.command(CMD_MOST_SURPRISING)
def cmd_most_surprising(ls: LossmapServer, *args: Any) -> list[SurprisingSpot]:
    """Top-N surprising lines of a document: arguments uri and optionally N (default 10).

    Ranges are in the document's current text (each entry names its ``version``); lines an
    edit changed since the last result are left out until it is scored again.
    """
    uri = next((a for a in args if isinstance(a, str)), None)
    n = next((a for a in args if isinstance(a, int) and not isinstance(a, bool)), 10)
    return answers.most_surprising(ls, uri_key(uri), n) if uri else []


class _AnswersAreNotFailures(logging.Filter):
    """pygls logs every exception a handler raises, with its traceback; ServerCancelled
    ("ask again after the refresh", while the model loads) is how the protocol answers."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, JsonRpcException) and error.code == SERVER_CANCELLED)


def serve() -> None:
    """Run the server on stdio until the client says exit (``--stdio`` is implied)."""
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_AnswersAreNotFailures())
    level = os.environ.get("LOSSMAP_LOG", "").upper()
    if isinstance(logging.getLevelName(level), int):
        # LOSSMAP_LOG=debug: each model job's timing (never buffer contents), on stderr or in
        # LOSSMAP_LOG_FILE (a client may not read the server's stderr).
        path = os.environ.get("LOSSMAP_LOG_FILE")
        logging.basicConfig(
            **({"filename": path} if path else {"stream": sys.stderr}),
            level=logging.WARNING,  # pygls's debug log holds the messages: buffer contents
            format="%(asctime)s %(name)s: %(message)s",
        )
        logging.getLogger("lossmap").setLevel(level)
    if threading.current_thread() is threading.main_thread():
        # pygls takes Ctrl-C as a stop and then waits for its stdin reader thread, which is
        # blocked in a read: the process hung. Stop at once instead (nothing is unsaved).
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    code = 0
    try:
        server.start_io()
    except SystemExit as done:  # pygls exits this way on the client's `exit`
        code = done.code if isinstance(done.code, int) else 0
    # Skip interpreter finalisation: tearing down torch's threads under a model worker that
    # is still waiting aborts the process ("terminate called without an active exception").
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):  # pygls may have closed stdout
            stream.flush()
    os._exit(code)

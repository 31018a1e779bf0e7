"""The lossmap language server: handlers wiring documents, the model host and the features.

Flow: didOpen/didChange -> debounce timer (per document) -> ScoringJob on the model host's
worker -> result hops back onto the event loop -> dropped unless it is for the document's
current version -> stored -> diagnostics pushed (or pull refreshed), semantic tokens refreshed,
``lossmap/scoresReady`` sent. Request handlers only read the latest stored result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from .. import __version__
from ..analysis import FileAnalysis
from ..analysis.errors import LossmapError
from ..analysis.models.roles import ModelRoles, resolve_roles
from ..analysis.syntax.languages import language_for
from ..analysis.syntax.offsets import count_line_breaks
from ..analysis.syntax.source import BINARY, TOO_LARGE, input_problem
from ..analysis.verdicts.confirm import lines_to_confirm
from ..analysis.verdicts.two_sided import fim_format
from . import features
from .carried_verdicts import carry_verdicts
from .config import ServerConfig, merge_config
from .documents import DocumentStore, OpenDocument, display_name, uri_key
from .model_host import ModelHost, ScoringJob
from .positions import PositionMapper
from .text_shift import ShiftedPositions, TextShift

SCORES_READY = "lossmap/scoresReady"
TWO_SIDED_READY = "lossmap/twoSidedReady"
DOCUMENT_SCORES = "lossmap/documentScores"
CMD_RESCORE = "lossmap.rescore"
CMD_MOST_SURPRISING = "lossmap.mostSurprising"
SERVER_CANCELLED = -32802
#: Tokens in one ``lossmap/documentScores`` answer, and single-line pieces in one semantic
#: tokens answer: building and sending more holds the event loop for over 100 ms (measured:
#: 20,000 scores took 0.36 s to build and serialise; a 1 MB minified line has ~300k tokens).
MAX_DOCUMENT_SCORES = 5_000
MAX_SEMANTIC_TOKENS = 20_000

# LSP language ids whose tree-sitter grammar has another name.
_LSP_LANGUAGES = {
    "typescriptreact": "tsx",
    "javascriptreact": "javascript",
    "shellscript": "bash",
    "objective-c": "objc",
    "objective-cpp": "objc",
    "dockercompose": "yaml",
    "jsonc": "json",
    "cuda-cpp": "cuda",
}


@dataclass
class DocResult:
    """The latest finished analysis of a document, for the text it was made from."""

    version: int  # the client's version of that text
    revision: int  # the store's revision of that text (``OpenDocument.revision``)
    analysis: FileAnalysis
    seconds: float
    #: A local-first result: re-scored up to ``analysis.scored.fresh_until``; the full one
    #: follows for the same version.
    partial: bool = False
    pieces: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class DocState:
    result: DocResult | None = None
    timer: asyncio.TimerHandle | None = None
    last_edit: float = 0.0
    submitted_at: float = 0.0
    skipped: str | None = None  # why the current version is not scored
    told: set[str] = field(default_factory=set)  # messages already shown for this document
    tokens_sent: tuple[str, list[int]] | None = None  # (resultId, data) for full/delta
    pull_id: str | None = None  # resultId of the last full pull-diagnostic report
    pull_version: tuple | None = None  # (document version, config) that report was made for
    edit_lines: set[int] = field(default_factory=set)  # 1-based lines edited since scoring


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
        self.host = ModelHost()
        self.documents = DocumentStore()
        self.docs: dict[str, DocState] = {}  # by ``uri_key``, like ``documents``
        self.loop: asyncio.AbstractEventLoop | None = None
        self._result_counter = 0
        self._end_load_progress = None  # ends the $/progress of the load under way

    # -- capabilities -------------------------------------------------------------------
    def client_supports(self, path: str) -> bool:
        node: Any = self.client_capabilities
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                return False
        return bool(node)

    @property
    def pull_diagnostics(self) -> bool:
        """Pull only where the client can be told to pull again; otherwise push.

        A client that pulls but cannot be refreshed (Neovim 0.11) would never see results
        that land after its pull, so it gets pushed diagnostics instead.
        """
        return self.client_supports("text_document.diagnostic") and self.client_supports(
            "workspace.diagnostics.refresh_support"
        )

    @property
    def encoding(self) -> str:
        return self.workspace.position_encoding or types.PositionEncodingKind.Utf16

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
        """(Re)load the configured model in the background, with $/progress if supported."""
        token = f"lossmap-load-{time.monotonic_ns()}"
        progress_ok = self.client_supports("window.work_done_progress")
        cfg = self.config
        try:
            roles = resolve_roles(cfg.model, cfg.judge, cfg.device)
        except LossmapError as err:
            try:  # a bad judge: score live without one, and say why
                roles = resolve_roles(cfg.model, "none", cfg.device)
                self.show(f"{err}; line verdicts stay causal only", types.MessageType.Error)
            except LossmapError:  # a bad live model: loading it reports the error
                roles = ModelRoles(cfg.model, None)
        if roles.note:
            self.show(roles.note, types.MessageType.Info)
        spec = (
            roles.live
            if roles.judge in (None, roles.live)
            else f"{roles.live} (judge {roles.judge})"
        )
        last_report = [0.0]
        ended = asyncio.Event()  # set when the load is over, with the end message in ``outcome``
        outcome: list[str] = []
        if self._end_load_progress is not None:  # a load still running is superseded
            self._end_load_progress("superseded by another model")

        def end_progress(message: str) -> None:
            if not ended.is_set():
                outcome.append(message)
                ended.set()

        self._end_load_progress = end_progress

        async def progress_lifecycle() -> None:
            # One task owns begin and end, so a load that fails before the client granted
            # the token still ends its progress (else the client spins forever).
            if not progress_ok:
                return
            try:
                await self.work_done_progress.create_async(token)
            except Exception:  # the client refused a progress token: carry on without
                return
            self.work_done_progress.begin(
                token,
                types.WorkDoneProgressBegin(
                    title=f"lossmap: loading model {spec}", message="starting", percentage=0
                ),
            )
            await ended.wait()
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome[0]))

        def on_progress(description: str, done: float, total: float | None) -> None:
            now = time.monotonic()
            if now - last_report[0] < 0.25 or not progress_ok:
                return
            last_report[0] = now
            pct = int(100 * done / total) if total else None
            self.loop.call_soon_threadsafe(
                self.work_done_progress.report,
                token,
                types.WorkDoneProgressReport(message=description, percentage=pct),
            )

        def on_done(error: str | None) -> None:
            def finish() -> None:
                if error:
                    end_progress("failed")
                self._model_ready(error)

            self.loop.call_soon_threadsafe(finish)

        def on_judge_done(error: str | None) -> None:
            def finish() -> None:
                if self.host.loaded is not None:
                    judge = "" if error is None else "; the judge failed"
                    end_progress(f"ready on {self.host.loaded.device}{judge}")
                if error:
                    self.show(f"{error}; line verdicts stay causal only", types.MessageType.Error)
                    self.republish_all()
                elif self.host.judge is not None and self.host.judge is not self.host.loaded:
                    judge = self.host.judge
                    self.log(f"judge {judge.name} ready in {judge.load_seconds:.1f} s")
                    for key in list(self.docs):
                        self._confirm(key)

            self.loop.call_soon_threadsafe(finish)

        self.loop.create_task(progress_lifecycle())
        self.host.judge_idle_seconds = self.config.judge_idle_seconds
        self.host.load(roles, self.config.device, on_progress, on_done, on_judge_done)

    def _model_ready(self, error: str | None) -> None:
        if self.pull_diagnostics:
            self.workspace_diagnostic_refresh(None)  # pulls refused while loading: ask again
        if error:
            self.show(error, types.MessageType.Error)
            return
        loaded = self.host.loaded
        self.log(f"model {loaded.name} ready on {loaded.device} in {loaded.load_seconds:.1f} s")
        for key in list(self.docs):
            self.schedule(key, immediate=True)

    # -- scheduling ---------------------------------------------------------------------
    def schedule(self, key: str, immediate: bool = False) -> None:
        """Re-score the document ``key`` after the debounce delay; a newer call replaces the
        timer."""
        state = self.docs.setdefault(key, DocState())
        state.last_edit = time.monotonic()
        if state.timer is not None:
            state.timer.cancel()
        delay = 0 if immediate else self.config.debounce_ms / 1000
        state.timer = self.loop.call_later(delay, self._submit, key)

    def _language(self, doc: OpenDocument) -> str | None:
        lang = _LSP_LANGUAGES.get(doc.language_id or "", doc.language_id)
        found = language_for(None, lang) if lang else None
        if found is None:
            found = language_for(doc.name)
        return found

    def _why_not_scored(self, doc: OpenDocument) -> str | None:
        """Why the document's current text is not scored, in words for the user; None if it is."""
        cfg = self.config
        if cfg.languages and doc.language_id not in cfg.languages:
            return f"language '{doc.language_id}' is not in lossmap.languages"
        text = doc.text
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as err:  # a lone surrogate (JSON allows "\ud800")
            line = count_line_breaks(text[: err.start]) + 1
            return (
                f"{doc.name} contains an unpaired surrogate (U+{ord(text[err.start]):04X})"
                f" on line {line}, which is not valid Unicode text: not scored"
            )
        problem = input_problem(size, text[:8192], cfg.max_file_bytes)
        if problem == TOO_LARGE:
            return (
                f"{doc.name} is larger than maxFileBytes ({cfg.max_file_bytes:,} bytes):"
                " not scored; raise lossmap.maxFileBytes to score it"
            )
        if problem == BINARY:
            return f"{doc.name} looks like binary data (NUL characters): not scored"
        return None

    def _submit(self, key: str) -> None:
        state = self.docs.get(key)
        doc = self.documents.get(key)
        if state is None or doc is None:
            return
        state.timer = None
        skipped = self._why_not_scored(doc)
        if skipped:
            state.skipped = skipped
            state.result = None  # its highlights are cleared: the message says why
            self.tell_once(key, skipped)
            self._publish(key)
            return
        state.skipped = None
        language = self._language(doc)
        if language is None:
            self.tell_once(
                key,
                f"no grammar for language '{doc.language_id}': scored without syntax",
                types.MessageType.Info,
            )
        state.submitted_at = time.monotonic()
        cfg = self.config
        version, revision = doc.version, doc.revision
        self.host.submit(
            ScoringJob(
                uri=key,
                revision=revision,
                text=doc.text,
                name=doc.name,
                language=language,
                priority=state.last_edit,
                is_current=lambda: self._current_revision(key) == revision,
                on_done=lambda analysis, error: self.loop.call_soon_threadsafe(
                    self._on_result, key, version, revision, analysis, error
                ),
                top_k=max(cfg.top_k, 5),
                generation=self.host.generation,
                on_partial=lambda analysis: self.loop.call_soon_threadsafe(
                    self._on_result, key, version, revision, analysis, None, True
                ),
            )
        )

    def _current_revision(self, key: str) -> int | None:
        """The revision of the document's text now; None once it is closed."""
        doc = self.documents.get(key)
        return doc.revision if doc is not None and key in self.docs else None

    def _on_result(
        self,
        key: str,
        version: int,
        revision: int,
        analysis: FileAnalysis | None,
        error: str | None,
        partial: bool = False,
    ) -> None:
        """A finished (or, with ``partial``, a provisional local-first) analysis arrived."""
        state = self.docs.get(key)
        if state is None or self._current_revision(key) != revision:
            return  # closed or edited meanwhile: never publish a stale result
        if error:
            state.skipped = error
            state.result = None  # its positions belong to an older text
            self.log(f"{self.doc_name(key)}: {error}")
            # One message per document and cause, not one per re-score.
            self.tell_once(key, f"{self.doc_name(key)}: {error}", types.MessageType.Error)
            self._publish(key)
            return
        seconds = time.monotonic() - state.submitted_at
        previous = state.result.analysis if state.result is not None else None
        judge = self.host.roles.judge if self.host.roles is not None else None
        if previous is not None and previous.judge is not None and previous.judge == judge:
            analysis.two_sided = carry_verdicts(previous, analysis)  # a fresh analysis has none
            if analysis.two_sided:
                analysis.judge = judge
        state.result = DocResult(version, revision, analysis, seconds, partial=partial)
        state.pull_id = None  # a partial and the full result share a version: pull again
        state.result.pieces = features.surprising_pieces(analysis, self.config.display_threshold)
        self._publish(key)
        if not partial:
            self._confirm(key)

    def _confirm(self, key: str, lines: tuple[int, ...] | None = None) -> None:
        """Queue two-sided confirmation of the latest result's suspicious lines (or of
        ``lines``, the rest of an interrupted confirmation)."""
        state = self.docs.get(key)
        cfg = self.config
        if state is None or state.result is None or cfg.confirm_lines == 0:
            return
        if state.timer is not None or self.host.pending(key):
            return  # a newer version is on its way: confirm that one instead
        host = self.host
        if host.loaded is None or host.judge_state in ("none", "failed"):
            return  # no model or no judge: the reason was shown already
        if host.judge is not None and fim_format(host.judge.tokenizer) is None:
            self.tell_once(
                key,
                f"model {host.judge.name} has no fill-in-the-middle tokens:"
                " verdicts are causal only",
                types.MessageType.Info,
            )
            return
        result = state.result
        if lines is None:
            around = cfg.confirm_around_edit
            extra = {n + d for n in state.edit_lines for d in range(-around, around + 1)}
            lines = tuple(
                lines_to_confirm(result.analysis, cfg.confirm_lines, tuple(sorted(extra)))
            )
            result.analysis.confirm_k = cfg.confirm_lines
        revision, analysis = result.revision, result.analysis
        requested = lines
        generation = self.host.generation
        self.host.submit(
            ScoringJob(
                uri=key,
                revision=revision,
                text="",
                name=self.doc_name(key),
                language=None,
                priority=state.last_edit,
                is_current=lambda: self._current_revision(key) == revision,
                on_done=lambda value, error: self.loop.call_soon_threadsafe(
                    self._on_confirmed, key, analysis, requested, generation, value, error
                ),
                kind="confirm",
                analysis=analysis,
                lines=requested,
                generation=generation,
            )
        )

    def _on_confirmed(
        self,
        key: str,
        analysis: FileAnalysis,
        requested: tuple[int, ...],
        generation: int,
        value: Any,
        error: str | None,
    ) -> None:
        state = self.docs.get(key)
        if state is None or state.result is None or state.result.analysis is not analysis:
            return  # superseded by a newer result
        if self._current_revision(key) != state.result.revision:
            return  # edited meanwhile: the confirmation may have stopped early
        if generation != self.host.generation:
            return  # made by a judge that has since been replaced: its verdicts are not ours
        if error:
            self.log(f"{self.doc_name(key)}: {error}")
            return
        judge, value = value
        if analysis.judge is not None and analysis.judge != judge:
            analysis.two_sided = {}  # another judge's verdicts never pass under this name
        analysis.judge = judge
        analysis.two_sided = {**analysis.two_sided, **value}
        if any(ts.line_level for ts in value.values()):
            self.tell_once(
                key,
                f"judge {judge} tokenizes differently from {self.host.loaded.name}:"
                " its verdicts are per line, not per token",
                types.MessageType.Info,
            )
        state.pull_id = None  # the confirmed diagnostics differ: pull clients must get them
        self._publish(key, new_scores=False)
        missing = tuple(n for n in requested if n not in value)
        if missing:  # it gave way to scoring another document: finish later
            self._confirm(key, missing)
            return
        state.edit_lines.clear()
        self.protocol.notify(
            TWO_SIDED_READY,
            {
                "uri": self.client_uri(key),
                "version": state.result.version,
                "lines": sorted(analysis.two_sided),
            },
        )

    def _publish(self, key: str, new_scores: bool = True) -> None:
        """Tell the client that results for ``key`` changed (``new_scores``: a fresh result).

        Diagnostics always describe the document's current text: a result made for an older
        text (a settings change or a judge failure while an edit waits to be scored) is
        shifted past the edit, and what the edit touched is left out.
        """
        state = self.docs.get(key)
        doc = self.documents.get(key)
        if state is None or doc is None:
            return
        result = state.result
        if not self.pull_diagnostics:
            diags = self._diagnostics(key) if result else []
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=doc.uri, diagnostics=diags, version=doc.version)
            )
        else:
            self.workspace_diagnostic_refresh(None)
        if self.client_supports("workspace.semantic_tokens.refresh_support"):
            self.workspace_semantic_tokens_refresh(None)
        if result and new_scores and result.revision == doc.revision:
            params = {
                "uri": doc.uri,
                "version": result.version,
                "seconds": round(result.seconds, 3),
            }
            if result.partial:
                params["partial"] = True
                params["freshUntil"] = _position(
                    result.analysis.scored.text, result.analysis.scored.fresh_until, self.encoding
                )
            self.protocol.notify(SCORES_READY, params)

    def republish_all(self) -> None:
        """After a threshold change: recompute views from stored results, no re-scoring."""
        for key, state in self.docs.items():
            if state.result:
                state.result.pieces = features.surprising_pieces(
                    state.result.analysis, self.config.display_threshold
                )
            self._publish(key, new_scores=False)

    # -- views --------------------------------------------------------------------------
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

    def result_positions(self, key: str) -> ShiftedPositions | None:
        """LSP ranges in the current text for offsets of the stored result's text."""
        state = self.docs.get(key)
        if state is None or state.result is None:
            return None
        return ShiftedPositions(
            state.result.analysis.scored.text, self.current_text(key), self.encoding
        )

    def _diagnostics(self, key: str) -> list[types.Diagnostic]:
        result = self.docs[key].result
        return features.diagnostics(result.analysis, self.result_positions(key), self.config)

    def semantic_data(self, key: str, line_range: tuple[int, int] | None = None) -> list[int]:
        """Encoded tokens for the current text, shifting the last result past an edit."""
        state = self.docs.get(key)
        if state is None or state.result is None:
            return []
        text = self.current_text(key)
        old = state.result.analysis.scored.text
        pieces = state.result.pieces
        if old != text:
            shift = TextShift(old, text)
            moved = []
            for start, end, kind, mods in pieces:
                span = shift.span_to_new(start, end)
                if span is not None:
                    moved.append((*span, kind, mods))
            pieces = moved
        if len(pieces) > MAX_SEMANTIC_TOKENS:
            pieces = pieces[:MAX_SEMANTIC_TOKENS]
            self.tell_once(
                key,
                f"{self.doc_name(key)} has more than {MAX_SEMANTIC_TOKENS:,} surprising"
                " pieces: only the first are highlighted (raise lossmap.displayThreshold"
                " to see the worst everywhere)",
                types.MessageType.Info,
            )
        return features.encode_semantic_tokens(
            pieces, PositionMapper(text, self.encoding), line_range
        )

    def analysis_offset(self, key: str, position: types.Position) -> tuple[DocResult, int] | None:
        """The stored result and the offset in its text for a position in the current text;
        None outside the text or inside what an edit changed since."""
        state = self.docs.get(key)
        if state is None or state.result is None:
            return None
        mapper = PositionMapper(self.current_text(key), self.encoding)
        if not mapper.inside(position):
            return None
        offset = mapper.offset(position)
        old = state.result.analysis.scored.text
        if old != mapper.text:
            offset = TextShift(old, mapper.text).to_old(offset)
            if offset is None:
                return None
        return state.result, offset

    def next_result_id(self) -> str:
        self._result_counter += 1
        return str(self._result_counter)


def _position(text: str, offset: int | None, encoding: str) -> dict[str, int] | None:
    if offset is None:
        return None
    pos = PositionMapper(text, encoding).position(offset)
    return {"line": pos.line, "character": pos.character}


server = LossmapServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: LossmapServer, params: types.InitializeParams) -> None:
    ls.config, problems = merge_config(ServerConfig(), params.initialization_options)
    ls.host.pool.budget_bytes = ls.config.cache_budget_mb * 2**20
    ls._init_problems = problems


@server.feature(types.INITIALIZED)
async def on_initialized(ls: LossmapServer, params: types.InitializedParams) -> None:
    ls.loop = asyncio.get_running_loop()
    for problem in getattr(ls, "_init_problems", []):
        ls.show(problem, types.MessageType.Warning)
    if ls.client_supports("workspace.configuration"):
        await pull_configuration(ls)
    if ls.client_supports("workspace.did_change_configuration.dynamic_registration"):
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
    old = (before.model, before.judge, before.device)
    return old != (ls.config.model, ls.config.judge, ls.config.device)


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
        ls.republish_all()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def on_open(ls: LossmapServer, params: types.DidOpenTextDocumentParams) -> None:
    key = uri_key(params.text_document.uri)
    previous = ls.docs.pop(key, None)  # opened again without a close: start afresh
    if previous is not None and previous.timer is not None:
        previous.timer.cancel()
    ls.documents.open(params.text_document)
    ls.docs[key] = DocState()
    ls.schedule(key, immediate=True)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_change(ls: LossmapServer, params: types.DidChangeTextDocumentParams) -> None:
    key = uri_key(params.text_document.uri)
    state = ls.docs.get(key)
    if state is None or ls.documents.change(params, ls.encoding) is None:
        ls.log(f"ignored a change to {display_name(params.text_document.uri)}, which is not open")
        return
    for change in params.content_changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            first = change.range.start.line + 1  # lines to confirm two-sided next time
            breaks = count_line_breaks(change.text)
            added = breaks - (change.range.end.line - change.range.start.line)
            state.edit_lines = {n + added if n > first else n for n in state.edit_lines}
            state.edit_lines.update(range(first, first + breaks + 1))
    ls.schedule(key)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_close(ls: LossmapServer, params: types.DidCloseTextDocumentParams) -> None:
    key = uri_key(params.text_document.uri)
    ls.documents.close(key)
    state = ls.docs.pop(key, None)
    if state and state.timer:
        state.timer.cancel()
    ls.host.discard(key)
    if not ls.pull_diagnostics:
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, features.LEGEND)
def on_tokens_full(ls: LossmapServer, params: types.SemanticTokensParams) -> types.SemanticTokens:
    key = uri_key(params.text_document.uri)
    data = ls.semantic_data(key)
    result_id = ls.next_result_id()
    if key in ls.docs:
        ls.docs[key].tokens_sent = (result_id, data)
    return types.SemanticTokens(data=data, result_id=result_id)


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL_DELTA)
def on_tokens_delta(
    ls: LossmapServer, params: types.SemanticTokensDeltaParams
) -> types.SemanticTokens | types.SemanticTokensDelta:
    key = uri_key(params.text_document.uri)
    data = ls.semantic_data(key)
    result_id = ls.next_result_id()
    state = ls.docs.get(key)
    previous = state.tokens_sent if state else None
    if state:
        state.tokens_sent = (result_id, data)
    if previous and previous[0] == params.previous_result_id:
        return types.SemanticTokensDelta(
            edits=features.semantic_token_edits(previous[1], data), result_id=result_id
        )
    return types.SemanticTokens(data=data, result_id=result_id)


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_RANGE)
def on_tokens_range(
    ls: LossmapServer, params: types.SemanticTokensRangeParams
) -> types.SemanticTokens:
    r = params.range
    return types.SemanticTokens(
        data=ls.semantic_data(uri_key(params.text_document.uri), (r.start.line, r.end.line))
    )


@server.feature(types.TEXT_DOCUMENT_DIAGNOSTIC)
def on_diagnostic(
    ls: LossmapServer, params: types.DocumentDiagnosticParams
) -> types.DocumentDiagnosticReport:
    key = uri_key(params.text_document.uri)
    if ls.host.state in ("idle", "loading"):
        raise _retrigger("the model is still loading")
    state = ls.docs.get(key)
    if ls.host.state == "failed" or state is None or state.skipped:
        return types.RelatedFullDocumentDiagnosticReport(items=[])
    result = state.result
    if result is None or result.revision != ls._current_revision(key):
        # Re-scoring: keep what the client shows (it moves it with the edits); a refresh
        # follows when the new result lands.
        if state.pull_id and params.previous_result_id == state.pull_id:
            return types.RelatedUnchangedDocumentDiagnosticReport(result_id=state.pull_id)
        return types.RelatedFullDocumentDiagnosticReport(items=[])
    result_id = f"{result.version}:{ls.next_result_id()}"
    made_for = (result.revision, ls.config)
    if (
        state.pull_id
        and params.previous_result_id == state.pull_id
        and state.pull_version == made_for
    ):
        return types.RelatedUnchangedDocumentDiagnosticReport(result_id=state.pull_id)
    state.pull_id, state.pull_version = result_id, made_for
    return types.RelatedFullDocumentDiagnosticReport(
        items=ls._diagnostics(key), result_id=result_id
    )


def _retrigger(why: str) -> JsonRpcException:
    """ServerCancelled with retrigger: the client asks again after our diagnostic refresh."""
    return JsonRpcException(
        message=f"lossmap: {why}", code=SERVER_CANCELLED, data={"retriggerRequest": True}
    )


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: LossmapServer, params: types.HoverParams) -> types.Hover | None:
    key = uri_key(params.text_document.uri)
    found = ls.analysis_offset(key, params.position)
    if found is None:
        return None
    result, offset = found
    index = features.token_at(result.analysis, offset)
    if index is None:
        return None
    tok = result.analysis.tokens[index]
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value=features.hover_markdown(result.analysis, index),
        ),
        range=ls.result_positions(key).range(tok.start, tok.end),
    )


@server.feature(DOCUMENT_SCORES)
def on_document_scores(ls: LossmapServer, params: Any) -> dict[str, Any] | None:
    """Per-token scores of the last result, in its text's positions (``version`` says which
    text). Optional ``range``: only tokens on its lines; optional ``minLevel``: only tokens
    at that surprise level or above (1: those a heat map tints). At most
    ``MAX_DOCUMENT_SCORES`` tokens per answer; ``truncated`` says when more remain (ask by
    ``range`` for the rest)."""
    uri = _param_uri(params)
    key = uri_key(uri)
    state = ls.docs.get(key)
    if state is None or state.result is None:
        return None
    analysis = state.result.analysis
    mapper = PositionMapper(analysis.scored.text, ls.encoding)
    tokens, truncated = features.document_scores(
        analysis,
        mapper,
        ls.config.display_threshold,
        lines=_param_lines(params),
        min_level=_param_min_level(params),
        limit=MAX_DOCUMENT_SCORES,
    )
    answer = {
        "uri": uri,
        "version": state.result.version,
        "positionEncoding": ls.encoding,
        "displayThreshold": ls.config.display_threshold,
        "tokens": tokens,
    }
    if truncated:
        answer["truncated"] = True
        ls.tell_once(
            key,
            f"{ls.doc_name(key)} has more than {MAX_DOCUMENT_SCORES:,} scored tokens:"
            " the heat map shows the first of them",
            types.MessageType.Info,
        )
    return answer


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
    if rng is None:
        return None
    try:
        first = int(_param_field(_param_field(rng, "start"), "line"))
        last = int(_param_field(_param_field(rng, "end"), "line"))
    except (TypeError, ValueError):
        raise JsonRpcException(
            message="range must be {start: {line}, end: {line}}", code=-32602
        ) from None
    return first, last


@server.command(CMD_RESCORE)
def cmd_rescore(ls: LossmapServer, *args: Any) -> bool:
    """Re-score a document now (argument: its uri), or every open document."""
    keys = [uri_key(a) for a in args if isinstance(a, str)] or list(ls.docs)
    for key in keys:
        if key in ls.docs:
            ls.schedule(key, immediate=True)
    return True


@server.command(CMD_MOST_SURPRISING)
def cmd_most_surprising(ls: LossmapServer, *args: Any) -> list[dict[str, Any]]:
    """Top-N surprising lines of a document: arguments uri and optionally N (default 10).

    Ranges are in the document's current text (each entry names its ``version``); lines an
    edit changed since the last result are left out until it is scored again.
    """
    uri = next((a for a in args if isinstance(a, str)), None)
    n = next((a for a in args if isinstance(a, int) and not isinstance(a, bool)), 10)
    key = uri_key(uri) if uri else None
    state = ls.docs.get(key) if key else None
    doc = ls.documents.get(key) if key else None
    if state is None or state.result is None or doc is None:
        return []
    spots = features.most_surprising(state.result.analysis, ls.result_positions(key), n)
    return [{**spot, "version": doc.version} for spot in spots]


class _AnswersAreNotFailures(logging.Filter):
    """pygls logs every exception a handler raises, with its traceback; ServerCancelled
    ("ask again after the refresh", while the model loads) is how the protocol answers."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, JsonRpcException) and error.code == SERVER_CANCELLED)


def serve() -> None:
    """Run the server on stdio until the client says exit (``--stdio`` is implied)."""
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_AnswersAreNotFailures())
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

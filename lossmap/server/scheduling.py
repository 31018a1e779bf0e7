"""From an edit to what the client is shown: debounce, jobs on the model host, publication.

Flow: didOpen/didChange -> :func:`schedule` (a debounce timer per document) -> :func:`submit`
a ``ScoreJob`` to the model host -> its result hops back onto the event loop
(:func:`on_scored`) -> dropped unless it is for the document's current revision -> stored ->
:func:`publish`: diagnostics pushed (or pull clients refreshed), semantic tokens refreshed,
``lossmap/scoresReady`` sent -> :func:`confirm` queues a ``ConfirmJob`` for the suspicious
lines -> :func:`on_confirmed` adds the judge's verdicts, publishes again and sends
``lossmap/twoSidedReady``. Everything here runs on the event loop.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types

from ..analysis import FileAnalysis
from ..analysis.syntax.languages import language_for
from ..analysis.syntax.offsets import count_line_breaks
from ..analysis.syntax.source import BINARY, TOO_LARGE, input_problem
from ..analysis.verdicts.confirm import Confirmation, candidate_lines, lines_to_confirm
from ..analysis.verdicts.two_sided import fim_format
from . import answers, features
from .carried_verdicts import carry_verdicts
from .config import ServerConfig
from .doc_state import DocResult, DocState
from .documents import OpenDocument
from .model_host import ConfirmJob, ScoreJob, Unreachable
from .positions import PositionMapper
from .protocol import (
    SCORES_READY,
    SCORES_STALE,
    TWO_SIDED_READY,
    LspPosition,
    ScoresReady,
    ScoresStale,
    TwoSidedReady,
)

if TYPE_CHECKING:
    from .server import LossmapServer

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


def schedule(ls: LossmapServer, key: str, immediate: bool = False) -> None:
    """Re-score the document ``key`` after the debounce delay; a newer call replaces the
    timer."""
    state = ls.docs.setdefault(key, DocState())
    state.last_edit = time.monotonic()
    if state.timer is not None:
        state.timer.cancel()
    state.cancel_retry()  # this scoring replaces the retry of an unreachable model server
    delay = 0 if immediate else ls.config.debounce_ms / 1000
    state.timer = ls.loop.call_later(delay, submit, ls, key)


def language_of(doc: OpenDocument) -> str | None:
    """The tree-sitter language of a document: from its LSP language id, else its name, else
    a ``#!`` line (an extensionless script a client calls ``plaintext``)."""
    lang = _LSP_LANGUAGES.get(doc.language_id or "", doc.language_id)
    found = language_for(None, lang) if lang else None
    return found or language_for(doc.name, text=doc.text)


def why_not_scored(doc: OpenDocument, cfg: ServerConfig) -> str | None:
    """Why the document's current text is not scored, in words for the user; None if it is."""
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


def submit(ls: LossmapServer, key: str, local_first: bool = True) -> None:
    """The debounce timer fired: score the document's current text (or say why not).
    ``local_first``: hand over the region after the edit first as a partial result (not when
    resuming after an urgent confirmation: that region was handed over already)."""
    state = ls.docs.get(key)
    doc = ls.documents.get(key)
    if state is None or doc is None:
        return
    state.timer = None
    state.cancel_retry()
    skipped = why_not_scored(doc, ls.config)
    if skipped:
        state.skipped = skipped
        state.result = None  # its highlights are cleared: the message says why
        ls.tell_once(key, skipped)
        publish(ls, key)
        return
    state.skipped = None
    language = language_of(doc)
    if language is None:
        ls.tell_once(
            key,
            f"no grammar for language '{doc.language_id}': scored without syntax",
            types.MessageType.Info,
        )
    state.submitted_at = time.monotonic()
    version, revision = doc.version, doc.revision
    ls.host.submit(
        ScoreJob(
            uri=key,
            revision=revision,
            text=doc.text,
            name=doc.name,
            language=language,
            priority=state.last_edit,
            is_current=lambda: ls.current_revision(key) == revision,
            on_done=lambda analysis, error: ls.loop.call_soon_threadsafe(
                on_scored, ls, key, version, revision, analysis, error
            ),
            top_k=max(ls.config.top_k, 5),
            generation=ls.host.generation,
            on_partial=(
                (
                    lambda analysis: _hand_over_and_wait(
                        ls, lambda: on_scored(ls, key, version, revision, analysis, None, True)
                    )
                )
                if local_first
                else None
            ),
        )
    )


#: How long the scorer waits for the event loop to take a partial result.
_HAND_OVER_WAIT_S = 2.0


def _hand_over_and_wait(ls: LossmapServer, handle: Callable[[], None]) -> None:
    """Run ``handle`` on the event loop and wait (briefly) until it has run. Called by the
    scoring thread with a partial result: the urgent confirmation the partial queues is then
    in place before the scorer asks whether to go on, so it gives way at once instead of
    after its next piece (seconds of the live model on a CPU)."""
    done = concurrent.futures.Future()

    def run() -> None:
        try:
            handle()
        finally:
            done.set_result(None)

    ls.loop.call_soon_threadsafe(run)
    with contextlib.suppress(concurrent.futures.TimeoutError):
        done.result(timeout=_HAND_OVER_WAIT_S)


def on_scored(
    ls: LossmapServer,
    key: str,
    version: int,
    revision: int,
    analysis: FileAnalysis | None,
    error: str | None,
    partial: bool = False,
) -> None:
    """A finished (or, with ``partial``, a provisional local-first) analysis arrived."""
    state = ls.docs.get(key)
    if state is None or ls.current_revision(key) != revision:
        return  # closed or edited meanwhile: never publish a stale result
    if isinstance(error, Unreachable):
        model_server_down(ls, key, error)
        return
    if error:
        state.skipped = error
        state.result = None  # its positions belong to an older text
        ls.log(f"{ls.doc_name(key)}: {error}")
        # One message per document and cause, not one per re-score.
        ls.tell_once(key, f"{ls.doc_name(key)}: {error}", types.MessageType.Error)
        publish(ls, key)
        return
    state.retry_delay = 0.0
    seconds = time.monotonic() - state.submitted_at
    previous = state.result.analysis if state.result is not None else None
    same_text = state.result is not None and state.result.revision == revision
    judge = ls.host.roles.judge if ls.host.roles is not None else None
    if previous is not None and previous.judge is not None and previous.judge == judge:
        # A fresh analysis has none.
        analysis.two_sided = carry_verdicts(previous, analysis, mark=not same_text)
        if analysis.two_sided:
            analysis.judge = judge
    state.result = DocResult(version, revision, analysis, seconds, partial=partial)
    state.pull_id = None  # a partial and the full result share a version: pull again
    state.result.pieces = features.surprising_pieces(analysis, ls.config.display_threshold)
    publish(ls, key)
    if partial:
        confirm_edited_now(ls, key)
    else:
        confirm(ls, key)


#: Seconds before trying a model server again after it could not be reached: doubled on
#: each failure, up to the last.
RETRY_SECONDS = (2.0, 60.0)


def model_server_down(ls: LossmapServer, key: str, error: str) -> None:
    """The model server could not be reached for the document's current text: keep showing
    the last result (shifted past edits since, as any older result), tell the client it is
    stale (``lossmap/scoresStale``), and try again later without waiting for an edit."""
    state = ls.docs.get(key)
    if state is None:
        return
    ls.log(f"{ls.doc_name(key)}: {error}")
    ls.tell_once(key, f"{ls.doc_name(key)}: {error}; showing the last result until it answers")
    doc = ls.documents.get(key)
    if doc is not None:
        stale: ScoresStale = {
            "uri": doc.uri,
            "version": state.result.version if state.result is not None else None,
            "reason": error,
        }
        ls.protocol.notify(SCORES_STALE, stale)
    publish(ls, key, new_scores=False)
    first, most = RETRY_SECONDS
    state.retry_delay = min(max(state.retry_delay * 2, first), most)
    revision = ls.current_revision(key)

    def retry() -> None:
        state.retry_timer = None
        # Reopened, edited or re-scored since: that scoring replaced this retry.
        current = ls.docs.get(key) is state and ls.current_revision(key) == revision
        if current and state.timer is None and not ls.host.pending(key):
            submit(ls, key)

    state.cancel_retry()
    state.retry_timer = ls.loop.call_later(state.retry_delay, retry)


def _retry_confirm(
    ls: LossmapServer, key: str, analysis: FileAnalysis, requested: tuple[int, ...]
) -> None:
    """Confirm ``requested`` again if the result they belong to is still the current one."""
    state = ls.docs.get(key)
    if state is None:
        return
    state.retry_timer = None
    result = state.result
    current = result is not None and result.analysis is analysis
    if current and ls.current_revision(key) == result.revision:
        confirm(ls, key, requested)


def confirm_edited_now(ls: LossmapServer, key: str) -> None:
    """A provisional result holds the edited lines fresh: let the judge confirm them now, in
    front of the rest of the document's scoring (which stops, keeping its work, and is queued
    again when the verdicts are in), so their verdict comes seconds after the edit instead of
    after the whole file."""
    state = ls.docs.get(key)
    cfg = ls.config
    if state is None or state.result is None or not state.edit_lines or cfg.confirm_lines == 0:
        return
    if ls.host.loaded is None or ls.host.judge_state != "ready" or ls.host.judge is None:
        return  # a judge still loading (or none): the full result's rounds confirm them
    if fim_format(ls.host.judge.tokenizer) is None:
        return
    analysis = state.result.analysis
    fresh = analysis.scored.fresh_until  # a character offset
    by_line = {ln.line: ln for ln in analysis.lines}
    edited = [
        n
        for n in lines_to_confirm(analysis, 0, tuple(sorted(state.edit_lines)))
        if fresh is None or analysis.tokens[max(by_line[n].token_indices)].end <= fresh
    ]
    if not edited:
        return
    state.confirm_rounds = []  # the full result plans its own rounds
    revision = state.result.revision
    _queue_confirmation(
        ls, key, state, tuple(edited), urgent=True, after=lambda: resume_scoring(ls, key, revision)
    )


def _queue_confirmation(
    ls: LossmapServer,
    key: str,
    state: DocState,
    lines: tuple[int, ...],
    urgent: bool = False,
    after: Callable[[], None] | None = None,
) -> None:
    """Queue the judge's confirmation of ``lines`` of the document's current result;
    :func:`on_confirmed` takes the verdicts (an urgent one keeps the edited lines for the next
    round: it decodes no suggestion), then ``after`` runs."""
    revision, analysis = state.result.revision, state.result.analysis
    generation = ls.host.generation

    def done(confirmation: Confirmation | None, error: str | None) -> None:
        on_confirmed(
            ls, key, analysis, lines, generation, confirmation, error, keep_edit_lines=urgent
        )
        if after is not None:
            after()

    ls.host.submit(
        ConfirmJob(
            uri=key,
            revision=revision,
            priority=state.last_edit,
            is_current=lambda: ls.current_revision(key) == revision,
            on_done=lambda confirmation, error: ls.loop.call_soon_threadsafe(
                done, confirmation, error
            ),
            analysis=analysis,
            lines=lines,
            generation=generation,
            urgent=urgent,
        )
    )


def resume_scoring(ls: LossmapServer, key: str, revision: int) -> None:
    """Queue the rest of a document's scoring again after an urgent confirmation (the
    scorer kept what it had done), unless the full result is in or the text moved on."""
    state = ls.docs.get(key)
    if state is None or state.result is None or not state.result.partial:
        return
    if ls.current_revision(key) != revision or state.result.revision != revision:
        return  # edited meanwhile: the new version is scheduled already
    submitted_at = state.submitted_at
    submit(ls, key, local_first=False)
    state.submitted_at = submitted_at  # the result's seconds count from the first submit


def confirm_rounds(
    analysis: FileAnalysis,
    cfg: ServerConfig,
    edit_lines: set[int],
    visible: list[tuple[int, int]] | None = None,
) -> list[tuple[int, ...]]:
    """What the judge confirms after a re-score, in rounds published one by one: the lines
    around the last edit (their verdict first), then the causal top ``confirm_lines``, then
    (``confirm_candidates``) every other line whose causal verdict reaches the diagnostic
    threshold and has no verdict yet (carried verdicts count), in the background; of those,
    the ones in ``visible`` (line spans the user sees) before the top."""
    around = cfg.confirm_around_edit
    extra = {n + d for n in edit_lines for d in range(-around, around + 1)}
    edited = lines_to_confirm(analysis, 0, tuple(sorted(extra)))
    top = [n for n in lines_to_confirm(analysis, cfg.confirm_lines) if n not in edited]
    rounds = [tuple(edited), tuple(top)]
    if cfg.confirm_candidates:
        seen = {*edited, *top, *analysis.two_sided}
        rest = candidate_lines(analysis, cfg.diagnostic_threshold)
        rounds.append(tuple(sorted(n for n in rest if n not in seen)))
        seen_now = {*edited, *analysis.two_sided}
        kept = [r for r in rounds if r]
        return visible_first(kept, visible or [], seen_now, first=1 if edited else 0)
    return [r for r in rounds if r]


def visible_first(
    rounds: list[tuple[int, ...]],
    visible: list[tuple[int, int]],
    exclude: set[int] | None = None,
    first: int = 0,
) -> list[tuple[int, ...]]:
    """``rounds`` with the lines inside ``visible`` spans (and not in ``exclude``) moved out of
    rounds ``first`` and later into one round of their own, placed at ``first``."""
    exclude = exclude or set()

    def seen(n: int) -> bool:
        return n not in exclude and any(a <= n <= b for a, b in visible)

    later = rounds[first:]
    shown = tuple(sorted(n for r in later for n in r if seen(n)))
    if not shown:
        return rounds
    rest = [tuple(n for n in r if not seen(n)) for r in later]
    return [*rounds[:first], shown, *(r for r in rest if r)]


def on_visible_ranges(ls: LossmapServer, key: str, spans: list[tuple[int, int]]) -> None:
    """The user now sees ``spans`` (1-based lines) of the document: the candidates there go
    before the rest of its pending confirmation rounds."""
    state = ls.docs.get(key)
    if state is None:
        return
    state.visible = spans
    if state.confirm_rounds and ls.config.confirm_candidates:
        state.confirm_rounds = visible_first(state.confirm_rounds, spans)


def confirm(ls: LossmapServer, key: str, lines: tuple[int, ...] | None = None) -> None:
    """Queue two-sided confirmation of the latest result's suspicious lines in rounds (see
    :func:`confirm_rounds`), or of ``lines`` (a later round, or the rest of an interrupted
    one)."""
    state = ls.docs.get(key)
    cfg = ls.config
    if state is None or state.result is None or cfg.confirm_lines == 0:
        return
    if state.timer is not None or ls.host.pending(key):
        return  # a newer version is on its way: confirm that one instead
    host = ls.host
    if host.loaded is None or host.judge_state in ("none", "failed"):
        return  # no model or no judge: the reason was shown already
    if host.judge is not None and fim_format(host.judge.tokenizer) is None:
        ls.tell_once(
            key,
            f"model {host.judge.name} has no fill-in-the-middle tokens: verdicts are causal only",
            types.MessageType.Info,
        )
        return
    result = state.result
    if lines is None:
        state.confirm_rounds = confirm_rounds(result.analysis, cfg, state.edit_lines, state.visible)
        if not state.confirm_rounds:
            return
        lines = state.confirm_rounds.pop(0)
    _queue_confirmation(ls, key, state, lines)


def on_confirmed(
    ls: LossmapServer,
    key: str,
    analysis: FileAnalysis,
    requested: tuple[int, ...],
    generation: int,
    confirmation: Confirmation | None,
    error: str | None,
    keep_edit_lines: bool = False,
) -> None:
    """The judge's verdicts for ``requested`` lines of ``analysis`` arrived
    (``keep_edit_lines``: the edited lines are confirmed again in the next round)."""
    state = ls.docs.get(key)
    if state is None or state.result is None or state.result.analysis is not analysis:
        return  # superseded by a newer result
    if ls.current_revision(key) != state.result.revision:
        return  # edited meanwhile: the confirmation may have stopped early
    if generation != ls.host.generation:
        return  # made by a judge that has since been replaced: its verdicts are not ours
    if isinstance(error, Unreachable):  # the judge's server: ask again later, once
        ls.log(f"{ls.doc_name(key)}: {error}")
        ls.tell_once(key, f"{ls.doc_name(key)}: {error}; the verdicts follow when it answers")
        state.cancel_retry()
        state.retry_timer = ls.loop.call_later(
            RETRY_SECONDS[1], lambda: _retry_confirm(ls, key, analysis, requested)
        )
        return
    if error:
        ls.log(f"{ls.doc_name(key)}: {error}")
        return
    judge, verdicts = confirmation.judge, confirmation.lines
    if analysis.judge is not None and analysis.judge != judge:
        analysis.two_sided = {}  # another judge's verdicts never pass under this name
    analysis.judge = judge
    analysis.two_sided = {**analysis.two_sided, **verdicts}
    if any(ts.line_level for ts in verdicts.values()):
        ls.tell_once(
            key,
            f"judge {judge} tokenizes differently from {ls.host.loaded.name}:"
            " its verdicts are per line, not per token",
            types.MessageType.Info,
        )
    state.pull_id = None  # the confirmed diagnostics differ: pull clients must get them
    publish(ls, key, new_scores=False)
    missing = tuple(n for n in requested if n not in verdicts)
    if missing:  # it gave way to scoring another document: finish later
        confirm(ls, key, missing)
        return
    if not keep_edit_lines:
        state.edit_lines.clear()
    if state.confirm_rounds:  # the next round, after this one's verdicts are out
        confirm(ls, key, state.confirm_rounds.pop(0))
    ready: TwoSidedReady = {
        "uri": ls.client_uri(key),
        "version": state.result.version,
        "lines": sorted(analysis.two_sided),
    }
    ls.protocol.notify(TWO_SIDED_READY, ready)


def publish(ls: LossmapServer, key: str, new_scores: bool = True) -> None:
    """Tell the client that results for ``key`` changed (``new_scores``: a fresh result).

    Diagnostics always describe the document's current text: a result made for an older
    text (a settings change or a judge failure while an edit waits to be scored) is
    shifted past the edit, and what the edit touched is left out.
    """
    state = ls.docs.get(key)
    doc = ls.documents.get(key)
    if state is None or doc is None:
        return
    result = state.result
    if not ls.client.pull_diagnostics:
        diags = answers.diagnostics(ls, key) if result else []
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=doc.uri, diagnostics=diags, version=doc.version)
        )
    else:
        ls.workspace_diagnostic_refresh(None)
    if ls.client.semantic_tokens_refresh:
        ls.workspace_semantic_tokens_refresh(None)
    if result and new_scores and result.revision == doc.revision:
        ready: ScoresReady = {
            "uri": doc.uri,
            "version": result.version,
            "seconds": round(result.seconds, 3),
        }
        if result.partial:
            ready["partial"] = True
            ready["freshUntil"] = _position(
                result.analysis.scored.text,
                result.analysis.scored.fresh_until,
                ls.client.position_encoding,
            )
        ls.protocol.notify(SCORES_READY, ready)


def republish_all(ls: LossmapServer) -> None:
    """After a threshold change: recompute views from stored results, no re-scoring."""
    for key, state in ls.docs.items():
        if state.result:
            state.result.pieces = features.surprising_pieces(
                state.result.analysis, ls.config.display_threshold
            )
        publish(ls, key, new_scores=False)


def _position(text: str, offset: int | None, encoding: str) -> LspPosition | None:
    if offset is None:
        return None
    pos = PositionMapper(text, encoding).position(offset)
    return {"line": pos.line, "character": pos.character}

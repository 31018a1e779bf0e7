"""Answers to the client's requests, from each document's stored result.

Request handlers only read: the latest stored result, placed in the document's current text
(an edit since is shifted past; what it touched is left out), in the negotiated position
encoding. Every answer is bounded, so that a huge document cannot hold the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from . import features
from .doc_state import DocResult
from .positions import PositionMapper
from .protocol import DocumentScores, SurprisingSpot
from .text_shift import ShiftedPositions, TextShift

if TYPE_CHECKING:
    from .server import LossmapServer

#: Tokens in one ``lossmap/documentScores`` answer, and single-line pieces in one semantic
#: tokens answer: building and sending more holds the event loop for over 100 ms (measured on
#: 2 CPU cores: 5,000 scores took 89 ms to build, unstructure and serialise, 3,000 about
#: 55 ms; 20,000 semantic token pieces 27-39 ms; a 1 MB minified line has ~1M tokens).
MAX_DOCUMENT_SCORES = 3_000
MAX_SEMANTIC_TOKENS = 20_000


def result_positions(ls: LossmapServer, key: str) -> ShiftedPositions | None:
    """LSP ranges in the current text for offsets of the stored result's text."""
    state = ls.docs.get(key)
    if state is None or state.result is None:
        return None
    return ShiftedPositions(
        state.result.analysis.scored.text, ls.current_text(key), ls.client.position_encoding
    )


def diagnostics(ls: LossmapServer, key: str) -> list[types.Diagnostic]:
    """The diagnostics of the stored result of ``key`` (which must have one)."""
    result = ls.docs[key].result
    return features.diagnostics(result.analysis, result_positions(ls, key), ls.config)


def diagnostic_report(
    ls: LossmapServer, key: str, previous_result_id: str | None
) -> types.DocumentDiagnosticReport:
    """A pull-diagnostics report, once the model is loaded: "unchanged" while the client's
    copy is current, or while a re-score is under way (the client moves what it shows with
    the edits, and a refresh follows when the new result lands)."""
    state = ls.docs.get(key)
    if ls.host.state == "failed" or state is None or state.skipped:
        return types.RelatedFullDocumentDiagnosticReport(items=[])
    result = state.result
    if result is None or result.revision != ls.current_revision(key):
        if state.pull_id and previous_result_id == state.pull_id:
            return types.RelatedUnchangedDocumentDiagnosticReport(result_id=state.pull_id)
        return types.RelatedFullDocumentDiagnosticReport(items=[])
    result_id = f"{result.version}:{ls.next_result_id()}"
    made_for = (result.revision, ls.config)
    if state.pull_id and previous_result_id == state.pull_id and state.pull_version == made_for:
        return types.RelatedUnchangedDocumentDiagnosticReport(result_id=state.pull_id)
    state.pull_id, state.pull_version = result_id, made_for
    return types.RelatedFullDocumentDiagnosticReport(
        items=diagnostics(ls, key), result_id=result_id
    )


def semantic_data(
    ls: LossmapServer, key: str, line_range: tuple[int, int] | None = None
) -> list[int]:
    """Encoded tokens for the current text, shifting the last result past an edit."""
    state = ls.docs.get(key)
    if state is None or state.result is None:
        return []
    text = ls.current_text(key)
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
        ls.tell_once(
            key,
            f"{ls.doc_name(key)} has more than {MAX_SEMANTIC_TOKENS:,} surprising"
            " pieces: only the first are highlighted (raise lossmap.displayThreshold"
            " to see the worst everywhere)",
            types.MessageType.Info,
        )
    return features.encode_semantic_tokens(
        pieces, PositionMapper(text, ls.client.position_encoding), line_range
    )


def semantic_tokens(
    ls: LossmapServer, key: str, previous_result_id: str | None = None
) -> types.SemanticTokens | types.SemanticTokensDelta:
    """The document's semantic tokens, under a new result id; as a delta from the last
    answer when ``previous_result_id`` names it."""
    data = semantic_data(ls, key)
    result_id = ls.next_result_id()
    state = ls.docs.get(key)
    previous = state.tokens_sent if state else None
    if state:
        state.tokens_sent = (result_id, data)
    if previous_result_id is not None and previous and previous[0] == previous_result_id:
        return types.SemanticTokensDelta(
            edits=features.semantic_token_edits(previous[1], data), result_id=result_id
        )
    return types.SemanticTokens(data=data, result_id=result_id)


def analysis_offset(
    ls: LossmapServer, key: str, position: types.Position
) -> tuple[DocResult, int] | None:
    """The stored result and the offset in its text for a position in the current text;
    None outside the text or inside what an edit changed since."""
    state = ls.docs.get(key)
    if state is None or state.result is None:
        return None
    mapper = PositionMapper(ls.current_text(key), ls.client.position_encoding)
    if not mapper.inside(position):
        return None
    offset = mapper.offset(position)
    old = state.result.analysis.scored.text
    if old != mapper.text:
        offset = TextShift(old, mapper.text).to_old(offset)
        if offset is None:
            return None
    return state.result, offset


def hover(ls: LossmapServer, key: str, position: types.Position) -> types.Hover | None:
    """The numbers of the token under ``position``; None where there is no scored token."""
    found = analysis_offset(ls, key, position)
    if found is None:
        return None
    result, offset = found
    index = result.analysis.token_at(offset)
    if index is None:
        return None
    tok = result.analysis.tokens[index]
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value=features.hover_markdown(result.analysis, index),
        ),
        range=result_positions(ls, key).range(tok.start, tok.end),
    )


def document_scores(
    ls: LossmapServer,
    uri: str,
    key: str,
    lines: tuple[int, int] | None,
    min_level: int,
) -> DocumentScores | None:
    """Per-token scores of the last result, in its text's positions; at most
    ``MAX_DOCUMENT_SCORES`` of them (``truncated`` says when more remain)."""
    state = ls.docs.get(key)
    if state is None or state.result is None:
        return None
    analysis = state.result.analysis
    encoding = ls.client.position_encoding
    tokens, truncated = features.document_scores(
        analysis,
        PositionMapper(analysis.scored.text, encoding),
        ls.config.display_threshold,
        lines=lines,
        min_level=min_level,
        limit=MAX_DOCUMENT_SCORES,
    )
    answer: DocumentScores = {
        "uri": uri,
        "version": state.result.version,
        "positionEncoding": encoding,
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


def most_surprising(ls: LossmapServer, key: str, n: int) -> list[SurprisingSpot]:
    """The ``n`` most surprising lines, with ranges in the document's current text (each
    entry names its ``version``); lines an edit changed since the last result are left out."""
    state = ls.docs.get(key)
    doc = ls.documents.get(key)
    if state is None or state.result is None or doc is None:
        return []
    return features.most_surprising(
        state.result.analysis,
        result_positions(ls, key),
        n,
        doc.version,
        ls.config.diagnostic_threshold,
    )

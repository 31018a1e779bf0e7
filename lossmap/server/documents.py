"""The open documents, as the client holds them: text, version, language, keyed by one URI form.

lossmap keeps its own copy instead of pygls's workspace because the two must agree with the
editor character for character: pygls splits lines with ``str.splitlines`` (form feed,
``\\v``, U+0085, U+2028 and U+2029 end a line there, not in LSP), so its text drifted from the
editor's after an incremental edit; it also reads a document it was never sent from disk, and
raises ``KeyError`` on a change to a document that was never opened.

Every document is found by :func:`uri_key`: clients percent-encode differently
(``file:///c%3A/x.py`` from VS Code on Windows, ``my%20dir``), and one key for documents,
jobs, caches and publications is what keeps a result attached to its document. Publications
use the URI exactly as the client sent it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from lsprotocol import types

from .positions import PositionMapper


def uri_key(uri: str) -> str:
    """The one form of ``uri`` that lossmap stores and compares.

    Percent-encoding is undone (``%20``, ``%3A``, non-ASCII), the scheme is lower-cased, and a
    Windows drive letter is lower-cased (``file:///C:/`` and ``file:///c%3A/`` are one file).
    """
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return urllib.parse.unquote(uri)
    rest = urllib.parse.unquote(rest)
    if rest.startswith("///") and len(rest) > 4 and rest[4] == ":" and rest[3].isalpha():
        rest = rest[:3] + rest[3].lower() + rest[4:]
    return f"{scheme.lower()}:{rest}"


def display_name(uri: str) -> str:
    """A path-like name for messages and for the language of a file extension."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return urllib.parse.unquote(parsed.path) or uri
    return uri


@dataclass
class OpenDocument:
    """One open document. ``revision`` names its current text uniquely within the store (the
    client's ``version`` repeats after a reopen and may go backwards); results are matched
    on it."""

    uri: str  # as the client sent it at didOpen
    text: str
    version: int
    language_id: str
    revision: int = 0

    @property
    def name(self) -> str:
        return display_name(self.uri)

    def apply(self, change: types.TextDocumentContentChangeEvent, encoding: str) -> None:
        """Apply one content change; positions are in ``encoding`` and clamped as LSP says.
        The store gives the result its new revision."""
        if isinstance(change, types.TextDocumentContentChangePartial):
            mapper = PositionMapper(self.text, encoding)
            start = mapper.offset(change.range.start)
            end = max(start, mapper.offset(change.range.end))
            self.text = self.text[:start] + change.text + self.text[end:]
        else:
            self.text = change.text


class DocumentStore:
    """The open documents by :func:`uri_key`."""

    def __init__(self) -> None:
        self._docs: dict[str, OpenDocument] = {}
        self._revisions = 0

    def _next_revision(self) -> int:
        self._revisions += 1
        return self._revisions

    def open(self, item: types.TextDocumentItem) -> OpenDocument:
        """Store a newly opened document (replacing one under the same key)."""
        doc = OpenDocument(
            item.uri, item.text, item.version, item.language_id, self._next_revision()
        )
        self._docs[uri_key(item.uri)] = doc
        return doc

    def change(
        self, params: types.DidChangeTextDocumentParams, encoding: str
    ) -> OpenDocument | None:
        """Apply a didChange; None when the document is not open (the change is ignored)."""
        doc = self._docs.get(uri_key(params.text_document.uri))
        if doc is None:
            return None
        for change in params.content_changes:
            doc.apply(change, encoding)
        doc.version = params.text_document.version
        doc.revision = self._next_revision()
        return doc

    def close(self, uri: str) -> OpenDocument | None:
        return self._docs.pop(uri_key(uri), None)

    def get(self, uri: str) -> OpenDocument | None:
        return self._docs.get(uri_key(uri))

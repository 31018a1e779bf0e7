"""The server's own copy of each open document, and LSP positions: lines as LSP defines them,
edits applied as the editor applies them, conversions linear in what they read."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from lossmap.analysis.syntax.offsets import LineIndex
from lossmap.server import positions
from lossmap.server.documents import DocumentStore, uri_key
from lossmap.server.positions import PositionMapper

# Characters that end a line for str.splitlines but not for LSP, next to the ones that do.
TRICKY = ["\f", "\v", "\x85", "\u2028", "\u2029", "\x1c", "\r", "\n", "\r\n", "\t"]
ALPHABET = st.sampled_from(TRICKY + ["a", "é", "😀", "中", " ", "\ufeff"])
ENCODINGS = ["utf-8", "utf-16", "utf-32"]


def client_offset(text: str, line: int, character: int, encoding: str) -> int:
    """The editor's side, written independently: split at \\r\\n, \\r, \\n only; count units
    one character at a time; clamp past the end as LSP says."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    if line >= len(starts):
        return len(text)
    pos, units = starts[line], 0
    end = len(text) if line + 1 >= len(starts) else starts[line + 1]
    while pos < end and text[pos] not in "\r\n" and units < character:
        units += {
            "utf-8": len(text[pos].encode()),
            "utf-16": 2 if ord(text[pos]) > 0xFFFF else 1,
        }.get(encoding, 1)
        pos += 1
    return pos


edits = st.lists(
    st.tuples(
        st.integers(0, 8),  # start line (past the end on purpose)
        st.integers(0, 12),  # start character
        st.integers(0, 3),  # lines spanned
        st.integers(0, 12),  # end character
        st.lists(ALPHABET, max_size=6).map("".join),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(ALPHABET, max_size=40).map("".join),
    edits,
    st.sampled_from(ENCODINGS),
)
def test_the_servers_text_equals_the_editors_after_any_edits(text, changes, encoding):
    store = DocumentStore()
    uri = "file:///tmp/x.py"
    store.open(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
    expected = text
    for n, (line, char, span, end_char, new) in enumerate(changes, start=2):
        start = client_offset(expected, line, char, encoding)
        end = max(start, client_offset(expected, line + span, end_char, encoding))
        # Never cut a CRLF or a surrogate pair: an editor's positions never do.
        rng = types.Range(
            start=PositionMapper(expected, encoding).position(start),
            end=PositionMapper(expected, encoding).position(end),
        )
        expected = expected[:start] + new + expected[end:]
        store.change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=n),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=new)],
            ),
            encoding,
        )
        assert store.get(uri).text == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(ALPHABET, max_size=60).map("".join), st.sampled_from(ENCODINGS))
def test_positions_follow_lsp_lines_and_round_trip(text, encoding):
    mapper = PositionMapper(text, encoding)
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    for offset in range(len(text) + 1):
        if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n":
            continue  # inside a line break: no LSP position names it
        pos = mapper.position(offset)
        assert pos.line == max(i for i, s in enumerate(starts) if s <= offset)
        assert mapper.offset(pos) == offset
        assert client_offset(text, pos.line, pos.character, encoding) == offset


def test_a_lone_cr_ends_a_line_and_a_form_feed_does_not():
    index = LineIndex("a = 1\rb = 2\r\x0cc\u2028d\n")
    assert index.line_count == 4
    assert [index.line_span(n) for n in range(3)] == [(0, 5), (6, 11), (12, 16)]


def test_converting_every_offset_of_a_long_line_reads_it_a_bounded_number_of_times(
    monkeypatch,
):
    """A 1 MB minified line made documentScores take 20 s: each offset was re-encoded from its
    line start. Encoding an ascending run of offsets must read the line a bounded number of
    times, whatever its length."""
    line = "let ü = [1, 2, 3];" * 5_000  # 90k characters, not ASCII
    read = []
    real = positions.code_units

    def counting(s: str, encoding: str) -> int:
        read.append(len(s))
        return real(s, encoding)

    monkeypatch.setattr(positions, "code_units", counting)
    mapper = PositionMapper(line, "utf-16")
    for offset in range(0, len(line), 7):
        mapper.position(offset)
    assert sum(read) <= 2 * len(line)


def test_one_key_for_every_spelling_of_a_uri():
    assert uri_key("file:///tmp/my%20dir/x.py") == uri_key("file:///tmp/my dir/x.py")
    assert uri_key("file:///c%3A/src/x.py") == uri_key("file:///C:/src/x.py")
    assert uri_key("file:///tmp/gr%C3%BC%C3%9Fe.py") == uri_key("file:///tmp/grüße.py")
    assert uri_key("FILE:///tmp/a.py") == uri_key("file:///tmp/a.py")
    assert uri_key("file:///tmp/a.py") != uri_key("file:///tmp/A.py")  # case matters on Linux


def test_a_change_to_a_document_that_is_not_open_is_ignored():
    store = DocumentStore()
    params = types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri="file:///nope.py", version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="x")],
    )
    assert store.change(params, "utf-16") is None
    assert store.get("file:///nope.py") is None

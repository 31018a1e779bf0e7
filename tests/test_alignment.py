"""Token-to-syntax alignment with real tree-sitter grammars and non-ASCII source."""

from __future__ import annotations

import pytest

from lossmap.analysis.languages import known_languages, language_for
from lossmap.analysis.offsets import byte_to_char_offsets, char_to_byte_offsets
from lossmap.analysis.syntax import CODE, LAYOUT, PROSE, align, parse

SRC = 'def café(naïve):\n    s = "😀 中文"  # ½ comment\n    return naïve + 1\n'


def spans_of(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Spans of consecutive pieces that must concatenate to ``text``."""
    assert "".join(pieces) == text
    out, pos = [], 0
    for p in pieces:
        out.append((pos, pos + len(p)))
        pos += len(p)
    return out


PIECES = [
    "def", " caf", "é", "(na", "ïve", "):\n", "   ", " s", " =", ' "', "😀", " 中", "文",
    '"', "  #", " ½ comment", "\n", "   ", " return", " na", "ïve", " +", " 1", "\n",
]  # fmt: skip


def by_text(result, pieces):
    return dict(zip(pieces, result, strict=True))


def test_offsets_roundtrip_on_non_ascii():
    chars = list(range(len(SRC) + 1))
    as_bytes = char_to_byte_offsets(SRC, chars)
    assert as_bytes[-1] == len(SRC.encode())
    assert byte_to_char_offsets(SRC, as_bytes) == chars


def test_alignment_on_non_ascii_python():
    parsed = parse(SRC, "python")
    result = align(SRC, spans_of(SRC, PIECES), parsed)
    r = by_text(result, PIECES)
    # An identifier split inside an accented letter still lands on the identifier.
    assert r[" caf"].leaf_types == ("identifier",)
    assert r["é"].node_type == "identifier"
    assert r[" caf"].label == "<function_definition -> identifier>"
    assert r[" caf"].path == ("module", "function_definition", "identifier")
    assert r["(na"].leaf_types == ("(", "identifier")
    assert r["(na"].node_type == "parameters"
    assert result[PIECES.index("ïve")].label == "<parameters -> identifier>"
    assert r["ïve"].label == "<binary_operator -> identifier>"  # the last "ïve": naïve + 1
    # After the emoji and CJK (4 and 3 bytes each), byte offsets must still line up.
    assert r[" return"].label == "<return_statement -> return>"
    assert r[" +"].leaf_types == ("+",)
    assert r[" 1"].label == "<binary_operator -> integer>"
    # Strings and comments are prose; whitespace-only tokens are layout.
    assert r["😀"].kind == PROSE and r[" 中"].kind == PROSE
    assert r[" ½ comment"].kind == PROSE and r[" ½ comment"].node_type == "comment"
    assert r["   "].kind == LAYOUT and r["\n"].kind == LAYOUT
    assert r[" ="].kind == CODE
    assert not any(x.in_error for x in result)


def test_tokens_inside_error_nodes_are_flagged():
    text = "def f(x:\n    return x +\n"
    pieces = ["def", " f", "(x", ":\n", "   ", " return", " x", " +", "\n"]
    result = align(text, spans_of(text, pieces), parse(text, "python"))
    assert any(r.in_error for r in result)
    assert result[pieces.index(" return")].in_error


def test_fstring_interpolation_is_code_not_prose():
    text = 'f"{total} items"\n'
    pieces = ['f"', "{", "total", "}", " items", '"', "\n"]
    r = by_text(align(text, spans_of(text, pieces), parse(text, "python")), pieces)
    assert r["total"].kind == CODE
    assert r[" items"].kind == PROSE


@pytest.mark.parametrize(
    ("language", "text", "pieces", "expected"),
    [
        ("rust", "fn añadir(x: i32) -> i32 { x + 1 }\n",
         ["fn", " añadir", "(x", ":", " i32", ")", " ->", " i32", " {", " x", " +", " 1", " }",
          "\n"],
         {" añadir": "<function_item -> identifier>", " +": "<binary_expression -> +>"}),
        ("javascript", "const 名前 = (a) => a * 2; // ok\n",
         ["const", " 名前", " =", " (a", ")", " =>", " a", " *", " 2", ";", " // ok", "\n"],
         {" 名前": "<variable_declarator -> identifier>", " *": "<binary_expression -> *>"}),
    ],
)  # fmt: skip
def test_alignment_in_other_grammars(language, text, pieces, expected):
    r = by_text(align(text, spans_of(text, pieces), parse(text, language)), pieces)
    for piece, label in expected.items():
        assert r[piece].label == label


def test_unknown_language_scores_without_syntax():
    assert language_for("x.unknownext") is None
    assert language_for(None, "klingon") is None
    assert parse("x = 1", None) is None
    result = align("x = 1 ", [(0, 1), (1, 3), (3, 5), (5, 6)], None)
    assert [r.kind for r in result] == [CODE, CODE, CODE, LAYOUT]
    assert all(r.node_type is None for r in result)


def test_language_detection():
    assert language_for("a/b/c.py") == "python"
    assert language_for("main.RS") == "rust"
    assert language_for("Dockerfile") == "dockerfile"
    assert language_for("x", "TypeScript") == "typescript"
    assert len(known_languages()) > 150


def test_alignment_is_linear_in_file_size():
    # 3,000 lines: a quadratic token-by-node scan (as in code_tokenizers) would take minutes.
    import time

    body = "def f_{i}(x):\n    return x + {i}\n"
    text = "".join(body.format(i=i) for i in range(1500))
    pieces = []
    for line in text.splitlines(keepends=True):
        pieces += [w for w in line.replace(" ", " \0").split("\0") if w]
    spans = spans_of(text, pieces)
    parsed = parse(text, "python")
    t0 = time.perf_counter()
    small = align(text[: len(text) // 10], spans[: len(spans) // 10 - 5], parsed)
    t1 = time.perf_counter()
    big = align(text, spans, parsed)
    t2 = time.perf_counter()
    assert len(big) == len(spans) and small
    # Generous: 10x the input may take at most 40x the time (tree walk included in both).
    assert (t2 - t1) < 40 * max(t1 - t0, 1e-3)

"""Token-to-syntax alignment with real tree-sitter grammars and non-ASCII source."""

from __future__ import annotations

import pytest

from lossmap.analysis.syntax.align import CODE, LAYOUT, PROSE, align, parse
from lossmap.analysis.syntax.languages import (
    known_languages,
    language_for,
    language_from_shebang,
)
from lossmap.analysis.syntax.offsets import byte_to_char_offsets, char_to_byte_offsets
from lossmap.analysis.verdicts.lines import find_definitions

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


def test_later_bytes_of_a_split_character_share_its_owner_syntax():
    # A byte-level tokenizer may split one character over tokens; the later ones get empty
    # spans. They carry surprise too, so they must not become whitespace-like layout.
    text = "名前 = 1\n"
    spans = [(0, 1), (1, 1), (1, 1), (1, 2), (2, 4), (4, 6), (6, 7)]
    for parsed in (parse(text, "python"), None):
        result = align(text, spans, parsed)
        assert result[1] == result[2] == result[0]
        assert result[1].kind == CODE
    assert align(text, spans, parse(text, "python"))[1].node_type == "identifier"


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


def test_line_spans_exclude_crlf_line_breaks():
    from lossmap.analysis.syntax.offsets import LineIndex

    index = LineIndex("a = 1\r\nb = 2\n\r\nc")
    assert [index.line_span(n) for n in range(index.line_count)] == [
        (0, 5),
        (7, 12),
        (13, 13),
        (15, 16),
    ]


def test_language_detection():
    assert language_for("a/b/c.py") == "python"
    assert language_for("main.RS") == "rust"
    assert language_for("Dockerfile") == "dockerfile"
    assert language_for("x", "TypeScript") == "typescript"
    assert len(known_languages()) > 150


@pytest.mark.parametrize(
    ("first_line", "language"),
    [
        ("#!/usr/bin/env python3\n", "python"),
        ("#!/usr/bin/python3.12 -u\n", "python"),
        ("#!/usr/bin/env -S PYTHONPATH=. python3 -u\n", "python"),
        ("#!/bin/sh\n", "bash"),
        ("#!/usr/bin/env node\n", "javascript"),
        ("#!/usr/bin/env Rscript\n", "r"),
        ("#!/usr/bin/env\n", None),
        ("#!/usr/local/bin/klingon\n", None),
        ("# not a shebang: python\n", None),
        (" #!/usr/bin/python\n", None),
    ],
)
def test_a_scripts_language_comes_from_its_shebang(first_line, language):
    assert language_from_shebang(first_line + "print(1)\n") == language


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("python", "class A:\n    def m(self):\n        def inner():\n            pass\n",
         [("A", "class"), ("m", "method"), ("inner", "function")]),
        ("go", "package m\nfunc (s *S) Area() int { return 1 }\nfunc F() {}\n",
         [("Area", "method"), ("F", "function")]),
        ("cpp", "class Shape { int area() { return 1; } };\nstruct P p;\n"
                "int f(int x) { return x; }\n",
         [("Shape", "class"), ("area", "method"), ("f", "function")]),
        ("javascript", "export default class { q() { return 1 } }\nfunction g() {}\n",
         [("q", "method"), ("g", "function")]),
        ("java", "class A { A() {} void m() {} }\n",
         [("A", "class"), ("A", "method"), ("m", "method")]),
        ("rust", "impl S { fn new() -> S { S } }\nfn main() {}\n",
         [("S", "class"), ("new", "method"), ("main", "function")]),
    ],
)  # fmt: skip
def test_definitions_and_their_kinds(language, text, expected):
    found = [(name, kind) for _, name, kind in find_definitions(parse(text, language))]
    assert found == expected


def test_documentation_languages_are_prose_throughout():
    text = "# Notes\n\nSome `code` and *emphasis*.\n"
    spans = [(i, i + 1) for i in range(len(text))]
    kinds = {s.kind for s in align(text, spans, parse(text, "markdown"))}
    assert kinds == {"prose", "layout"}
    python = "x = 1  # note\n"
    kinds = [s.kind for s in align(python, [(0, 1), (1, 7), (7, 14)], parse(python, "python"))]
    assert kinds == ["code", "code", "prose"]


def _roles(text: str, language: str) -> dict[str, set[str | None]]:
    """Each word of ``text`` (a word per token) -> the roles its occurrences got."""
    import re

    spans = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]+|\s+", text)]
    out: dict[str, set[str | None]] = {}
    for (s, e), syn in zip(spans, align(text, spans, parse(text, language)), strict=True):
        if re.fullmatch(r"\w+", text[s:e]):
            out.setdefault(text[s:e], set()).add(syn.role)
    return out


@pytest.mark.parametrize(
    ("language", "text", "bound", "imported", "used"),
    [
        (
            "python",
            "import os\nfrom pkg import thing as alias\nclass Kls(Base):\n"
            "    def meth(self, arg: Tp = dflt, *rest):\n        total, self.attr = fn(kw=arg)\n"
            "        for item in rest:\n            total += item\n        box[key] = total\n",
            {"Kls", "meth", "self", "arg", "rest", "total", "attr", "item"},
            {"os", "pkg", "thing", "alias"},
            {"Base", "Tp", "dflt", "fn", "kw", "box", "key"},
        ),
        (
            "javascript",
            "import { named } from 'mod';\nfunction fun(par) {\n  const loc = call(par);\n"
            "  return loc;\n}\n",
            {"fun", "par", "loc"},
            {"named"},
            {"call"},
        ),
        (
            "go",
            'package main\nimport "fmt"\nfunc Fun(par int) int {\n  loc := par + 1\n'
            "  fmt.Println(loc)\n  return loc\n}\n",
            {"Fun", "par", "loc"},
            set(),
            {"Println"},
        ),
    ],
)
def test_names_being_bound_or_imported_get_a_role_and_uses_do_not(
    language, text, bound, imported, used
):
    roles = _roles(text, language)
    for name in bound:
        assert "binding" in roles[name], name
    for name in imported:
        assert roles[name] == {"import"}, name
    for name in used:
        assert roles[name] == {None}, name


def test_a_plain_assignment_outside_python_is_a_use_and_the_walrus_binds():
    js = _roles("let a = 1;\nfunction g() {\n  a = other;\n}\n", "javascript")
    assert js["a"] == {"binding", None}  # declared (bound), then assigned (used)
    go = _roles("package p\nfunc g() {\n  var a int\n  a = other\n}\n", "go")
    assert go["a"] == {"binding", None}
    py = _roles("if (found := look()):\n    pass\n", "python")
    assert py["found"] == {"binding"} and py["look"] == {None}

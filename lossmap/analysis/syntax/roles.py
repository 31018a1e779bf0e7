"""Binding sites: where a name is introduced rather than used, in any tree-sitter grammar.

A causal model cannot predict a fresh name (a new variable, function, class or parameter,
or what an import brings in): many names would do, and the one chosen is news. A wrong name
at a *use* site is what a bug looks like; at a binding site it is the author's choice. The
verdicts weigh the two differently (see ``verdicts.lines``).

The rules use tree-sitter's field names, which grammars share by convention (``name`` of a
definition, ``left`` of an assignment, ``pattern`` of a ``let``, ``parameters`` of a
function, ``declarator`` in C), so they hold across languages without a table per grammar.
Imports are recognised by their node types (``import_*``, Rust's ``use_declaration``, C's
``#include``); every code token of an import statement gets the import role (module paths
are news as much as the names). A token gets the binding role when a name it touches is
bound (``.attr`` of ``self.attr = ...`` is one token in most tokenizers).
"""

from __future__ import annotations

BINDING, IMPORT = "binding", "import"

#: A ``name`` field child of a node whose type ends like this is a definition's name.
_DEFINES = (
    "definition",
    "declaration",
    "declarator",
    "_item",
    "_spec",
    "parameter",
    "signature",
    "method",
    "function",
    "class",
    "struct",
    "enum",
    "interface",
    "module",
    "alias",
    "macro",
    "constructor",
)
#: Fields a binding context passes on to its children: the bound name's own parts. Types,
#: default values, the object of ``self.x`` and subscripts are uses.
_KEEPS = frozenset({None, "name", "left", "pattern", "attribute", "alias", "declarator"})


def _assigns(parent_type: str) -> bool:
    """Whether the ``left``/``pattern`` of such a node binds. Python's ``assignment`` binds
    (the language has no separate declaration); elsewhere a plain assignment (``x = y`` in C,
    JS, Go, Rust) writes a variable declared before: a use, where a wrong name is a bug."""
    if parent_type == "assignment":
        return True
    return any(
        part in parent_type for part in ("for", "let", "short_var", "range_clause", "declaration")
    )


def child_binds(parent_type: str, field: str | None, inherited: bool) -> bool:
    """Whether the child of a ``parent_type`` node reached through ``field`` is (part of) a
    name being bound, given whether the parent is (``inherited``)."""
    if inherited:
        return field in _KEEPS
    if field == "name":
        return (
            parent_type.endswith(_DEFINES)
            or "parameter" in parent_type
            or parent_type == "named_expression"  # Python's walrus
        )
    if field in ("left", "pattern"):
        return _assigns(parent_type)
    if field == "declarator":
        return "declarat" in parent_type
    return field in ("parameters", "alias")


def is_import(path: tuple[str, ...]) -> bool:
    """Whether a node with this path (root ... node) lies in an import."""
    return any("import" in t or t in ("use_declaration", "preproc_include") for t in path)


def is_name(node_type: str | None) -> bool:
    """Whether a node of this type is a name (only names get a role)."""
    return node_type is not None and ("identifier" in node_type or node_type == "name")

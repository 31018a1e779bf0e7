"""Which tree-sitter grammar a file uses: from an explicit id, the file name or a ``#!`` line."""

from __future__ import annotations

import re
import typing
from functools import lru_cache
from pathlib import PurePath

_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".hxx": "cpp", ".cu": "cuda", ".cuh": "cuda",
    ".cs": "csharp", ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala",
    ".go": "go", ".rs": "rust", ".rb": "ruby", ".php": "php", ".swift": "swift",
    ".m": "objc", ".mm": "objc", ".lua": "lua", ".r": "r", ".jl": "julia", ".dart": "dart",
    ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".hrl": "erlang", ".hs": "haskell",
    ".ml": "ocaml", ".mli": "ocaml_interface", ".fs": "fsharp", ".fsx": "fsharp",
    ".clj": "clojure", ".cljs": "clojure", ".el": "elisp", ".lisp": "commonlisp",
    ".scm": "scheme", ".rkt": "racket", ".zig": "zig", ".nim": "nim", ".v": "v",
    ".sv": "verilog", ".vhd": "vhdl", ".vhdl": "vhdl", ".sol": "solidity", ".pl": "perl",
    ".pm": "perl", ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".fish": "fish",
    ".ps1": "powershell", ".sql": "sql", ".html": "html", ".htm": "html", ".css": "css",
    ".scss": "scss", ".vue": "vue", ".svelte": "svelte", ".json": "json", ".yaml": "yaml",
    ".yml": "yaml", ".toml": "toml", ".xml": "xml", ".md": "markdown", ".tex": "latex",
    ".cmake": "cmake", ".mk": "make", ".proto": "proto", ".tf": "terraform", ".hcl": "hcl",
    ".nix": "nix", ".groovy": "groovy", ".gradle": "groovy", ".glsl": "glsl",
    ".wgsl": "wgsl", ".gd": "gdscript", ".odin": "odin", ".gleam": "gleam", ".elm": "elm",
    ".purs": "purescript", ".hx": "haxe", ".ada": "ada", ".adb": "ada", ".f90": "fortran",
    ".f": "fortran", ".pas": "pascal", ".cob": "cobol", ".graphql": "graphql",
    ".star": "starlark", ".bzl": "starlark", ".rst": "rst", ".ini": "ini", ".vim": "vim",
    ".tcl": "tcl", ".matlab": "matlab",
}  # fmt: skip
_FILENAMES = {
    "Dockerfile": "dockerfile", "Makefile": "make", "CMakeLists.txt": "cmake",
    "BUILD": "starlark", "WORKSPACE": "starlark", "meson.build": "meson",
}  # fmt: skip


@lru_cache(maxsize=1)
def known_languages() -> frozenset[str]:
    """Language ids the pinned tree-sitter-language-pack ships grammars for."""
    import tree_sitter_language_pack as pack

    return frozenset(typing.get_args(pack.SupportedLanguage))


#: Languages whose text is prose throughout (documentation markup): all their tokens count
#: as prose, so they colour the heat map but never rank as surprising code.
PROSE_LANGUAGES = frozenset({"markdown", "markdown_inline", "rst", "org", "latex", "typst"})


def language_for(
    path: str | None, explicit: str | None = None, text: str | None = None
) -> str | None:
    """The language id for ``explicit``, else ``path``'s name, else ``text``'s ``#!`` line;
    None when no grammar fits (an unknown ``explicit`` id is not second-guessed)."""
    if explicit:
        lang = explicit.lower()
        return lang if lang in known_languages() else None
    lang = None
    if path and path != "-":
        p = PurePath(path)
        lang = _FILENAMES.get(p.name) or _EXTENSIONS.get(p.suffix.lower())
    if lang in known_languages():
        return lang
    return language_from_shebang(text) if text else None


#: Interpreters of ``#!`` lines (version suffixes such as ``python3.12`` are dropped).
_INTERPRETERS = {
    "python": "python", "pypy": "python", "node": "javascript", "nodejs": "javascript",
    "bash": "bash", "sh": "bash", "dash": "bash", "ksh": "bash", "zsh": "bash",
    "fish": "fish", "ruby": "ruby", "perl": "perl", "php": "php", "lua": "lua",
    "luajit": "lua", "rscript": "r", "julia": "julia", "tclsh": "tcl", "wish": "tcl",
}  # fmt: skip
_VERSION = re.compile(r"[\d.]+$")


def language_from_shebang(text: str) -> str | None:
    """The language of a script's ``#!`` line (``#!/usr/bin/env -S python3 -u``), or None."""
    if not text.startswith("#!"):
        return None
    words = text[2:1024].split("\n", 1)[0].split()
    if words and PurePath(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    if not words:
        return None
    name = _VERSION.sub("", PurePath(words[0]).name.lower())
    lang = _INTERPRETERS.get(name)
    return lang if lang in known_languages() else None

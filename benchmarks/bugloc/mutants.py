"""Plant one realistic single-token bug per function of Python standard-library modules.

Deterministic for a seed: the same Python version gives the same mutants. Each mutant is a
standalone function (methods dedented), still parses, and records the mutated line.
"""

from __future__ import annotations

import ast
import io
import random
import sysconfig
import textwrap
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

#: Modules nobody on this project wrote, present wherever Python is.
MODULES = [
    "bisect.py", "heapq.py", "textwrap.py", "colorsys.py", "statistics.py", "fractions.py",
    "shlex.py", "difflib.py", "calendar.py", "glob.py", "fnmatch.py", "string.py",
    "base64.py", "ipaddress.py", "functools.py", "copy.py", "pprint.py", "posixpath.py",
    "ntpath.py", "random.py", "quopri.py", "netrc.py", "graphlib.py", "dataclasses.py",
    "json/encoder.py", "json/decoder.py", "html/__init__.py", "urllib/parse.py",
    "email/utils.py", "csv.py", "gettext.py", "locale.py", "tokenize.py", "inspect.py",
    "argparse.py", "configparser.py", "zipfile/__init__.py", "tarfile.py", "pathlib/__init__.py",
    "operator.py", "reprlib.py", "stringprep.py", "_pydecimal.py", "datetime.py",
]  # fmt: skip

SWAPS = {
    "<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "!=", "!=": "==",
    "+": "-", "-": "+", "and": "or", "or": "and", "is": "is not", "in": "not in",
}  # fmt: skip
MIN_LINES, MAX_LINES = 6, 30


@dataclass(frozen=True)
class Mutant:
    module: str
    function: str
    kind: str  # operator | off_by_one | swapped_args | wrong_variable | wrong_attribute
    original: str
    mutated: str
    line: int  # 1-based line of the mutation in ``mutated``
    before: str
    after: str
    def_line: int = 0  # 1-based line of the function's ``def`` in its module

    @property
    def module_line(self) -> int:
        """1-based line of the mutation in the whole module."""
        return self.def_line + self.line - 1

    def in_module(self, module_text: str) -> str:
        """The whole module with this mutation in place (the file as a user opens it)."""
        lines = module_text.splitlines(keepends=True)
        i = self.module_line - 1
        original = self.original.splitlines(keepends=True)[self.line - 1]
        mutated = self.mutated.splitlines(keepends=True)[self.line - 1]
        indent = len(lines[i]) - len(original)  # what textwrap.dedent took off
        assert lines[i][indent:] == original, (self.ident, lines[i], original)
        lines[i] = lines[i][:indent] + mutated
        return "".join(lines)

    @property
    def ident(self) -> str:
        """A stable id, the key of a results file (runs resume by it)."""
        return f"{self.module}:{self.function}:{self.kind}:{self.line}"


def _functions(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = node.end_lineno - node.lineno + 1
            if MIN_LINES <= n <= MAX_LINES and not node.decorator_list:
                yield node


def _offsets(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _sites(src: str, module_attrs: list[str]):
    """(kind, start, end, replacement) candidate edits in the function's source ``src``."""
    tree = ast.parse(src)
    func = tree.body[0]
    doc = ast.get_docstring(func) is not None
    body_start = func.body[1].lineno if doc and len(func.body) > 1 else func.body[0].lineno
    starts = _offsets(src)
    lines = src.splitlines(keepends=True)

    def off(line: int, col: int) -> int:  # ast columns count UTF-8 bytes
        return starts[line - 1] + len(lines[line - 1].encode()[:col].decode())

    sites = []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.start[0] < body_start or tok.end[0] > len(lines):
            continue
        s, e = starts[tok.start[0] - 1] + tok.start[1], starts[tok.end[0] - 1] + tok.end[1]
        if (tok.type == tokenize.OP or tok.string in ("and", "or", "is", "in")) and (
            tok.string in SWAPS
        ):
            sites.append(("operator", s, e, SWAPS[tok.string]))
        elif tok.type == tokenize.NUMBER and tok.string.isdigit() and int(tok.string) < 10:
            n = int(tok.string)
            sites.append(("off_by_one", s, e, str(n + 1 if n == 0 else n - 1)))
    names = sorted(
        {a.arg for a in func.args.args + func.args.kwonlyargs if a.arg != "self"}
        | {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    )
    for node in ast.walk(func):
        if getattr(node, "lineno", 0) < body_start:
            continue
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            a, b = node.args[0], node.args[1]
            if all(isinstance(x, ast.Name | ast.Constant | ast.Attribute) for x in (a, b)):
                sa, ea = off(a.lineno, a.col_offset), off(a.end_lineno, a.end_col_offset)
                sb, eb = off(b.lineno, b.col_offset), off(b.end_lineno, b.end_col_offset)
                if src[sa:ea] != src[sb:eb] and a.lineno == b.end_lineno:
                    swapped = src[sb:eb] + src[ea:sb] + src[sa:ea]
                    sites.append(("swapped_args", sa, eb, swapped))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names:
            others = [n for n in names if n != node.id]
            if others:
                s = off(node.lineno, node.col_offset)
                sites.append(("wrong_variable", s, s + len(node.id), others))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            others = [x for x in module_attrs if x != node.attr]
            if others:
                e = off(node.end_lineno, node.end_col_offset)
                sites.append(("wrong_attribute", e - len(node.attr), e, others))
    return sites


#: The mutation kinds, in the order make_mutants cycles through them.
KINDS = ["operator", "off_by_one", "swapped_args", "wrong_variable", "wrong_attribute"]


def pick_edit(sites, wanted: str, rng: random.Random) -> tuple[str, int, int, str]:
    """One of ``_sites``' edits, of kind ``wanted`` where the function has one, with its
    replacement chosen: (kind, start, end, replacement)."""
    pool = [s for s in sites if s[0] == wanted] or sites
    kind, s, e, repl = rng.choice(pool)
    if isinstance(repl, list):
        repl = rng.choice(repl)
    return kind, s, e, repl


def module_text(module: str) -> str:
    """The text of a standard-library module of ``MODULES``."""
    return (Path(sysconfig.get_paths()["stdlib"]) / module).read_text(encoding="utf-8")


def make_mutants(count: int = 240, seed: int = 1234) -> list[Mutant]:
    """Up to ``count`` mutants, at most one per function, kinds mixed evenly."""
    rng = random.Random(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    candidates = []
    for name in MODULES:
        path = stdlib / name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        attrs = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)})
        lines = text.splitlines(keepends=True)
        for fn in _functions(tree):
            src = textwrap.dedent("".join(lines[fn.lineno - 1 : fn.end_lineno]))
            try:
                ast.parse(src)
            except SyntaxError:
                continue
            candidates.append((name, fn.name, src, attrs, fn.lineno))
    rng.shuffle(candidates)
    out: list[Mutant] = []
    for module, function, src, attrs, def_line in candidates:
        sites = _sites(src, attrs)
        if not sites:
            continue
        kind, s, e, repl = pick_edit(sites, KINDS[len(out) % len(KINDS)], rng)
        mutated = src[:s] + repl + src[e:]
        if mutated == src:
            continue
        try:
            ast.parse(mutated)
        except SyntaxError:
            continue
        line = src.count("\n", 0, s) + 1
        if src.count("\n") != mutated.count("\n"):
            continue  # one line changed: the module keeps its line numbers
        out.append(Mutant(module, function, kind, src, mutated, line, src[s:e], repl, def_line))
        if len(out) >= count:
            break
    return out


if __name__ == "__main__":
    import collections
    import json
    import sys

    mutants = make_mutants(int(sys.argv[1]) if len(sys.argv) > 1 else 240)
    print(len(mutants), collections.Counter(m.kind for m in mutants))
    print(json.dumps(asdict(mutants[0]), indent=1)[:800])

"""The rooms' import rules (ARCHITECTURE.md, invariants), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lossmap"
FORBIDDEN = {
    "analysis": {"server", "render", "review", "report", "cli"},
    "review": {"server"},
    "report": {"server"},
}
#: The analysis room's stages, in pipeline order: each imports only earlier ones (and the
#: room's shared errors and progress modules); the top (analyze, across_files) imports all.
STAGE_FORBIDDEN = {
    "analysis.models": {"analysis.scoring", "analysis.syntax", "analysis.verdicts"},
    "analysis.scoring": {"analysis.syntax", "analysis.verdicts"},
    "analysis.syntax": {"analysis.models", "analysis.scoring", "analysis.verdicts"},
    "analysis.verdicts": {"analysis.analyze", "analysis.across_files"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Modules (dotted, relative to ``lossmap``) that a module imports, relative or absolute,
    at the top or inside a function (a deferred import still ties the two modules); imports
    for type checkers only (``if TYPE_CHECKING:``) do not count."""
    found = set()
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from ..x import y: resolve against the package tree
                base = package[: len(package) - (node.level - 1)]
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif (node.module or "").startswith("lossmap"):
                target = node.module.split(".")[1:]
            else:
                continue
            target_name = ".".join(target)
            for alias in node.names:  # `from . import features` imports a module
                sub = PACKAGE.joinpath(*target, alias.name)
                if sub.with_suffix(".py").exists() or (sub / "__init__.py").exists():
                    found.add(f"{target_name}.{alias.name}".strip("."))
                else:
                    found.add(target_name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lossmap."):
                    found.add(alias.name.split(".", 1)[1])
    return {m for m in found if m}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_rooms(path: Path) -> set[str]:
    """Top-level lossmap subpackages a module imports (relative or absolute)."""
    return {m.split(".")[0] for m in imported_modules(path)}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_rooms_do_not_import_what_they_must_not():
    broken = []
    for room, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / room).rglob("*.py"):
            bad = imported_rooms(path) & forbidden
            if bad:
                broken.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not broken


def test_analysis_stages_import_only_earlier_stages():
    broken = []
    for stage, forbidden in STAGE_FORBIDDEN.items():
        for path in PACKAGE.joinpath(*stage.split(".")).rglob("*.py"):
            for module in imported_modules(path):
                if any(within(module, f) for f in forbidden):
                    broken.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not broken


def test_no_import_circle():
    graph = {
        module_name(p): {m for m in imported_modules(p) if m != module_name(p)}
        for p in PACKAGE.rglob("*.py")
    }
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                circles.append(" -> ".join(path[path.index(dep) :] + [module, dep]))
            elif dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not circles, circles


def test_the_checker_sees_relative_imports():
    assert "analysis" in imported_rooms(PACKAGE / "server" / "model_host.py")
    assert "analysis" in imported_rooms(PACKAGE / "review" / "review.py")
    assert "analysis.scoring.kv_cache" in imported_modules(
        PACKAGE / "analysis" / "scoring" / "document_scorer.py"
    )

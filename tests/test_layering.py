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


def imported_rooms(path: Path) -> set[str]:
    """Top-level lossmap subpackages a module imports (relative or absolute)."""
    rooms = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from ..x import y: resolve against the package tree
                parts = list(path.relative_to(PACKAGE).parts[:depth])
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                target = [*parts, *(node.module.split(".") if node.module else [])]
            else:
                target = (node.module or "").split(".")[1:] if node.module else []
                if not (node.module or "").startswith("lossmap"):
                    continue
            if target:
                rooms.add(target[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lossmap."):
                    rooms.add(alias.name.split(".")[1])
    return rooms


def test_rooms_do_not_import_what_they_must_not():
    broken = []
    for room, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / room).rglob("*.py"):
            bad = imported_rooms(path) & forbidden
            if bad:
                broken.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not broken


def test_the_checker_sees_relative_imports():
    assert "analysis" in imported_rooms(PACKAGE / "server" / "model_host.py")
    assert "analysis" in imported_rooms(PACKAGE / "review" / "review.py")

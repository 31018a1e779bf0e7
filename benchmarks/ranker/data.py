"""Training data for the line ranker: synthetic bugs planted in code outside every benchmark.

Corpus: Python files of packages that lossmap's own install brings (``PACKAGES``: torch's,
transformers', the language server's and the test tools' dependencies), files of 150 to 800
lines. Never used: the standard library (``benchmarks/bugloc`` plants its bugs there), the
real-bug projects and the held-out ones (``benchmarks/realbugs``: fastapi arrives with
llama-cpp-python's server, tqdm with transformers; both are excluded, with starlette and
pydantic, fastapi's closest relatives).

Per file the live model scores the clean file whole, then up to ``MUTANTS_PER_FILE`` mutants
(one single-token bug in one function, ``bugloc.mutants``' five kinds), each as the file up
to the end of the mutated function (a causal model's scores there do not depend on what
follows), latest function first so that each mutant re-scores only its function's tail over
the KV cache of the unchanged prefix.

Records (one JSON line per file, appended: the run resumes) hold the package's version, the
file's path and SHA-256, line numbers and feature vectors (``features.FEATURES``): the
clean file's lines, and per mutant its function's lines, never code.

Usage::

    python benchmarks/ranker/data.py [--files N] [--out FILE]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import random
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "bugloc"))
sys.path.insert(0, str(HERE))

from features import FEATURES, analysis_features  # noqa: E402
from mutants import KINDS, _sites, pick_edit  # noqa: E402

from lossmap.analysis import load_model  # noqa: E402
from lossmap.analysis.analyze import analyze_scored  # noqa: E402
from lossmap.analysis.scoring.document_scorer import DocumentScorer  # noqa: E402

#: (import name, distribution name): pure-Python code of lossmap's dependencies.
PACKAGES = [
    ("networkx", "networkx"), ("sympy", "sympy"), ("jinja2", "Jinja2"), ("pygls", "pygls"),
    ("lsprotocol", "lsprotocol"), ("cattrs", "cattrs"), ("huggingface_hub", "huggingface_hub"),
    ("packaging", "packaging"), ("pip", "pip"), ("setuptools", "setuptools"),
    ("_pytest", "pytest"), ("mpmath", "mpmath"), ("fsspec", "fsspec"), ("yaml", "PyYAML"),
    ("uvicorn", "uvicorn"), ("filelock", "filelock"), ("transformers", "transformers"),
]  # fmt: skip
#: Never read: benchmark projects (and their close relatives) and held-out projects.
EXCLUDED = ("fastapi", "starlette", "pydantic", "tqdm", "_vendor", "vendored")
TEST_PARTS = ("test", "tests", "testing")
MIN_FILE_LINES, MAX_FILE_LINES = 150, 800
MIN_FN_LINES, MAX_FN_LINES = 6, 60
MUTANTS_PER_FILE = 6
OUT = HERE / "mutants.jsonl"


def corpus_files() -> list[tuple[str, str, Path]]:
    """(package, version, path) of every usable file, in a fixed order."""
    out = []
    for name, dist in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root.parent).as_posix()
            parts = path.relative_to(root).parts
            if (
                any(x in rel for x in EXCLUDED)
                or any(p in TEST_PARTS or p.startswith("test_") for p in parts)
                or path.is_symlink()
            ):
                continue
            try:
                n = path.read_bytes().count(b"\n")
            except OSError:
                continue
            if MIN_FILE_LINES <= n <= MAX_FILE_LINES:
                out.append((name, version, path))
    return out


def interleaved(files: list, rng: random.Random) -> list:
    """The files shuffled within each package, then taken one package at a time in turn, so
    that no package (transformers has half of the files) dominates a sample."""
    by_package: dict[str, list] = {}
    for f in files:
        by_package.setdefault(f[0], []).append(f)
    for group in by_package.values():
        rng.shuffle(group)
    out = []
    while any(by_package.values()):
        for group in by_package.values():
            if group:
                out.append(group.pop())
    return out


def plan_mutants(text: str, rng: random.Random) -> list[dict]:
    """Up to ``MUTANTS_PER_FILE`` one-line mutants, one per function, kinds mixed."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines = text.splitlines(keepends=True)
    attrs = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)})
    fns = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and MIN_FN_LINES <= n.end_lineno - n.lineno + 1 <= MAX_FN_LINES
    ]
    rng.shuffle(fns)
    out, used = [], []
    for fn in fns:
        first = fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno
        if any(first <= b and a <= fn.end_lineno for a, b in used):
            continue  # nested in or around a function already mutated
        src = textwrap.dedent("".join(lines[fn.lineno - 1 : fn.end_lineno]))
        try:
            sites = _sites(src, attrs)
        except (SyntaxError, IndexError):
            continue
        if not sites:
            continue
        kind, s, e, repl = pick_edit(sites, KINDS[len(out) % len(KINDS)], rng)
        mutated = src[:s] + repl + src[e:]
        if mutated == src or src.count("\n") != mutated.count("\n"):
            continue
        at = src.count("\n", 0, s)  # 0-based line within the function
        line = fn.lineno + at
        original_line, mutated_line = src.splitlines(True)[at], mutated.splitlines(True)[at]
        indent = len(lines[line - 1]) - len(original_line)
        if lines[line - 1][indent:] != original_line:
            continue
        new_lines = list(lines)
        new_lines[line - 1] = lines[line - 1][:indent] + mutated_line
        new_text = "".join(new_lines)
        try:
            ast.parse(new_text)
        except SyntaxError:
            continue
        end_offset = len("".join(new_lines[: fn.end_lineno]))
        out.append(
            {
                "kind": kind,
                "line": line,
                "function": [first, fn.end_lineno],
                "text": new_text[:end_offset],
            }
        )
        used.append((first, fn.end_lineno))
        if len(out) >= MUTANTS_PER_FILE:
            break
    return out


def _rounded(features) -> dict[str, list[float]]:
    return {str(n): [round(v, 4) for v in f.values] for n, f in features.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=40, help="files to use (a seeded sample)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--model", default="default")
    ap.add_argument("--runtime", default="float32")
    args = ap.parse_args()
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {json.loads(x)["path"] for x in out.read_text().splitlines() if x.strip()}
    files = interleaved(corpus_files(), random.Random(18))[: args.files]
    live = load_model(args.model, runtime=args.runtime)
    for k, (package, version, path) in enumerate(files, 1):
        rel = path.relative_to(_root(path)).as_posix()
        if rel in done:
            continue
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        mutants = plan_mutants(text, random.Random(f"{rel}:{hashlib.sha256(data).hexdigest()}"))
        if not mutants:
            continue
        t0 = time.perf_counter()
        scorer = DocumentScorer(live, top_k=5)
        clean = analyze_scored(scorer.score(text), rel)
        record = {
            "package": package,
            "version": version,
            "path": rel,
            "sha256": hashlib.sha256(data).hexdigest(),
            "n_lines": text.count("\n") + 1,
            "features": list(FEATURES),
            "clean": _rounded(analysis_features(clean)),
            "mutants": [],
        }
        for m in sorted(mutants, key=lambda m: -m["line"]):  # latest first: short re-scores
            analysis = analyze_scored(scorer.score(m["text"]), rel)
            feats = analysis_features(analysis)
            a, b = m["function"]
            record["mutants"].append(
                {
                    "kind": m["kind"],
                    "line": m["line"],
                    "function": [a, b],
                    "lines": _rounded({n: f for n, f in feats.items() if a <= n <= b}),
                }
            )
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(
            f"[{k}/{len(files)}] {rel}: {record['n_lines']} lines, {len(mutants)} mutants,"
            f" {time.perf_counter() - t0:.0f} s",
            flush=True,
        )


def _root(path: Path) -> Path:
    """The site-packages folder ``path`` lies under."""
    for parent in path.parents:
        if parent.name in ("site-packages", "dist-packages"):
            return parent
    return path.parent


if __name__ == "__main__":
    main()

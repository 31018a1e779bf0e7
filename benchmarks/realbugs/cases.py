"""Real-bug benchmark inputs: BugsInPy fixes as (buggy file, target lines) cases.

Each case is one non-test ``.py`` file changed by one BugsInPy fix, with the 1-based lines of
the BUGGY file that the fix deletes or changes (for an insertion-only hunk, the non-blank lines
either side of the insertion point). A bug-localization run scores the buggy file and asks how
high the target lines rank, within the file or within their function (see ``function_span``).

Projects used: ansible, cookiecutter, fastapi, httpie, keras, PySnooper, sanic, spacy, tornado.
Held out, never read here: black, luigi, scrapy, thefuck, tqdm and youtube-dl (reserved as
unseen projects for a later evaluation), pandas and matplotlib (repositories too large).

Sources: the BugsInPy dataset (a git mirror, read at its HEAD) gives each bug's project,
buggy and fixed commits and ``bug_patch.txt``; each project's git mirror gives the files. The
files a case covers are those named in ``bug_patch.txt`` (BugsInPy's curated fix: for a bug
whose buggy commit is not the fixed commit's parent, ``git diff`` spans unrelated changes);
their target lines come from ``git diff -U0 buggy fixed -- path`` in the project's mirror, or
from ``bug_patch.txt`` when the mirror or a commit is missing (``diff_source == "patch"``: the
blob ids are then the patch's abbreviated ones and ``n_lines`` is 0). Skipped: test files
(paths with a ``test``/``tests``/``testing`` folder, ``test_`` or ``conftest`` in them, or a
name ending ``_test.py``), files the fix adds or deletes, files over 8,000 lines. Blank lines
the fix deletes or changes stay among the targets; filter them downstream if need be.

Line numbers count ``\\n``-separated lines, as git and ``ast`` do: index
``text.split("\\n")``, not ``text.splitlines()``, which also splits at form feeds.

Mirrors: see MIRRORS.md next to this file. Regenerate cases.jsonl (ids, line numbers and hashes
only, no source text) and print the summary with::

    python benchmarks/realbugs/cases.py [--dataset GIT_DIR] [--mirrors DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

MIRROR_ROOT = "/work/.mirror"
DATASET_GIT = f"{MIRROR_ROOT}/soarsmu+BugsInPy/repo"
PROJECTS = (
    "ansible",
    "cookiecutter",
    "fastapi",
    "httpie",
    "keras",
    "PySnooper",
    "sanic",
    "spacy",
    "tornado",
)
HELD_OUT = ("black", "luigi", "scrapy", "thefuck", "tqdm", "youtube-dl", "pandas", "matplotlib")
MAX_LINES = 8000
OUT = Path(__file__).with_name("cases.jsonl")

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INFO = re.compile(r'^(\w+)="(.*)"\s*$', re.MULTILINE)
_DIFF_OPTS = (
    "diff",
    "-U0",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--diff-algorithm=myers",
    "--indent-heuristic",
)


class BlobMismatchError(RuntimeError):
    """A file read from a mirror is not the blob a case recorded."""


@dataclass(frozen=True)
class RealBug:
    """One file changed by one BugsInPy fix, and the buggy file's lines the fix targets.

    ``target_lines``: 1-based lines of the buggy file that the fix deletes or changes; for a
    hunk that only inserts, the line just before the insertion point and the one just after,
    when they exist and are not blank (if both are blank, the nearest non-blank line above and
    below). ``insertion_only``: every hunk of the file's diff only inserts. ``diff_source``:
    ``"git"`` (``git diff -U0`` in the mirror) or ``"patch"`` (``bug_patch.txt``, when the
    mirror or a commit is missing; blob ids are then abbreviated and ``n_lines`` is 0).
    """

    project: str
    bug: int
    repo: str
    mirror: str
    buggy_commit: str
    fixed_commit: str
    path: str
    buggy_blob: str
    fixed_blob: str
    target_lines: tuple[int, ...]
    insertion_only: bool
    n_lines: int
    diff_source: str = "git"

    @property
    def id(self) -> str:
        """A stable id: ``project-bug:path``."""
        return f"{self.project}-{self.bug}:{self.path}"


@dataclass(frozen=True)
class Skipped:
    """A (bug, file) pair left out of the cases, and why."""

    project: str
    bug: int
    path: str
    reason: str


def _git(git_dir: str, *args: str, check: bool = True) -> bytes:
    """Run git on a bare (or .git) directory and return its stdout."""
    proc = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"git --git-dir={git_dir} {' '.join(args)} failed: "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout


def _info(text: str) -> dict[str, str]:
    """Parse a BugsInPy ``key="value"`` info file."""
    return dict(_INFO.findall(text))


def repo_of(github_url: str) -> str:
    """``owner/name`` from a GitHub URL (trailing slash and ``.git`` dropped)."""
    tail = github_url.strip().rstrip("/").removesuffix(".git")
    owner, name = tail.split("/")[-2:]
    return f"{owner}/{name}"


def mirror_of(repo: str, mirror_root: str = MIRROR_ROOT) -> str:
    """The git directory of ``repo``'s mirror: ``ROOT/owner+name/repo`` (or its ``.git``)."""
    base = Path(mirror_root) / repo.replace("/", "+") / "repo"
    return str(base / ".git") if (base / ".git").is_dir() else str(base)


def is_test_path(path: str) -> bool:
    """Whether ``path`` is a test file (or test data) rather than project source."""
    parts = path.split("/")
    name = parts[-1]
    return (
        any(part in ("test", "tests", "testing") for part in parts[:-1])
        or "tests/" in path
        or "test_" in path
        or "conftest" in path
        or name.endswith("_test.py")
    )


def count_lines(data: bytes) -> int:
    """Lines in ``data`` as git counts them (a last line without ``\\n`` counts)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _blob_sha(data: bytes) -> str:
    """The git blob id of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _blank(lines: list[bytes], line: int) -> bool:
    """Whether 1-based ``line`` of ``lines`` is blank (whitespace only)."""
    return not lines[line - 1].strip()


def _insertion_targets(lines: list[bytes], after: int) -> list[int]:
    """Targets for an insertion after buggy line ``after`` (0: at the file's start).

    The line just before and the one just after, when they exist and are not blank; if that
    leaves none, the nearest non-blank line above and the nearest below.
    """
    n = len(lines)
    near = [x for x in (after, after + 1) if 1 <= x <= n and not _blank(lines, x)]
    if near:
        return near
    above = next((x for x in range(after, 0, -1) if not _blank(lines, x)), None)
    below = next((x for x in range(after + 1, n + 1) if not _blank(lines, x)), None)
    return [x for x in (above, below) if x is not None]


def targets_from_git(
    mirror: str, buggy: str, fixed: str, path: str, buggy_data: bytes
) -> tuple[tuple[int, ...], bool]:
    """Target lines and the insertion-only flag from ``git diff -U0 buggy fixed -- path``."""
    diff = _git(mirror, *_DIFF_OPTS, buggy, fixed, "--", path)
    lines = buggy_data.split(b"\n")
    targets: set[int] = set()
    insertion_only = True
    for row in diff.split(b"\n"):
        match = _HUNK.match(row)
        if not match:
            continue
        start = int(match.group(1))
        count = 1 if match.group(2) is None else int(match.group(2))
        if count:
            insertion_only = False
            targets.update(range(start, start + count))
        else:
            targets.update(_insertion_targets(lines, start))
    return tuple(sorted(targets)), insertion_only


def _patch_files(patch: str) -> dict[str, list[str]]:
    """Split a unified git patch into ``{path: lines of that file's section}``."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for row in patch.split("\n"):
        if row.startswith("diff --git "):
            match = re.match(r"diff --git a/(\S+) b/(\S+)", row)
            path = match.group(1) if match else row.split()[-1].removeprefix("b/")
            current = files.setdefault(path, [])
        elif current is not None:
            current.append(row)
    return files


def targets_from_patch(section: list[str]) -> tuple[tuple[int, ...], bool, str, str, str]:
    """Targets, insertion-only flag, abbreviated blobs and change kind from a patch section.

    Kind is ``"added"``, ``"deleted"`` or ``"modified"``. The blank test of an insertion's
    neighbours uses the patch's context lines; a line outside the context is taken to exist
    and to be non-blank (its text is unknown here).
    """
    kind = "modified"
    old_blob = new_blob = ""
    targets: set[int] = set()
    insertions: list[int] = []  # buggy lines after which an insertion-only run goes
    insertion_only = True
    old = 0
    context: dict[int, str] = {}
    block: list[str] = []  # the current run of -/+ lines
    block_start = 0  # the buggy line number where the run begins

    def close_block() -> None:
        nonlocal insertion_only
        if not block:
            return
        n_del = sum(r.startswith("-") for r in block)
        if n_del:
            insertion_only = False
            targets.update(range(block_start, block_start + n_del))
        else:
            insertions.append(block_start - 1)
        block.clear()

    for row in section:
        if old == 0 and (row.startswith("new file mode") or row.startswith("--- /dev/null")):
            kind = "added"
        elif old == 0 and (row.startswith("deleted file mode") or row == "+++ /dev/null"):
            kind = "deleted"
        elif old == 0 and row.startswith("index "):
            blobs = row.split()[1].split("..")
            if len(blobs) == 2:
                old_blob, new_blob = blobs
        elif row.startswith("@@"):
            close_block()
            match = _HUNK.match(row.encode())
            if match:
                count = 1 if match.group(2) is None else int(match.group(2))
                old = int(match.group(1)) if count else int(match.group(1)) + 1
        elif old and row.startswith(("-", "+")):
            if not block:
                block_start = old
            block.append(row)
            if row.startswith("-"):
                context[old] = row[1:]
                old += 1
        elif old and row.startswith(" "):
            context[old] = row[1:]
            close_block()
            old += 1
    close_block()

    def blank(line: int) -> bool:
        return line in context and not context[line].strip()

    for after in insertions:
        near = [x for x in (after, after + 1) if x >= 1 and not blank(x)]
        if not near:
            above = next((x for x in range(after, 0, -1) if not blank(x)), None)
            below = next(x for x in range(after + 1, after + 2 + len(context)) if not blank(x))
            near = [x for x in (above, below) if x is not None]
        targets.update(near)
    return tuple(sorted(targets)), insertion_only, old_blob, new_blob, kind


def _has_commit(mirror: str, commit: str) -> bool:
    """Whether ``mirror`` exists and holds ``commit``."""
    if not Path(mirror).is_dir():
        return False
    proc = subprocess.run(
        ["git", f"--git-dir={mirror}", "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _blob_at(mirror: str, commit: str, path: str) -> str | None:
    """The blob id of ``path`` at ``commit``, or None when the path is absent there."""
    proc = subprocess.run(
        ["git", f"--git-dir={mirror}", "rev-parse", "--verify", "--quiet", f"{commit}:{path}"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip() or None


def load_all(
    dataset_git: str = DATASET_GIT,
    mirror_root: str = MIRROR_ROOT,
    projects: tuple[str, ...] = PROJECTS,
) -> tuple[list[RealBug], list[Skipped], dict[str, int]]:
    """Cases, the (bug, file) pairs skipped and each project's bug count in BugsInPy."""
    cases: list[RealBug] = []
    skipped: list[Skipped] = []
    n_bugs: dict[str, int] = {}
    for project in projects:
        if project in HELD_OUT:
            raise ValueError(f"{project} is held out of this benchmark")
        base = f"projects/{project}"
        info = _info(_git(dataset_git, "show", f"HEAD:{base}/project.info").decode())
        repo = repo_of(info["github_url"])
        mirror = mirror_of(repo, mirror_root)
        listing = _git(dataset_git, "ls-tree", "--name-only", f"HEAD:{base}/bugs").decode()
        bugs = sorted(int(b) for b in listing.split() if b.isdigit())
        n_bugs[project] = len(bugs)
        for bug in bugs:
            where = f"HEAD:{base}/bugs/{bug}"
            bug_info = _info(_git(dataset_git, "show", f"{where}/bug.info").decode())
            buggy, fixed = bug_info["buggy_commit_id"], bug_info["fixed_commit_id"]
            patch = _git(dataset_git, "show", f"{where}/bug_patch.txt").decode(errors="replace")
            sections = _patch_files(patch)
            if not sections:
                skipped.append(Skipped(project, bug, "", "empty bug_patch.txt"))
                continue
            use_git = _has_commit(mirror, buggy) and _has_commit(mirror, fixed)
            for path, section in sections.items():
                if not path.endswith(".py"):
                    skipped.append(Skipped(project, bug, path, "not a .py file"))
                    continue
                if is_test_path(path):
                    skipped.append(Skipped(project, bug, path, "test file"))
                    continue
                case = (
                    _case_from_git(project, bug, repo, mirror, buggy, fixed, path)
                    if use_git
                    else _case_from_patch(project, bug, repo, mirror, buggy, fixed, path, section)
                )
                if isinstance(case, str):
                    skipped.append(Skipped(project, bug, path, case))
                else:
                    cases.append(case)
    return cases, skipped, n_bugs


def _case_from_git(
    project: str, bug: int, repo: str, mirror: str, buggy: str, fixed: str, path: str
) -> RealBug | str:
    """A case from the mirror, or the reason to skip the file."""
    buggy_blob = _blob_at(mirror, buggy, path)
    fixed_blob = _blob_at(mirror, fixed, path)
    if buggy_blob is None:
        return "added by the fix"
    if fixed_blob is None:
        return "deleted by the fix"
    if buggy_blob == fixed_blob:
        return "unchanged between the commits"
    data = _git(mirror, "cat-file", "blob", buggy_blob)
    n_lines = count_lines(data)
    if n_lines > MAX_LINES:
        return f"over {MAX_LINES} lines ({n_lines})"
    targets, insertion_only = targets_from_git(mirror, buggy, fixed, path, data)
    if not targets:
        return "no target lines"
    return RealBug(
        project, bug, repo, mirror, buggy, fixed, path, buggy_blob, fixed_blob,
        targets, insertion_only, n_lines, "git",
    )  # fmt: skip


def _case_from_patch(
    project: str,
    bug: int,
    repo: str,
    mirror: str,
    buggy: str,
    fixed: str,
    path: str,
    section: list[str],
) -> RealBug | str:
    """A case from ``bug_patch.txt`` alone, or the reason to skip the file."""
    targets, insertion_only, old_blob, new_blob, kind = targets_from_patch(section)
    if kind != "modified":
        return f"{kind} by the fix"
    if not targets:
        return "no target lines"
    return RealBug(
        project, bug, repo, mirror, buggy, fixed, path, old_blob, new_blob,
        targets, insertion_only, 0, "patch",
    )  # fmt: skip


def load_cases(dataset_git: str = DATASET_GIT, mirror_root: str = MIRROR_ROOT) -> list[RealBug]:
    """One ``RealBug`` per (bug, changed non-test .py file) of the used BugsInPy projects."""
    return load_all(dataset_git, mirror_root)[0]


def _read(case: RealBug, commit: str, blob: str) -> str:
    """``git show commit:path`` from the case's mirror, checked against ``blob``."""
    data = _git(case.mirror, "show", f"{commit}:{case.path}")
    actual = _blob_sha(data)
    if not blob or not actual.startswith(blob):
        raise BlobMismatchError(
            f"{case.id}: {case.path} at {commit[:12]} in {case.mirror} is blob {actual}, "
            f"but the case recorded {blob or '(none)'}"
        )
    return data.decode("utf-8", errors="surrogateescape")


def buggy_text(case: RealBug) -> str:
    """The buggy file's text (raises ``BlobMismatchError`` if the blob differs)."""
    return _read(case, case.buggy_commit, case.buggy_blob)


def fixed_text(case: RealBug) -> str:
    """The fixed file's text (raises ``BlobMismatchError`` if the blob differs)."""
    return _read(case, case.fixed_commit, case.fixed_blob)


@lru_cache(maxsize=16)
def _function_spans(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of every function in ``text``, decorators included; () if unparsable."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return ()
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            spans.append((start, node.end_lineno or node.lineno))
    return tuple(spans)


def enclosing_function(text: str, line: int) -> tuple[int, int] | None:
    """(start_line, end_line) of the innermost function containing ``line``, or None.

    Functions are ``def`` and ``async def`` at any depth (methods, nested functions); the span
    starts at the first decorator. None also when ``text`` does not parse as Python 3.
    """
    inside = [s for s in _function_spans(text) if s[0] <= line <= s[1]]
    return min(inside, key=lambda s: s[1] - s[0]) if inside else None


def common_function(text: str, lines: tuple[int, ...]) -> tuple[int, int] | None:
    """The innermost function containing every one of ``lines``, or None."""
    if not lines:
        return None
    inside = [s for s in _function_spans(text) if s[0] <= min(lines) and max(lines) <= s[1]]
    return min(inside, key=lambda s: s[1] - s[0]) if inside else None


def function_span(case: RealBug, text: str | None = None) -> tuple[int, int] | None:
    """The span of the innermost function of the buggy file holding all the case's targets.

    Computed on demand (it reads and parses the buggy file; pass ``text`` to skip the read).
    None when the targets are not all inside one function, e.g. a module-level change, or a
    fix that spans two functions, or an insertion at a function's end whose following line
    lies outside it.
    """
    return common_function(buggy_text(case) if text is None else text, case.target_lines)


def _record(case: RealBug, span: tuple[int, int] | None) -> dict[str, object]:
    """The JSONL record of a case: ids, line numbers and hashes, no source text."""
    record: dict[str, object] = {"id": case.id, **asdict(case)}
    record["target_lines"] = list(case.target_lines)
    record["function_span"] = list(span) if span else None
    return record


def main(argv: list[str] | None = None) -> int:
    """Write cases.jsonl and print a per-project summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", default=DATASET_GIT, help="BugsInPy git directory")
    parser.add_argument("--mirrors", default=MIRROR_ROOT, help="root of the project mirrors")
    parser.add_argument("--out", default=str(OUT), help="JSONL file to write")
    args = parser.parse_args(argv)

    cases, skipped, n_bugs = load_all(args.dataset, args.mirrors)
    spans: dict[str, tuple[int, int] | None] = {}
    with open(args.out, "w", encoding="utf-8") as out:
        for case in cases:
            span = function_span(case) if case.diff_source == "git" else None
            spans[case.id] = span
            out.write(json.dumps(_record(case, span)) + "\n")

    header = ("project", "bugs", "cases", "median lines", "in one function", "insert-only")
    print(f"{header[0]:<13}" + "".join(f"{h:>16}" for h in header[1:]) + "  mirror")
    for project in PROJECTS:
        mine = [c for c in cases if c.project == project]
        info = _git(args.dataset, "show", f"HEAD:projects/{project}/project.info").decode()
        mirror = mirror_of(repo_of(_info(info)["github_url"]), args.mirrors)
        known = [c.n_lines for c in mine if c.n_lines]
        row = (
            n_bugs[project],
            len(mine),
            int(statistics.median(known)) if known else "-",
            sum(spans[c.id] is not None for c in mine),
            sum(c.insertion_only for c in mine),
        )
        state = "ok" if Path(mirror).is_dir() else "MISSING"
        print(f"{project:<13}" + "".join(f"{v:>16}" for v in row) + f"  {state}")
    all_known = [c.n_lines for c in cases if c.n_lines]
    total = (
        sum(n_bugs.values()),
        len(cases),
        int(statistics.median(all_known)) if all_known else "-",
        sum(s is not None for s in spans.values()),
        sum(c.insertion_only for c in cases),
    )
    print(f"{'total':<13}" + "".join(f"{v:>16}" for v in total))
    from_patch = [c.id for c in cases if c.diff_source == "patch"]
    if from_patch:
        print(f"{len(from_patch)} cases from bug_patch.txt (mirror or commit missing)")
    reasons: dict[str, int] = {}
    for skip in skipped:
        reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
    print("skipped: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
    for skip in skipped:
        if skip.reason not in ("test file",):
            print(f"  {skip.project}-{skip.bug} {skip.path or '(no file)'}: {skip.reason}")
    print(f"wrote {len(cases)} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What changed in a git repository: files, their new text, and the new side's changed lines.

Only git plumbing lives here; nothing is scored. Paths are read with ``-z`` so that any file
name survives; the changed lines come from ``--unified=0`` hunk headers.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..analysis.errors import InputError
from ..analysis.syntax.source import decode_source

#: git's well-known empty tree: the base of a repository without commits.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


@dataclass(frozen=True)
class ChangeSet:
    """Which changes to review: ``base`` vs ``new`` (a revision, the index, or the worktree)."""

    description: str
    diff_args: tuple[str, ...]  # what ``git diff`` gets to compare base with new
    new_rev: str | None  # None: the working tree; ":" the index; else a revision


@dataclass(frozen=True)
class ChangedFile:
    """A file whose new version exists, with its 1-based changed (added) lines."""

    path: str  # relative to the repository root, '/'-separated
    status: str  # A added, M modified, R renamed, C copied, T type changed
    lines: tuple[int, ...]
    text: str | None  # None when it could not be read: ``error`` says why
    error: str | None = None


def _git(root: Path | None, *args: str, check: bool = True) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, check=False, timeout=120
        )
    except FileNotFoundError:
        raise InputError("git is not installed (lossmap diff reviews git changes)") from None
    if check and done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"git {args[0]} failed: {message[-1] if message else 'no message'}")
    return done.stdout


def repo_root(cwd: Path) -> Path:
    """The top directory of the repository containing ``cwd``, or a clear error."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=cwd,
            capture_output=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError:
        raise InputError("git is not installed (lossmap diff reviews git changes)") from None
    if out.returncode != 0:
        raise InputError(
            f"{cwd} is not inside a git repository: lossmap diff reviews git changes"
            " (use 'lossmap scan FILE' for files outside git)"
        )
    return Path(out.stdout.decode().strip())


def _has_head(root: Path) -> bool:
    return bool(_git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip())


def _verify(root: Path, rev: str) -> None:
    if not _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False):
        raise InputError(f"unknown revision '{rev}'")


def change_set(root: Path, rev: str | None, staged: bool) -> ChangeSet:
    """Interpret ``[REV]`` and ``--staged`` the way ``git diff`` does.

    - nothing: the working tree against HEAD (staged and unstaged changes);
    - ``--staged``: the index against HEAD (or against REV);
    - ``REV``: the working tree against REV;
    - ``A..B``: B against A; ``A...B``: B against the merge base of A and B.
    """
    head = "HEAD" if _has_head(root) else EMPTY_TREE
    if rev and ".." in rev:
        if staged:
            raise InputError("--staged compares the index with one revision, not a range")
        three = "..." in rev
        left, right = rev.split("..." if three else "..", 1)
        left, right = left or "HEAD", right or "HEAD"
        for r in (left, right):
            _verify(root, r)
        base = left
        if three:
            base = _git(root, "merge-base", left, right).decode().strip()
        return ChangeSet(f"changes in {rev}", (base, right), right)
    base = rev or head
    if rev:
        _verify(root, rev)
    if staged:
        return ChangeSet(f"staged changes against {rev or 'HEAD'}", ("--cached", base), ":")
    return ChangeSet(f"working tree against {rev or 'HEAD'}", (base,), None)


def changed_files(
    root: Path,
    changes: ChangeSet,
    paths: tuple[str, ...] = (),
    cwd: Path | None = None,
    max_bytes: int | None = None,
) -> list[ChangedFile]:
    """Files added or modified by ``changes`` (deleted ones have nothing to score).

    ``paths`` limit the review, relative to ``cwd`` as for ``git diff -- PATHS``.
    """
    spec = ("--", *paths) if paths else ()
    # Line numbers must be those of the blob read below: no textconv, no merged hunks.
    common = (
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--inter-hunk-context=0",
        "--no-relative",
        "-M",
        "--diff-filter=ACMRT",
    )
    out = _git(cwd or root, *common, "--name-status", "-z", *changes.diff_args, *spec)
    fields = out.split(b"\0")
    files: list[ChangedFile] = []
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i].decode()[0]
        # Renames and copies name the old path, then the new one; git pairs them only when
        # both are in the pathspec (else every line of the new path looks added).
        raw_paths = fields[i + 1 : i + 3] if status in "RC" else fields[i + 1 : i + 2]
        i += 1 + len(raw_paths)
        git_paths = [p.decode("utf-8", errors="surrogateescape") for p in raw_paths]
        path = raw_paths[-1].decode("utf-8", errors="replace")  # for people and JSON
        git_path = git_paths[-1]
        specs = [f":(top,literal){p}" for p in git_paths]
        patch = _git(root, *common, "--unified=0", *changes.diff_args, "--", *specs)
        if b"\nBinary files " in patch or patch.startswith(b"Binary files "):
            files.append(ChangedFile(path, status, (), None, f"{path}: binary file, skipped"))
            continue
        lines = tuple(
            n
            for m in _HUNK.finditer(patch)
            for n in range(int(m[1]), int(m[1]) + int(m[2] if m[2] is not None else 1))
        )
        if changes.new_rev is None and (root / git_path).is_symlink():
            # Its target may be anything (~/.ssh/...): never read it into the model or output.
            files.append(ChangedFile(path, status, (), None, f"{path}: symbolic link, skipped"))
            continue
        try:
            text = decode_source(_new_bytes(root, changes, git_path), path, max_bytes).text
            files.append(ChangedFile(path, status, lines, text))
        except InputError as err:
            files.append(ChangedFile(path, status, lines, None, str(err)))
    return files


def _new_bytes(root: Path, changes: ChangeSet, path: str) -> bytes:
    if changes.new_rev is None:
        try:
            return (root / path).read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror})") from None
    # ":0:" names stage 0 (the index) even for paths that begin with "1:".
    spec = f":0:{path}" if changes.new_rev == ":" else f"{changes.new_rev}:{path}"
    return _git(root, "show", spec)

"""``lossmap diff`` on a small git repository built here, with one planted bug among ordinary
changes; the real default model ranks the lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lossmap import cli
from lossmap.analysis.models.roles import ModelRoles, RoleModels
from lossmap.render.sarif import sarif_document
from lossmap.review.review import Review, ReviewedLine

pytestmark = pytest.mark.model

BEFORE_STATS = """\
import os


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\\n") for line in f]


def count_words(lines):
    counts = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    return counts
"""
# The change: a new function with a planted bug (`return item` where `best` is meant), a
# renamed variable and a new docstring elsewhere.
AFTER_STATS = '''\
import os


def read_lines(path):
    """Lines of the file at ``path``, without their newlines."""
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [line.rstrip("\\n") for line in handle]


def find_max(items):
    best = items[0]
    for item in items[1:]:
        if item > best:
            best = item
    return item


def count_words(lines):
    counts = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    return counts
'''
BUG_LINE = AFTER_STATS.splitlines().index("    return item") + 1
GREETING = 'def greet(name):\n    return f"Hello, {name}!"\n'
GREETING_AFTER = GREETING + '\n\ndef farewell(name):\n    return f"Goodbye, {name}!"\n'


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "stats.py").write_text(BEFORE_STATS)
    (tmp_path / "greet.py").write_text(GREETING)
    (tmp_path / "logo.bin").write_bytes(b"\x00\x01")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / "stats.py").write_text(AFTER_STATS)
    (tmp_path / "greet.py").write_text(GREETING_AFTER)
    (tmp_path / "logo.bin").write_bytes(b"\x00\x02\x03")
    (tmp_path / "notes café.md").write_text("# Notes\n\nNothing to see.\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "second")
    return tmp_path


@pytest.fixture
def run(monkeypatch, real_model, capsys):
    """``lossmap diff ...`` in-process, with the session's model (live and judge) instead of
    a fresh load."""
    models = RoleModels(ModelRoles("default", "default"), real_model, real_model)
    monkeypatch.setattr(cli, "_load", lambda args, progress: models)

    def invoke(repo: Path, *argv: str) -> tuple[int, str, str]:
        monkeypatch.chdir(repo)
        if "--confirm" not in argv and "--" not in argv:  # fewer two-sided lines: faster
            argv = (*argv, "--confirm", "2")
        elif "--confirm" not in argv:
            cut = argv.index("--")
            argv = (*argv[:cut], "--confirm", "2", *argv[cut:])
        code = cli.main(["diff", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_the_planted_bug_is_listed_first_for_a_commit_range(repo, run):
    code, out, err = run(
        repo, "HEAD~1..HEAD", "--format", "json", "--threshold", "0", "--confirm", "8"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "lossmap.diff" and doc["version"] == 1
    assert doc["model"] == doc["judge"] == "default"
    first = doc["lines"][0]
    assert (first["path"], first["line"]) == ("stats.py", BUG_LINE), doc["lines"][:3]
    assert first["token"] == "item" and first["expected"].strip() == "best"
    listed = {(ln["path"], ln["line"]) for ln in doc["lines"]}
    assert len(listed) > 3  # ordinary changes were ranked too, below the bug
    # The markdown file is prose throughout: reviewed, never ranked as surprising code.
    assert {ln["path"] for ln in doc["lines"]} == {"stats.py", "greet.py"}
    assert "notes café.md" in {f["path"] for f in doc["files"]}
    skipped = {f["path"]: f["error"] for f in doc["files"] if f["error"]}
    assert "binary" in skipped["logo.bin"]


def test_staged_and_working_tree_changes(repo, run):
    (repo / "greet.py").write_text(
        GREETING_AFTER + "\n\ndef shout(name):\n    return nme.upper()\n"
    )
    git(repo, "add", "greet.py")
    (repo / "stats.py").write_text(AFTER_STATS + "\n\nTOTAL = sum([1, 2, 3])\n")
    code, out, _ = run(repo, "--staged", "--format", "json", "--threshold", "0")
    doc = json.loads(out)
    assert code == 0 and {ln["path"] for ln in doc["lines"]} == {"greet.py"}
    assert doc["lines"][0]["code"] == "    return nme.upper()"  # the typo leads
    code, out, _ = run(repo, "--format", "json", "--threshold", "0", "--", "stats.py")
    doc = json.loads(out)
    assert code == 0 and {ln["path"] for ln in doc["lines"]} == {"stats.py"}
    assert all(ln["line"] > len(AFTER_STATS.splitlines()) for ln in doc["lines"])


def test_markdown_and_sarif(repo, run):
    code, out, _ = run(
        repo, "HEAD~1", "--staged", "--format", "markdown", "--max", "3", "--threshold", "0"
    )
    assert code == 0
    assert f"| stats.py:{BUG_LINE} |" in out and out.count("\n| ") == 4  # header + 3
    code, out, _ = run(repo, "HEAD~1..HEAD", "--format", "sarif", "--max", "2")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    (result, *_) = sarif["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == BUG_LINE and region["startColumn"] == 12
    assert region["endColumn"] == 16  # `item`, columns 1-based, end exclusive
    assert result["level"] == "note" and "expected `best`" in result["message"]["text"]


def test_outside_a_git_repository_and_bad_revisions(tmp_path, run):
    code, out, err = run(tmp_path, "--format", "json")
    assert code == 2 and out == ""
    assert "not inside a git repository" in err and "lossmap scan" in err


def test_unknown_revision_is_a_usage_error(repo, run):
    code, _, err = run(repo, "no-such-branch")
    assert code == 2 and "unknown revision 'no-such-branch'" in err


def test_text_output_lists_the_bug(repo, run):
    code, out, _ = run(repo, "HEAD~1..HEAD", "--max", "5", "--threshold", "0")
    assert code == 0 and f"stats.py:{BUG_LINE}" in out
    assert "    return item\n" in out and "^^^^ `item` → `best`" in out


def test_nothing_to_review_needs_no_model(repo, monkeypatch, capsys):
    def no_model(args, progress):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(cli, "_load", no_model)
    monkeypatch.chdir(repo)
    assert cli.main(["diff", "--format", "json"]) == 0  # the working tree is clean
    doc = json.loads(capsys.readouterr().out)
    assert doc["lines"] == [] and doc["notes"] == ["no added or changed lines to review"]


def test_module_entry_point_reports_outside_git(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lossmap", "diff"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2 and "not inside a git repository" in done.stderr


def test_git_changes_renames_symlinks_and_hunk_settings(repo):
    from lossmap.review.git_changes import change_set, changed_files

    git(repo, "config", "diff.interHunkContext", "5")  # must not merge hunks for us
    git(repo, "mv", "stats.py", "numbers.py")
    lines = AFTER_STATS.splitlines()
    lines[5] = "    if not os.path.isfile(path):"  # line 6
    lines[8] = "        return list(handle)"  # line 9: a merged hunk would add 7 and 8
    (repo / "numbers.py").write_text("\n".join(lines) + "\n")
    (repo / "link.py").symlink_to("/etc/hostname")
    git(repo, "add", "-A")
    files = {f.path: f for f in changed_files(repo, change_set(repo, None, staged=True))}
    assert files["numbers.py"].status == "R" and files["numbers.py"].lines == (6, 9)
    worktree = {f.path: f for f in changed_files(repo, change_set(repo, None, staged=False))}
    assert worktree["link.py"].text is None and "symbolic link" in worktree["link.py"].error


def test_sarif_fingerprints_tell_identical_lines_apart():
    def line(n: int, code: str, margin: float) -> ReviewedLine:
        return ReviewedLine(
            "a.py", n, code, margin, margin, None, "x", (4, 5), margin, None, None, None
        )

    lines = [line(9, "    x += 1", 9.0), line(3, "    x += 1", 8.0), line(5, "y = 2", 7.0)]
    review = Review("HEAD", "default", [], lines, 0.0, 3)
    results = sarif_document(review)["runs"][0]["results"]
    prints = {
        r["locations"][0]["physicalLocation"]["region"]["startLine"]: r["partialFingerprints"][
            "lossmapLine/v1"
        ]
        for r in results
    }
    # The first copy in the file keeps the plain print; later copies are numbered in line order.
    assert prints == {3: "a.py:x += 1", 9: "a.py:x += 1#2", 5: "a.py:y = 2"}

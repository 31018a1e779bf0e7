"""``lossmap report``: corpus tables, call classes, syntax errors, outputs, resumable cache."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lossmap import cli
from lossmap.analysis import analyze_text
from lossmap.report import runner
from lossmap.report.records import FileRecord, aggregate, file_record

APP = """import os


def helper(values):
    return len(values)


class Store:
    def path(self, name):
        return os.path.join("data", name)

    def size(self):
        return helper([1, 2]) + helper([])
"""
BROKEN = "def broken(x:\n    return x +\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "app.py").write_text(APP)
    (root / "broken.py").write_text(BROKEN)
    (root / "README.md").write_text("# Docs are prose\n")
    (root / "blob.py").write_bytes(b"\x00\x01binary")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("module.exports = 1;\n")
    return root


def test_calls_are_internal_builtin_or_external(tiny):
    record = file_record(analyze_text(tiny, APP, "app.py"), "app.py")
    named = {}
    for text, callee in zip(record.text, record.callee, strict=True):
        if callee:
            named.setdefault(callee, "")
            named[callee] += text
    assert named == {"len": "len", "join": "join", "helper": "helperhelper"}
    report = aggregate([FileRecord.from_json(record.to_json())])
    counts = {k: s.count for k, s in report.calls.items()}
    tokens_of = {name: sum(1 for c in record.callee if c == name) for name in named}
    assert counts == {
        "internal": tokens_of["helper"],  # defined in the corpus
        "builtin": tokens_of["len"],
        "external": tokens_of["join"],  # os.path.join: a library
    }
    assert {d["name"] for d in report.definitions} == {"helper", "Store", "path", "size"}


def test_syntax_errors_are_counted_apart(tiny):
    report = aggregate([file_record(analyze_text(tiny, BROKEN, "b.py"), "b.py")])
    assert report.syntax_errors["inside ERROR"].count > 0
    ok = aggregate([file_record(analyze_text(tiny, APP, "a.py"), "a.py")])
    assert ok.syntax_errors["inside ERROR"].count == 0


def test_report_command_outputs_and_resumes(corpus, tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = ["report", str(corpus), "--model", str(tiny_model_dir), "--device", "cpu"]
    argv += ["--out", str(out), "--min-count", "1"]
    assert cli.main(argv) == 1  # the binary file was skipped: said so, the rest reported
    captured = capsys.readouterr()
    assert "2 files (2 scored, 0 from the cache), 1 skipped" in captured.out
    assert "binary" in captured.err
    doc = json.loads((out / "report.json").read_text())
    assert doc["schema"] == "lossmap.report" and doc["version"] == 1
    assert sorted(Path(f["path"]).name for f in doc["files"]) == ["app.py", "broken.py"]
    assert doc["worst"]["labels"] and doc["best"]["node_types"]
    assert {r["key"] for r in doc["calls"]} == {"internal", "builtin", "external"}
    with open(out / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"key", "count", "mean", "std", "min", "max"}
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 6 and "<script" not in page and "http" not in page
    first = doc

    # Again: everything from the cache, the same numbers.
    assert cli.main(argv) == 1
    assert "2 files (0 scored, 2 from the cache)" in capsys.readouterr().out
    again = json.loads((out / "report.json").read_text())
    assert again["labels"] == first["labels"]

    # One file changed: only it is scored again.
    (corpus / "broken.py").write_text(BROKEN + "\nx = 1\n")
    assert cli.main(argv) == 1
    assert "2 files (1 scored, 1 from the cache)" in capsys.readouterr().out


def test_report_on_nothing_is_an_error(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("prose\n")
    assert cli.main(["report", str(tmp_path)]) == 1
    assert "no source files" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing")]) == 2


def test_an_unusable_out_folder_is_refused_before_any_model_loads(tmp_path, capsys):
    (tmp_path / "app.py").write_text(APP)
    taken = tmp_path / "taken"
    taken.write_text("")
    # "--model none" would fail to load (exit 3): exit 2 shows the folder is checked first.
    for out in (taken, taken / "sub"):
        assert cli.main(["report", str(tmp_path), "--out", str(out), "--model", "none"]) == 2
        err = capsys.readouterr().err
        assert "cannot write the report" in err and "not a directory" in err


def test_batched_scoring_equals_one_text_at_a_time(tiny):
    from lossmap.analysis.scoring.batch import score_texts
    from lossmap.analysis.scoring.document_scorer import score_text

    texts = [APP, BROKEN, APP * 3, "", "x = 1\n", "café = '😀'\n" * 9]
    batched = score_texts(tiny, texts, batch=3, window=48, min_context=12)
    for text, got in zip(texts, batched, strict=True):
        alone = score_text(tiny, text, window=48, min_context=12)
        assert [t.token_id for t in got.tokens] == [t.token_id for t in alone.tokens]
        for a, b in zip(got.tokens, alone.tokens, strict=True):
            assert (a.surprise is None) == (b.surprise is None)
            if a.scored:
                assert abs(a.surprise - b.surprise) < 1e-4 and a.rank == b.rank


def test_jobs_give_the_same_report(corpus, tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / "cache"))
    docs = []
    for jobs, cache in (("1", "c1"), ("3", "c3")):
        monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / cache))
        out = tmp_path / f"out{jobs}"
        argv = ["report", str(corpus), "--model", str(tiny_model_dir), "--device", "cpu"]
        cli.main([*argv, "--out", str(out), "--jobs", jobs])
        docs.append(json.loads((out / "report.json").read_text()))
    capsys.readouterr()
    one, three = ({r["key"]: r for r in d["labels"]} for d in docs)
    assert one.keys() == three.keys()
    for key, row in one.items():
        assert row["count"] == three[key]["count"]
        assert abs(row["mean"] - three[key]["mean"]) < 1e-3


def test_ray_engine_equals_the_local_run(corpus, tmp_path, tiny_model_dir, monkeypatch, capsys):
    pytest.importorskip("ray", reason="the test extra installs ray")
    docs = []
    for engine in ("local", "ray"):
        monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / f"cache-{engine}"))
        out = tmp_path / f"out-{engine}"
        argv = ["report", str(corpus), "--model", str(tiny_model_dir), "--device", "cpu"]
        assert cli.main([*argv, "--out", str(out), "--engine", engine, "--workers", "2"]) == 1
        docs.append(json.loads((out / "report.json").read_text()))
    assert "2 files (2 scored, 0 from the cache)" in capsys.readouterr().out
    local, ray = docs
    assert [f["path"] for f in local["files"]] == [f["path"] for f in ray["files"]]
    for table in ("labels", "node_types", "calls", "syntax_errors"):
        a, b = ({r["key"]: r for r in d[table]} for d in (local, ray))
        assert a.keys() == b.keys()
        for key in a:
            assert a[key]["count"] == b[key]["count"]
            assert abs(a[key]["mean"] - b[key]["mean"]) < 1e-3


def test_the_judge_confirms_the_corpus_lines_to_look_at(
    corpus, tmp_path, fim_model_dirs, monkeypatch, capsys
):
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / "cache"))
    live, twin, _ = (str(d) for d in fim_model_dirs)
    out = tmp_path / "out"
    argv = ["report", str(corpus), "--model", live, "--judge", twin, "--device", "cpu"]
    assert cli.main([*argv, "--out", str(out), "--confirm", "3"]) == 1
    capsys.readouterr()
    doc = json.loads((out / "report.json").read_text())
    assert doc["model"] == live and doc["judge"] == twin
    lines = doc["lines_to_look_at"]
    assert len(lines) == 3
    assert all(ln["two_sided_margin"] is not None for ln in lines)  # all confirmed
    assert [ln["margin"] for ln in lines] == sorted((ln["margin"] for ln in lines), reverse=True)
    with open(out / "lines_to_look_at.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], int(r["line"])) for r in rows] == [(ln["path"], ln["line"]) for ln in lines]
    assert "Lines to look at" in (out / "report.html").read_text()

    # --judge none: the same lines' candidates, causal only.
    assert cli.main([*argv[:5], "none", *argv[6:], "--out", str(out), "--confirm", "2"]) == 1
    doc = json.loads((out / "report.json").read_text())
    assert doc["judge"] is None and len(doc["lines_to_look_at"]) == 2
    assert all(ln["two_sided_margin"] is None for ln in doc["lines_to_look_at"])


def test_the_record_cache_is_keyed_by_lossmap_and_grammar_versions(monkeypatch):
    ident = runner.ModelIdentity("default", "/m", "torch.float32", None)
    before = ident.key()
    monkeypatch.setattr(runner, "__version__", "9.9.9")
    upgraded = ident.key()
    assert upgraded != before  # an upgrade of lossmap scores files again
    monkeypatch.setattr(runner.metadata, "version", lambda name: "0.0.0-other")
    assert ident.key() not in (before, upgraded)  # and so does one of the grammars

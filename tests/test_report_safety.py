"""What ``lossmap report`` and ``diff`` must never do with hostile file names and links: read
through symbolic links, write through them, score their own output, print raw terminal
escapes or write spreadsheet formulas. Real files, real git repositories, the tiny model."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from lossmap import cli
from lossmap.render.report import write_csv

CODE = "def add(a, b):\n    return a + b\n\n\nTOTAL = add(1, 2)\n"
SECRET = "def leaked_secret_function():\n    return 'hunter2'\n"
ESC_NAME = "a\x1b[31mred"  # a name that turns a terminal red when printed raw


@pytest.fixture
def report(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """``lossmap report PATHS --out OUT`` in-process with the tiny model: (code, out, err)."""
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / "cache"))

    def invoke(*paths: Path, out: Path) -> tuple[int, str, str]:
        argv = ["report", *map(str, paths), "--model", str(tiny_model_dir), "--device", "cpu"]
        code = cli.main([*argv, "--out", str(out), "--min-count", "1", "--confirm", "0"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def _outputs(out: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()) if p.is_file())


def test_symlinks_in_the_corpus_are_skipped_not_read(tmp_path, report):
    secrets = tmp_path / "home"
    (secrets / "lib").mkdir(parents=True)
    (secrets / "id_rsa.py").write_text(SECRET)
    (secrets / "lib" / "more.py").write_text(SECRET)
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(CODE)
    (code_dir / "x.py").symlink_to(secrets / "id_rsa.py")  # x.py -> ~/.ssh/id_rsa
    (code_dir / "lib").symlink_to(secrets / "lib", target_is_directory=True)
    out = tmp_path / "out"

    code, stdout, err = report(code_dir, out=out)
    assert code == 0, err  # skipped on purpose: not a failure to read
    assert "1 files (1 scored, 0 from the cache), 2 skipped" in stdout
    assert f"{code_dir / 'x.py'}: symbolic link, skipped" in err
    assert f"{code_dir / 'lib'}: symbolic link, skipped" in err
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [Path(f["path"]).name for f in doc["files"]] == ["app.py"]
    assert sorted(Path(s["path"]).name for s in doc["skipped"]) == ["lib", "x.py"]
    assert "leaked_secret" not in _outputs(out) and "hunter2" not in _outputs(out)

    # The same directory twice: each link is listed once, as each file is scored once.
    code, stdout, _ = report(code_dir, code_dir, out=out)
    assert code == 0 and "1 files (0 scored, 1 from the cache), 2 skipped" in stdout

    # Named on the command line, a link is the user's own choice: it is followed.
    code, stdout, _ = report(code_dir / "x.py", out=tmp_path / "out-named")
    assert code == 0 and "1 files" in stdout


def test_links_in_the_output_directory_are_replaced_not_written_through(tmp_path, report):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(CODE)
    out = tmp_path / "out"
    out.mkdir()
    victims = {}
    for name in ("report.html", "report.json", "labels.csv"):
        victim = tmp_path / f"victim-{name}"
        victim.write_text("precious\n")
        (out / name).symlink_to(victim)
        victims[name] = victim

    code, _, err = report(code_dir, out=out)
    assert code == 0, err
    for name, victim in victims.items():
        assert victim.read_text() == "precious\n"  # untouched
        assert not (out / name).is_symlink() and (out / name).is_file()
    assert "<svg" in (out / "report.html").read_text(encoding="utf-8")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary left


def test_a_directory_where_a_report_file_goes_is_a_clear_error(tmp_path, report):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(CODE)
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)
    code, _, err = report(code_dir, out=out)
    assert code == 2 and err.count("\n") == 1
    assert f"cannot write the report: {out / 'report.html'}: " in err
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_second_run_does_not_score_its_own_report_or_cache(tmp_path, report, monkeypatch):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(CODE)
    # The output and the record cache inside the corpus: report.json and the cached records
    # are JSON, a language with a grammar.
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(code_dir / "lossmap-cache"))
    out = code_dir / "lossmap-report"
    first = report(code_dir, out=out)
    second = report(code_dir, out=out)
    assert first[0] == second[0] == 0
    assert "1 files (1 scored, 0 from the cache), 0 skipped" in first[1]
    assert "1 files (0 scored, 1 from the cache), 0 skipped" in second[1]
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [Path(f["path"]).name for f in doc["files"]] == ["app.py"]


def test_a_linked_cache_record_is_not_read(tmp_path, report, monkeypatch):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(CODE)
    report(code_dir, out=tmp_path / "out")
    (record,) = (tmp_path / "cache" / "report").glob("*/*.json")
    real = tmp_path / "elsewhere.json"
    real.write_bytes(record.read_bytes())
    record.unlink()
    record.symlink_to(real)  # a record that is a link: scored again, the link replaced
    code, stdout, _ = report(code_dir, out=tmp_path / "out")
    assert code == 0 and "1 files (1 scored, 0 from the cache)" in stdout
    assert not record.is_symlink()


def test_file_names_reach_the_terminal_escaped(tmp_path, report):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(CODE)
    (code_dir / f"{ESC_NAME}.py").write_bytes(b"\x00\x01binary")
    out = tmp_path / f"out{ESC_NAME}"
    code, stdout, err = report(code_dir, out=out)
    assert code == 1  # the binary file could not be read
    assert "\x1b" not in err and "\x1b" not in stdout
    assert "a\\x1b[31mred.py: looks like a binary file" in err
    assert "out" + "a\\x1b[31mred" in stdout
    # The JSON keeps the real name: it escapes it itself.
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert doc["skipped"][0]["path"] == str(code_dir / f"{ESC_NAME}.py")

    code, _, err = report(code_dir / f"missing{ESC_NAME}.py", out=out)
    assert code == 2 and "\x1b" not in err and "missinga\\x1b[31mred.py" in err


def test_diff_skip_messages_escape_file_names(tmp_path, monkeypatch, capsys):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    blob = tmp_path / f"{ESC_NAME}.bin"
    blob.write_bytes(b"\x00\x01")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    blob.write_bytes(b"\x00\x02")

    def no_model(args, progress):
        raise AssertionError("nothing to score: the model must not load")

    monkeypatch.setattr(cli, "_load", no_model)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["diff", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err
    assert "lossmap: skipped a\\x1b[31mred.bin: binary file, skipped" in captured.err


def test_terminal_safe_escapes_controls_and_keeps_the_rest():
    assert cli.terminal_safe("src/café/π.py") == "src/café/π.py"
    assert cli.terminal_safe("C:\\code\\a b.py") == "C:\\code\\a b.py"  # no doubled backslashes
    hostile = "a\x1b]0;title\x07\n\r\t\x7f\x9b\u202e\udcff.py"
    assert cli.terminal_safe(hostile) == "a\\x1b]0;title\\x07\\n\\r\\t\\x7f\\x9b\\u202e\\udcff.py"
    # Progress lines name files too.
    seen = []
    cli._per_file(lambda *step: seen.append(step))(f"{ESC_NAME}.py")("scoring", 1, 2)
    assert seen == [("a\\x1b[31mred.py: scoring", 1, 2)]


def test_csv_text_cells_cannot_start_a_formula(tmp_path):
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain"]
    rows = [{"key": k, "count": -3, "mean": -1.5} for k in hostile]
    doc = {name: [] for name in ("labels", "node_types", "syntax_errors", "calls", "files")}
    doc.update(bpe_tokens=rows, definitions=[], lines_to_look_at=[])
    write_csv(doc, tmp_path)
    with open(tmp_path / "bpe_tokens.csv", newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert [r["key"] for r in got] == ["'" + k for k in hostile[:-1]] + ["plain"]
    # Numbers stay numbers, negative ones included.
    assert {(r["count"], r["mean"]) for r in got} == {("-3", "-1.5")}

"""The command line, driven in-process with a tiny model directory and real files."""

from __future__ import annotations

import json

import jsonschema
import pytest

from lossmap.analysis.models import offline as offline_models
from lossmap.analysis.models.offline import OfflineModel
from lossmap.cli import EXIT_INPUT, EXIT_MODEL, main
from lossmap.render.scan_json import SCHEMA_VERSION, json_schema

SOURCE = "def área(r):\n    # π r²\n    return 3.14 * r * r\n"


@pytest.fixture
def py_file(tmp_path):
    path = tmp_path / "circle.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_json_matches_the_schema(capsys, py_file, tiny_model_dir):
    code, out, err = run(capsys, "scan", str(py_file), "--model", str(tiny_model_dir), "--json")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, json_schema())
    assert doc["schema"] == "lossmap.scan" and doc["schema_version"] == SCHEMA_VERSION
    (f,) = doc["files"]
    assert f["language"] == "python"
    assert "".join(t["text"] for t in f["tokens"]) == SOURCE
    assert [ln["line"] for ln in f["lines"]] == [1, 2, 3, 4]
    assert f["definitions"][0]["name"] == "área"
    assert f["definitions"][0]["kind"] == "function"
    comment = [t for t in f["tokens"] if "π" in t["text"]]
    assert comment and all(t["kind"] == "prose" for t in comment)
    # Line 2 is only a comment and line 4 is empty: neither can be a surprising line.
    # Line 1 is all within the file's first 16 tokens, which count in no verdict.
    assert sorted(f["top_lines"]) == [3]


def test_scan_json_in_nats_scales_surprise(capsys, py_file, tiny_model_dir):
    _, bits, _ = run(capsys, "scan", str(py_file), "--model", str(tiny_model_dir), "--json")
    _, nats, _ = run(
        capsys, "scan", str(py_file), "--model", str(tiny_model_dir), "--json", "--nats"
    )
    b, n = json.loads(bits)["files"][0], json.loads(nats)["files"][0]
    assert json.loads(nats)["unit"] == "nats"
    assert n["tokens"][3]["surprise"] == pytest.approx(b["tokens"][3]["surprise"] * 0.693147, 1e-4)


def test_scan_terminal_output_lists_top_lines(capsys, py_file, tiny_model_dir):
    code, out, _ = run(capsys, "scan", str(py_file), "--model", str(tiny_model_dir), "--top", "2")
    assert code == 0
    assert "most surprising lines" in out and "return 3.14" in out


def test_scan_says_why_a_short_file_has_no_lines_to_rank(capsys, tmp_path, tiny_model_dir):
    path = tmp_path / "short.py"
    path.write_text("x = 1\n", encoding="utf-8")
    code, out, _ = run(capsys, "scan", str(path), "--model", str(tiny_model_dir))
    assert code == 0
    assert "the first 16 tokens of a file are not ranked" in " ".join(out.split())


def test_scan_shows_a_lone_cr_file_line_by_line(capsys, tmp_path, tiny_model_dir):
    path = tmp_path / "old_mac.py"
    path.write_bytes(b"a = 1\rb = 2\rc = a + b\r")
    code, out, _ = run(capsys, "scan", str(path), "--model", str(tiny_model_dir), "--json")
    assert code == 0
    assert [ln["line"] for ln in json.loads(out)["files"][0]["lines"]] == [1, 2, 3, 4]
    code, out, _ = run(capsys, "scan", str(path), "--model", str(tiny_model_dir))
    gutter = [line.split("│")[0].strip() for line in out.splitlines() if "│" in line]
    assert gutter[:3] == ["1", "2", "3"] and "\r" not in out


def test_scan_reads_stdin(capsys, monkeypatch, tiny_model_dir):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SOURCE.encode())))
    code, out, _ = run(
        capsys, "scan", "-", "--lang", "python", "--model", str(tiny_model_dir), "--json"
    )
    assert code == 0
    f = json.loads(out)["files"][0]
    assert f["path"] == "<stdin>" and f["language"] == "python"
    assert not any("without syntax" in n for n in f["notes"])


def test_without_a_language_a_shebang_names_it_or_a_note_says_so(capsys, tmp_path, tiny_model_dir):
    script = tmp_path / "deploy"
    script.write_text("#!/usr/bin/env python3\n" + SOURCE, encoding="utf-8")
    plain = tmp_path / "deploy.unknownext"
    plain.write_text(SOURCE, encoding="utf-8")
    code, out, _ = run(
        capsys, "scan", str(script), str(plain), "--model", str(tiny_model_dir), "--json"
    )
    assert code == 0
    found, unknown = json.loads(out)["files"]
    assert found["language"] == "python"
    assert not any("without syntax" in n for n in found["notes"])
    assert unknown["language"] is None
    assert any("scored without syntax" in n for n in unknown["notes"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"\x7fELF\x02\x01\x00\x00binary", "binary file"),
        (b"x = '\xff\xfe'\n", "not valid UTF-8 (byte 0xff at offset 5, line 1)"),
        ("x = 'é'\n".encode("utf-16"), "UTF-16LE text, and lossmap reads UTF-8"),
        ("x = 'é'\n".encode("utf-16-be"), "UTF-16BE text"),
        ("x = 1\n".encode("utf-32"), "UTF-32LE text"),
    ],
)
def test_bad_input_gets_one_line_error_and_others_still_scanned(
    capsys, tmp_path, py_file, tiny_model_dir, content, message
):
    bad = tmp_path / "bad.py"
    if content is not None:
        bad.write_bytes(content)
    code, out, err = run(
        capsys, "scan", str(bad), str(py_file), "--model", str(tiny_model_dir), "--json"
    )
    assert code == EXIT_INPUT
    assert message in err and err.count("\n") == 1
    doc = json.loads(out)
    assert [f["path"] for f in doc["files"]] == [str(py_file)]
    assert doc["errors"][0]["path"] == str(bad)


@pytest.mark.parametrize("command", ["scan", "diff"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "high"])
def test_a_threshold_must_be_a_finite_number_of_bits(capsys, py_file, command, value):
    argv = [command, str(py_file)] if command == "scan" else [command]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, f"--threshold={value}"])
    assert exit_.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_unknown_model_spec(capsys, py_file):
    code, _, err = run(capsys, "scan", str(py_file), "--model", "no-such-model")
    assert code == EXIT_MODEL
    assert "unknown model spec 'no-such-model'" in err


def test_failed_model_load_is_reported(capsys, tmp_path, py_file):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    code, _, err = run(capsys, "scan", str(py_file), "--model", str(broken))
    assert code == EXIT_MODEL
    assert err.startswith("lossmap: error: cannot load model") and err.count("\n") == 1


def _fake_parts(tmp_path, monkeypatch, contents: list[bytes]) -> tuple[str, ...]:
    names = []
    for i, data in enumerate(contents, start=1):
        pkg = tmp_path / "site" / f"lossmap_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        names.append(pkg.name)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return tuple(names)


def test_checksum_mismatch_is_refused_and_leaves_nothing(capsys, tmp_path, monkeypatch, py_file):
    import hashlib

    parts = _fake_parts(tmp_path, monkeypatch, [b"GGUF-part-one", b"-part-two"])
    good = hashlib.sha256(b"GGUF-part-one-part-two").hexdigest()
    fake = OfflineModel("fake", "a fake model", "fake", parts, 22, "0" * 64)
    monkeypatch.setitem(offline_models.OFFLINE_MODELS, "fake", fake)
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run(capsys, "scan", str(py_file), "--model", "fake")
    assert code == EXIT_MODEL
    assert "model 'fake' failed verification" in err and good in err
    assert not any((tmp_path / "cache" / "models").iterdir())  # no half-written directory

    target = tmp_path / "assembled.gguf"
    OfflineModel("fake", "", "fake", parts, 22, good).assemble(target)
    assert target.read_bytes() == b"GGUF-part-one-part-two"


def test_missing_model_packages_say_how_to_install(capsys, monkeypatch, py_file):
    fake = OfflineModel("fake", "", "model", ("lossmap_not_installed_part1",), 1, "0" * 64)
    monkeypatch.setitem(offline_models.OFFLINE_MODELS, "fake", fake)
    code, out, err = run(capsys, "model", "--model", "fake")
    assert code == 0 and "installed: no" in out
    code, _, err = run(capsys, "model", "--model", "fake", "--prepare")
    assert code == EXIT_MODEL and "pip install 'lossmap[model]'" in err


def test_model_command_shows_a_directory_model(capsys, tiny_model_dir):
    code, out, _ = run(capsys, "model", "--model", str(tiny_model_dir))
    assert code == 0
    assert "(directory)" in out and "prepared:  yes" in out


def test_started_by_hand_it_says_what_it_is_and_ctrl_c_stops_it(tmp_path):
    import json
    import os
    import pty
    import signal
    import subprocess
    import sys
    import tty

    controller, terminal = pty.openpty()  # stdin is a terminal, as when typed at a prompt
    env = {**os.environ, "LOSSMAP_MODEL": str(tmp_path / "no-model")}  # none is needed
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossmap", "serve"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        line = proc.stderr.readline().decode()
        assert "language server speaking LSP" in line
        # Signal it only once it serves (an initialize answered): before that, Ctrl-C ends
        # the command line, not the server.
        tty.setraw(terminal)
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
        )
        os.write(controller, f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
        answer = b""
        while b'"id": 1' not in answer:  # the body ends without a newline: no readline
            chunk = proc.stdout.read1(65536)
            assert chunk, "the server closed stdout without answering"
            answer += chunk
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130  # it hung in pygls's shutdown before
    finally:
        proc.kill()
        proc.communicate()
        os.close(controller)
        os.close(terminal)

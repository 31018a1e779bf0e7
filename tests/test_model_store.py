"""Model specs, GGUF conversion into the cache, and safety against interrupted conversion."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lossmap.analysis import load_model, score_text
from lossmap.analysis.errors import ModelLoadError, ModelSpecError
from lossmap.analysis.models import store as model_store
from lossmap.analysis.models.spec import parse_model_spec

from tiny_gguf import write_tiny_gguf


@pytest.fixture
def tiny_gguf(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / "cache"))
    return write_tiny_gguf(tiny_model_dir, tmp_path / "tiny-q.gguf")


def test_gguf_file_is_converted_once_and_scores_like_its_source(tiny_gguf, tiny):
    stages = []
    converted = load_model(
        str(tiny_gguf), device="cpu", progress=lambda d, c, t: stages.append(d), runtime="float32"
    )
    assert "dequantizing GGUF weights" in stages
    assert converted.path.startswith(str(tiny_gguf.parent / "cache" / "models"))
    text = "for i in range(10):\n    print(i)\n"
    a, b = score_text(tiny, text), score_text(converted, text)
    assert [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
    assert max(abs(x.surprise - y.surprise) for x, y in zip(a.tokens, b.tokens, strict=True)) < 1e-4

    stages.clear()
    again = load_model(str(tiny_gguf), device="cpu", progress=lambda d, c, t: stages.append(d))
    assert again.path == converted.path
    assert "dequantizing GGUF weights" not in stages  # served from the cache


def test_interrupted_conversion_leaves_nothing_behind(tiny_gguf, monkeypatch):
    real_convert = model_store._convert_gguf

    def interrupted(gguf, out_dir, progress):
        (out_dir / "model.safetensors").write_bytes(b"half-written")
        raise KeyboardInterrupt

    monkeypatch.setattr(model_store, "_convert_gguf", interrupted)
    spec = parse_model_spec(str(tiny_gguf))
    with pytest.raises(KeyboardInterrupt):
        model_store.prepare(spec)
    models = tiny_gguf.parent / "cache" / "models"
    assert list(models.iterdir()) == []
    assert not model_store.locate(spec).prepared

    monkeypatch.setattr(model_store, "_convert_gguf", real_convert)
    model_store.prepare(spec)
    assert model_store.locate(spec).prepared


def test_threads_preparing_one_gguf_convert_it_once(tiny_gguf, monkeypatch):
    # A settings change in the server during a conversion starts a second preparation of the
    # same model: it must wait for the first and load its result, not convert again.
    real_convert = model_store._convert_gguf
    calls = []
    converting, second_waits = threading.Event(), threading.Event()

    def counting(gguf, out_dir, progress):
        calls.append(out_dir)
        converting.set()
        if len(calls) == 1:  # keep the first conversion going until the second has queued
            second_waits.wait(timeout=10)
        real_convert(gguf, out_dir, progress)

    monkeypatch.setattr(model_store, "_convert_gguf", counting)
    spec = parse_model_spec(str(tiny_gguf))
    results, errors, seen = {}, [], {"first": [], "second": []}

    def run(who):
        def progress(description, done, total):
            seen[who].append(description)
            if description.startswith("waiting for"):
                second_waits.set()

        try:
            results[who] = model_store.prepare(spec, progress)
        except BaseException as err:
            errors.append(err)

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert converting.wait(timeout=60)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    first.join(timeout=120)
    second.join(timeout=120)
    assert errors == []
    assert len(calls) == 1
    target = Path(model_store.locate(spec).path)
    assert results == {"first": target, "second": target}
    assert f"waiting for another preparation of {tiny_gguf} in this process" in seen["second"]
    assert "dequantizing GGUF weights" in seen["first"]
    assert "dequantizing GGUF weights" not in seen["second"]
    assert model_store.locate(spec).prepared
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary dirs


def test_overlapping_conversions_of_two_models_restore_transformers_tqdm(tiny_gguf, tiny_model_dir):
    # Two different models convert at once in threads; the one that started first finishes
    # first. transformers' tqdm must be its own again afterwards.
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = gguf_utils.tqdm
    other = write_tiny_gguf(tiny_model_dir, tiny_gguf.parent / "other-q.gguf")
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    tensors = {"a": [], "b": []}
    errors = []

    def progress_a(description, done, total):
        if description == "dequantizing GGUF weights":
            tensors["a"].append(done)
            if done == 0:
                a_in.set()
                b_in.wait(timeout=30)  # B is converting too before A goes on

    def progress_b(description, done, total):
        if description == "dequantizing GGUF weights":
            tensors["b"].append(done)
            b_in.set()
            if done == total - 1:
                a_done.wait(timeout=30)  # B finishes last

    def run(path, progress, done_event=None):
        try:
            model_store.prepare(parse_model_spec(str(path)), progress)
        except BaseException as err:
            errors.append(err)
        if done_event is not None:
            done_event.set()

    a = threading.Thread(target=run, args=(tiny_gguf, progress_a, a_done))
    b = threading.Thread(target=run, args=(other, progress_b))
    a.start()
    assert a_in.wait(timeout=60)
    b.start()
    a.join(timeout=120)
    b.join(timeout=120)
    assert errors == []
    assert tensors["a"] == tensors["b"] == list(range(len(tensors["a"])))
    assert gguf_utils.tqdm is original


# Prepares the GGUF argv[1]; the conversion starts once the file argv[3] exists (or never,
# with argv[4] == "hang"), after creating argv[2] with the lock held.
_CHILD = """
import sys, time
from pathlib import Path
from lossmap.analysis.models import store as model_store
from lossmap.analysis.models.spec import parse_model_spec

gguf, started, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
real_convert = model_store._convert_gguf

def held(gguf, out_dir, progress):
    started.touch()
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline or sys.argv[4:] == ["hang"]:
        time.sleep(0.05)
    print("converting", flush=True)
    real_convert(gguf, out_dir, progress)

model_store._convert_gguf = held
print(model_store.prepare(parse_model_spec(gguf)), flush=True)
"""


def _start_child(tiny_gguf, *mode):
    """A process preparing ``tiny_gguf`` (same cache: LOSSMAP_CACHE_DIR is inherited),
    returned once its conversion is under way and holds the lock."""
    started, go = tiny_gguf.parent / "started", tiny_gguf.parent / "go"
    args = [sys.executable, "-c", _CHILD, str(tiny_gguf), str(started), str(go), *mode]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not started.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"the child did not start converting: {child.communicate()}")
        time.sleep(0.05)
    return child, go


def test_a_second_process_waits_for_the_first_and_loads_its_result(tiny_gguf, monkeypatch):
    # An editor and `lossmap scan` preparing the same model: one converts, one waits.
    child, go = _start_child(tiny_gguf)
    try:
        calls, seen = [], []
        real_convert = model_store._convert_gguf

        def counting(gguf, out_dir, progress):
            calls.append(out_dir)
            real_convert(gguf, out_dir, progress)

        def progress(description, done, total):
            seen.append(description)
            if description.startswith("waiting for another lossmap process"):
                go.touch()  # the child converts only once this process waits

        monkeypatch.setattr(model_store, "_convert_gguf", counting)
        spec = parse_model_spec(str(tiny_gguf))
        path = model_store.prepare(spec, progress)
        out, err = child.communicate(timeout=120)
    finally:
        go.touch()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out.splitlines() == ["converting", str(path)]
    assert calls == []  # loaded the child's conversion
    assert f"waiting for another lossmap process preparing {tiny_gguf}" in seen
    assert model_store.locate(spec).prepared


def test_a_killed_preparation_neither_blocks_nor_leaves_its_files(tiny_gguf):
    # The editor closed during a conversion: the OS frees its lock, and the next preparation
    # removes its half-written temporary directory.
    child, _ = _start_child(tiny_gguf, "hang")
    models = tiny_gguf.parent / "cache" / "models"
    assert [p.name for p in models.iterdir() if ".tmp-" in p.name]
    child.kill()
    child.wait()
    spec = parse_model_spec(str(tiny_gguf))
    done = []
    worker = threading.Thread(target=lambda: done.append(model_store.prepare(spec)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert done, "blocked by the lock of a dead process"
    assert [p.name for p in models.iterdir()] == [Path(done[0]).name]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_a_symlink_where_the_lock_goes_is_not_followed(tiny_gguf, tmp_path):
    spec = parse_model_spec(str(tiny_gguf))
    target = Path(model_store.locate(spec).path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    locks = tmp_path / "cache" / "locks"
    locks.mkdir(parents=True)
    (locks / f"{target.name}.lock").symlink_to(elsewhere / "planted")
    with pytest.raises(ModelLoadError, match="refusing to follow the symbolic link"):
        model_store.prepare(spec)
    assert not (elsewhere / "planted").exists()

    (locks / f"{target.name}.lock").unlink()
    locks.rmdir()
    locks.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ModelLoadError, match="refusing to follow the symbolic link"):
        model_store.prepare(spec)
    assert list(elsewhere.iterdir()) == []
    assert not model_store.locate(spec).prepared


def test_model_specs(tmp_path):
    assert parse_model_spec("default").kind == "offline"
    assert parse_model_spec("Qwen/Qwen2.5-Coder-1.5B").kind == "hub"
    with pytest.raises(ModelSpecError, match="no such GGUF file"):
        parse_model_spec(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelSpecError, match="no config.json"):
        parse_model_spec(str(tmp_path))
    with pytest.raises(ModelSpecError, match="unknown model spec"):
        parse_model_spec("not a model")

"""Model specs, GGUF conversion into the cache, and safety against interrupted conversion."""

from __future__ import annotations

import pytest

from lossmap.analysis import load_model, model_store, score_text
from lossmap.analysis.errors import ModelSpecError
from lossmap.analysis.model_spec import parse_model_spec

from tiny_gguf import write_tiny_gguf


@pytest.fixture
def tiny_gguf(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LOSSMAP_CACHE_DIR", str(tmp_path / "cache"))
    return write_tiny_gguf(tiny_model_dir, tmp_path / "tiny-q.gguf")


def test_gguf_file_is_converted_once_and_scores_like_its_source(tiny_gguf, tiny):
    stages = []
    converted = load_model(str(tiny_gguf), device="cpu", progress=lambda d, c, t: stages.append(d))
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


def test_model_specs(tmp_path):
    assert parse_model_spec("default").kind == "offline"
    assert parse_model_spec("Qwen/Qwen2.5-Coder-1.5B").kind == "hub"
    with pytest.raises(ModelSpecError, match="no such GGUF file"):
        parse_model_spec(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelSpecError, match="no config.json"):
        parse_model_spec(str(tmp_path))
    with pytest.raises(ModelSpecError, match="unknown model spec"):
        parse_model_spec("not a model")

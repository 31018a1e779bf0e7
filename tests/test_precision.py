"""CPU precision: bfloat16 matmuls beside a float32 residual stream (models/precision.py)."""

from __future__ import annotations

import pytest
import torch

from lossmap.analysis import load_model
from lossmap.analysis.errors import ModelLoadError
from lossmap.analysis.models.precision import (
    FLOAT32,
    MIXED,
    BFloat16Linear,
    cpu_precision,
    use_bfloat16_matmuls,
)


def test_the_setting_decides_and_a_bad_one_is_named(monkeypatch):
    monkeypatch.setenv("LOSSMAP_CPU_MATMUL", "float32")
    assert cpu_precision() == FLOAT32
    monkeypatch.setenv("LOSSMAP_CPU_MATMUL", "bfloat16")
    assert cpu_precision() == MIXED
    monkeypatch.setenv("LOSSMAP_CPU_MATMUL", "int4")
    with pytest.raises(ModelLoadError, match="LOSSMAP_CPU_MATMUL='int4'"):
        cpu_precision()


def test_mixed_model_keeps_head_and_stream_in_float32_and_stays_close(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LOSSMAP_CPU_MATMUL", "bfloat16")
    exact = load_model(str(tiny_model_dir), device="cpu")  # a live model: never mixed
    mixed = load_model(str(tiny_model_dir), device="cpu", mixed_ok=True)  # a judge
    assert (exact.precision, mixed.precision) == (FLOAT32, MIXED)
    monkeypatch.setenv("LOSSMAP_CPU_MATMUL", "float32")
    assert load_model(str(tiny_model_dir), device="cpu", mixed_ok=True).precision == FLOAT32
    linears = [m for m in mixed.model.modules() if isinstance(m, BFloat16Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert type(mixed.model.get_output_embeddings()) is torch.nn.Linear
    assert mixed.model.get_output_embeddings().weight.dtype == torch.float32
    ids = torch.tensor([list(range(5, 45))])
    with torch.inference_mode():
        a = exact.model(input_ids=ids).logits.log_softmax(-1)
        b = mixed.model(input_ids=ids).logits
    assert b.dtype == torch.float32
    # bfloat16 inputs keep 8 bits of mantissa: close, not equal.
    diff = (a - b.log_softmax(-1)).abs()
    assert 0 < float(diff.max()) < 0.05


def test_replacement_counts_only_plain_linear_layers():
    class Sub(torch.nn.Linear):
        pass

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), Sub(4, 4), torch.nn.Linear(4, 2))
    assert use_bfloat16_matmuls(model) == 2
    assert isinstance(model[0], BFloat16Linear) and type(model[1]) is Sub
    x = torch.randn(3, 4)
    assert model(x).dtype == torch.float32

"""Which arithmetic a model runs in on a CPU: float32, or float32 with bfloat16 matmuls.

CPUs with bfloat16 matrix units (Intel AMX) multiply bfloat16 matrices about 6x faster than
float32 ones, but a model run wholly in bfloat16 moves per-token surprise by 1.6 bits at p99
(measured on a 4,400-token module with the 0.5B model). Keeping the residual stream, norms,
attention and the LM head in float32 and only the linear layers' weights and inputs in
bfloat16 (float32 accumulation and output) keeps p99 at 0.14 bits and runs the 1.5B judge
about 2.2x faster (benchmarks/RESULTS.md). CPUs without such units keep float32: emulated
bfloat16 is slower than float32 there.

Only the judge runs mixed. A row's numbers then depend slightly on how many rows a pass
holds (0.03 bits between a cached and a fresh prompt), and the live model's incremental
re-scoring must equal a full re-score; the judge's verdicts never meet another pass's.

``LOSSMAP_CPU_MATMUL`` (``auto``, ``float32`` or ``bfloat16``) overrides the choice.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ModelLoadError

#: How a CPU model's arithmetic is described (reports, ``lossmap model``, record caches).
FLOAT32 = "float32"
MIXED = "float32 + bfloat16 matmuls"
_ENV = "LOSSMAP_CPU_MATMUL"


@functools.cache
def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU reports bfloat16 matrix units (Linux's ``amx_bf16`` flag)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(
        line.startswith("flags") and "amx_bf16" in line.split() for line in info.splitlines()
    )


def cpu_precision() -> str:
    """The precision CPU models run in: :data:`MIXED` on CPUs with bfloat16 matrix units
    (or when ``LOSSMAP_CPU_MATMUL=bfloat16``), else :data:`FLOAT32`."""
    choice = os.environ.get(_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "float32", "bfloat16"):
        raise ModelLoadError(f"{_ENV}={choice!r}: use auto, float32 or bfloat16")
    if choice == "auto":
        return MIXED if cpu_has_bf16_matrix_units() else FLOAT32
    return MIXED if choice == "bfloat16" else FLOAT32


def precision_of(device: torch.device, dtype: torch.dtype, mixed_ok: bool = False) -> str:
    """How a model loaded on ``device`` in ``dtype`` (see ``devices.pick_device``) computes;
    ``mixed_ok``: it may run :data:`MIXED` (the judge)."""
    if mixed_ok and device.type == "cpu" and dtype == torch.float32:
        return cpu_precision()
    return str(dtype).removeprefix("torch.")


class BFloat16Linear(torch.nn.Module):
    """A linear layer with bfloat16 weights that takes and returns float32: the input is
    rounded to bfloat16, the product accumulated and returned in float32."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().to(torch.bfloat16)
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self.bias = None if bias is None else torch.nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x.to(torch.bfloat16), self.weight).float()
        return y if self.bias is None else y + self.bias


def use_bfloat16_matmuls(model: torch.nn.Module) -> int:
    """Replace ``model``'s linear layers (not the output head, whose logits the statistics
    need in float32) by :class:`BFloat16Linear`, in place; returns how many were replaced."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            # Exact type: subclasses (quantised or LoRA layers) keep their own forward.
            if type(child) is torch.nn.Linear and child is not head:
                setattr(parent, name, BFloat16Linear(child))
                replaced += 1
    return replaced

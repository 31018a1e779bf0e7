"""Which arithmetic a model runs in on a CPU (its runtime): float32, or float32 with
bfloat16 matmuls.

CPUs with bfloat16 matrix units (Intel AMX) multiply bfloat16 matrices about 4-5x faster than
float32 ones, but a model run wholly in bfloat16 moves per-token surprise by 1.6 bits at p99
(measured on a 4,400-token module with the 0.5B model). Keeping the residual stream, norms,
attention and the LM head in float32 and only the linear layers' weights and inputs in
bfloat16 (float32 accumulation) keeps p99 near 0.15 bits and runs both models about twice as
fast (benchmarks/RESULTS.md, bench_runtime.py). CPUs without such units keep float32:
emulated bfloat16 is slower than float32 there.

Both roles run mixed under ``auto``. The live model's passes are row-exact
(:mod:`row_exact`): its incremental re-scoring equals a full re-score, as in float32.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .row_exact import RowBlocks, matmul, use_exact_attention
from .runtime import AUTO, BFLOAT16_MATMULS, check_runtime

#: How a CPU model's arithmetic is described (reports, ``lossmap model``, record caches).
FLOAT32 = "float32"
MIXED = "float32 + bfloat16 matmuls"


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


def cpu_precision(runtime: str = AUTO) -> str:
    """The precision CPU models run in: :data:`MIXED` on CPUs with bfloat16 matrix units
    (``auto``) or when asked for (``bfloat16-matmuls``), else :data:`FLOAT32`."""
    name = check_runtime(runtime)
    if name == AUTO:
        return MIXED if cpu_has_bf16_matrix_units() else FLOAT32
    return MIXED if name == BFLOAT16_MATMULS else FLOAT32


def precision_of(device: torch.device, dtype: torch.dtype, runtime: str = AUTO) -> str:
    """How a model loaded on ``device`` in ``dtype`` (see ``devices.pick_device``) computes
    under ``runtime`` (which only chooses on a CPU)."""
    name = check_runtime(runtime)  # a bad setting fails on every device
    if device.type == "cpu" and dtype == torch.float32:
        return cpu_precision(name)
    return str(dtype).removeprefix("torch.")


class BFloat16Linear(torch.nn.Module):
    """A linear layer with bfloat16 weights that takes and returns float32: the input is
    rounded to bfloat16, the product accumulated in float32 and rounded to bfloat16 (the
    kernel's output type), the bias added in float32."""

    def __init__(self, linear: torch.nn.Linear, blocks: RowBlocks | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().to(torch.bfloat16)
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self.bias = None if bias is None else torch.nn.Parameter(bias, requires_grad=False)
        self.blocks = blocks or RowBlocks()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = matmul(x.to(torch.bfloat16), self.weight, self.blocks.size).float()
        return y if self.bias is None else y.add_(self.bias)


class BFloat16GatedMLP(torch.nn.Module):
    """A gated MLP, ``down(act(gate(x)) * up(x))`` (Llama, Qwen, Mistral...), with bfloat16
    matmuls: the gate and up projections fused into one, the activation and product computed
    in float32 from their bfloat16 products and rounded once, in row chunks that stay in the
    CPU's cache (the intermediate is 5-6x the hidden size: converting it whole cost more than
    the matmuls saved), the down projection's output returned in float32."""

    def __init__(self, mlp: torch.nn.Module, blocks: RowBlocks) -> None:
        super().__init__()
        gate, up, down = mlp.gate_proj, mlp.up_proj, mlp.down_proj
        self.intermediate = gate.out_features
        fused = torch.cat([gate.weight.detach(), up.weight.detach()]).to(torch.bfloat16)
        self.gate_up = torch.nn.Parameter(fused, requires_grad=False)
        self.down = torch.nn.Parameter(down.weight.detach().to(torch.bfloat16), requires_grad=False)
        self.act_fn = mlp.act_fn
        self.blocks = blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.blocks.size
        gate_up = matmul(x.to(torch.bfloat16), self.gate_up, size)
        rows = gate_up.reshape(-1, gate_up.shape[-1])
        hidden = rows.new_empty(rows.shape[0], self.intermediate)
        n = self.intermediate
        for i in range(0, rows.shape[0], _ELEMENTWISE_ROWS):
            part = rows[i : i + _ELEMENTWISE_ROWS].float()
            hidden[i : i + _ELEMENTWISE_ROWS] = self.act_fn(part[:, :n]) * part[:, n:]
        hidden = hidden.reshape(*gate_up.shape[:-1], n)
        return matmul(hidden, self.down, size).float()


#: Rows per float32 step of the MLP's activation (a few MB: in the CPU's cache).
_ELEMENTWISE_ROWS = 32


def _gated_mlp(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a bias-free gated MLP that :class:`BFloat16GatedMLP` replaces."""
    parts = [getattr(module, name, None) for name in ("gate_proj", "up_proj", "down_proj")]
    return (
        all(type(p) is torch.nn.Linear and p.bias is None for p in parts)
        and hasattr(module, "act_fn")
        and parts[0].out_features == parts[1].out_features
    )


def use_bfloat16_matmuls(model: torch.nn.Module) -> RowBlocks:
    """Replace ``model``'s gated MLPs by :class:`BFloat16GatedMLP` and its other linear
    layers (not the output head, whose logits the statistics need in float32) by
    :class:`BFloat16Linear`, in place; returns the :class:`RowBlocks` they share (for
    ``row_exact.exact_rows``)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    blocks = RowBlocks()
    use_exact_attention(model, blocks)

    def replace_in(parent: torch.nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if _gated_mlp(child):
                setattr(parent, name, BFloat16GatedMLP(child, blocks))
            # Exact type: subclasses (quantised or LoRA layers) keep their own forward.
            elif type(child) is torch.nn.Linear and child is not head:
                setattr(parent, name, BFloat16Linear(child, blocks))
            else:
                replace_in(child)

    replace_in(model)
    return blocks

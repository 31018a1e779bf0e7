"""Passes whose rows come out bit for bit the same whatever pass holds them.

Incremental re-scoring must equal a full re-score, but a kernel's blocking, and so the order
of its float32 sums, depends on the shape of the call: how many rows a matmul holds, how many
queries and keys an attention call holds. In float32 that moves a number by about 1e-7; in a
model with bfloat16 matmuls the next rounding to bfloat16 turns it into a whole bfloat16 step
(0.4 %), which grows through the layers to a few tenths of a bit of surprise. Within
:func:`exact_rows` the shapes are fixed instead:

- matmuls run in blocks of :data:`ROW_BLOCK` rows, and the scorer starts every pass of a
  window on a block boundary counted from the window's start, so a row always shares its
  matmul with the same block of positions, in a call of the same size (the window's last
  block holds the rows left, in every pass over the same text);
- attention pads queries to a multiple of :data:`QUERY_BLOCK` and keys to a multiple of
  :data:`KEY_BLOCK` (the padding masked out);
- the LM head, whose calls start at any row, pads its last block to :data:`ROW_BLOCK` rows.

Measured: 0 bits between incremental and full re-scores of a real file, at the speed of
unblocked calls (benchmarks/bench_runtime.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

#: Rows per matmul in an exact pass: 256 run at the speed of one large matmul (128 lose
#: about a quarter on a CPU with bfloat16 matrix units).
ROW_BLOCK = 256
#: Attention in an exact pass: queries padded to a multiple of this, keys to one of
#: ``KEY_BLOCK`` (the CPU kernel's key blocks are then always whole).
QUERY_BLOCK = 16
KEY_BLOCK = 256
#: The name the exact attention is registered under with transformers.
ATTENTION = "lossmap_row_exact"


@dataclass
class RowBlocks:
    """Shared by one model's layers: ``size`` rows per matmul while a pass must be exact
    (see :func:`exact_rows`), else None (one call as given)."""

    size: int | None = None


def blocked_matmul(
    x: torch.Tensor, weight: torch.Tensor, size: int, pad: bool = False
) -> torch.Tensor:
    """``x @ weight.T`` in matmuls of ``size`` rows; the last block holds the rows left
    (``pad``: it is zero-padded to ``size`` rows, so that every row's result is the same
    wherever the call's rows start)."""
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[0]
    extra = -n % size if pad else 0
    if extra:
        rows = torch.cat([rows, rows.new_zeros(extra, rows.shape[1])])
    out = rows.new_empty(n + extra, weight.shape[0])
    weight_t = weight.t()
    for i in range(0, n + extra, size):
        torch.mm(rows[i : i + size], weight_t, out=out[i : i + size])
    return out[:n].reshape(*x.shape[:-1], weight.shape[0])


def matmul(
    x: torch.Tensor, weight: torch.Tensor, size: int | None, pad: bool = False
) -> torch.Tensor:
    """``x @ weight.T``: one call when ``size`` is None (outside :func:`exact_rows`), else
    :func:`blocked_matmul` in blocks of ``size`` rows."""
    if size is None:
        return torch.nn.functional.linear(x, weight)
    return blocked_matmul(x, weight, size, pad)


@contextmanager
def exact_rows(blocks: RowBlocks | None) -> Iterator[None]:
    """Within the block, the model owning ``blocks`` computes each row independently of the
    pass's shape; a no-op for ``None`` (float32 models, whose rows agree to about 1e-7)."""
    if blocks is None:
        yield
        return
    before, blocks.size = blocks.size, ROW_BLOCK
    try:
        yield
    finally:
        blocks.size = before


def use_exact_attention(model: torch.nn.Module, blocks: RowBlocks) -> bool:
    """Route ``model``'s attention through :func:`_attention` (exact within
    :func:`exact_rows`, transformers' SDPA otherwise); False if the model's attention cannot
    be swapped (it then stays as it was)."""
    from transformers import AttentionInterface

    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ATTENTION, _attention)
    # The masks SDPA gets (without a mask function of its own, an attention implementation
    # is handed no mask at all: padding and cached passes would attend everywhere).
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    for module in model.modules():
        if hasattr(module, "num_key_value_groups"):
            module.lossmap_row_blocks = blocks
    model.set_attn_implementation(ATTENTION)
    return True


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    blocks = getattr(module, "lossmap_row_blocks", None)
    causal = getattr(module, "is_causal", True)
    # Attention stays in float32: in bfloat16 it moved surprise by 1.3 bits at p99 (0.5B).
    if blocks is None or blocks.size is None or not causal or dropout:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    batch, heads, n_q, dim = query.shape
    n_kv = key.shape[2]
    pad_q, pad_kv = -n_q % QUERY_BLOCK, -n_kv % KEY_BLOCK
    if attention_mask is None and n_q == n_kv:
        # A fresh pass: the causal kernel, which skips the blocks above the diagonal (about
        # twice as fast), with keys padded to whole key blocks and queries to whole query
        # blocks (its mask is aligned top-left: query i sees keys 0..i, never the padding);
        # its rows equal the masked kernel's bit for bit (measured), so a fresh pass and a
        # cached one still agree.
        if pad_q:
            query = _pad_rows(query, pad_q)
        if pad_kv:
            key, value = _pad_rows(key, pad_kv), _pad_rows(value, pad_kv)
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, is_causal=True, scale=scaling
        )[:, :, :n_q]
        return out.transpose(1, 2).contiguous(), None
    if attention_mask is None:  # causal, the queries being the last n_q positions
        dev = query.device
        attention_mask = (
            torch.arange(n_q, device=dev)[:, None] + (n_kv - n_q)
            >= torch.arange(n_kv, device=dev)[None, :]
        )[None, None]
    elif attention_mask.dtype != torch.bool:
        attention_mask = attention_mask == 0  # additive float mask: 0 where attended
    attention_mask = attention_mask.expand(batch, 1, n_q, n_kv)
    if pad_kv:
        key, value = _pad_rows(key, pad_kv), _pad_rows(value, pad_kv)
        attention_mask = torch.cat(
            [attention_mask, attention_mask.new_zeros(batch, 1, n_q, pad_kv)], 3
        )
    if pad_q:
        # Padded queries attend to everything (a fully masked row would be NaN); dropped below.
        query = _pad_rows(query, pad_q)
        attention_mask = torch.cat(
            [attention_mask, attention_mask.new_ones(batch, 1, pad_q, n_kv + pad_kv)], 2
        )
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, scale=scaling
    )[:, :, :n_q]
    return out.transpose(1, 2).contiguous(), None


def _pad_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` (batch, heads, rows, dim) with ``n`` rows of zeros after its own."""
    return torch.cat([t, t.new_zeros(*t.shape[:2], n, t.shape[3])], 2)

"""The LM head: per-token statistics from final hidden states, in chunks of positions.

All numbers are in bits. The full-vocabulary log-softmax is never materialised for a whole
window: hidden states come from one forward pass, and the head and softmax run over chunks of
positions, in two work buffers kept on the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..models.loading import LoadedModel
from ..models.precision import MIXED
from ..models.row_exact import matmul
from .token_classes import whitespace_classes

LN2 = math.log(2.0)
#: Ranks up to this are read off a top-k instead of a full-vocabulary comparison.
RANK_SHORTCUT = 32
#: Positions per LM-head chunk: 256 x 152k vocabulary x 4 bytes is about 156 MB. Larger
#: chunks stream the head's weights fewer times; two such buffers are kept per model.
DEFAULT_CHUNK = 256


class TokenStats(NamedTuple):
    """What the model thought of one actual token (bits)."""

    surprise: float  # -log2 p(actual)
    rank: int | None  # 1 = the model's first choice; None: not known (a server's past top-k)
    entropy: float  # of the predicted distribution
    code_surprise: float  # whitespace-insensitive (see token_classes), never above surprise
    code_margin: float  # log2 p(likeliest class) - log2 p(actual's class), >= 0
    top_probabilities: list[float]  # of the top-k tokens, likeliest first
    top_ids: list[int]


@dataclass(frozen=True)
class _SharedClasses:
    """Vocabulary ids whose whitespace-insensitive class has other members.

    Most classes hold one id, whose class probability is its own; only the ``tokens`` of
    shared classes need summing. ``of_token[v]`` is the shared class of id ``v`` or -1.
    """

    tokens: torch.Tensor  # (M,) vocabulary ids in shared classes
    classes: torch.Tensor  # (M,) their shared-class index, 0 ... n - 1
    of_token: torch.Tensor  # (V,) shared-class index per vocabulary id, or -1
    n: int


def _shared_classes(loaded: LoadedModel, vocab: int) -> _SharedClasses:
    shared = loaded.cache.get("ws_shared")
    if shared is None or shared.of_token.shape[0] != vocab:
        classes = whitespace_classes(loaded.tokenizer, vocab)
        counts = torch.bincount(classes)
        tokens = (counts[classes] > 1).nonzero()[:, 0]
        _, remapped = torch.unique(classes[tokens], return_inverse=True)
        of_token = torch.full((vocab,), -1, dtype=torch.long)
        of_token[tokens] = remapped
        n = int(remapped.max()) + 1 if len(tokens) else 0
        dev = loaded.device
        shared = _SharedClasses(tokens.to(dev), remapped.to(dev), of_token.to(dev), n)
        loaded.cache["ws_shared"] = shared
    return shared


def _buffers(loaded: LoadedModel, rows: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float32 (rows, vocab) work buffers, kept on the model between calls.

    Fresh 100 MB allocations cost about four times the arithmetic done in them on CPUs (the
    pages are faulted in and zeroed each time), so the logits and exp buffers are reused.
    """
    bufs = loaded.cache.get("stat_buffers")
    if bufs is None or bufs[0].shape[0] < rows or bufs[0].shape[1] != vocab:
        shape = (max(rows, DEFAULT_CHUNK), vocab)
        dev = loaded.device
        bufs = (torch.empty(shape, device=dev), torch.empty(shape, device=dev))
        loaded.cache["stat_buffers"] = bufs
    return bufs[0][:rows], bufs[1][:rows]


def lm_head(loaded: LoadedModel, hidden: torch.Tensor, out: torch.Tensor | None = None):
    """Logits (float32) of ``hidden``; written into ``out`` (rows, vocab) when given."""
    head = loaded.model.get_output_embeddings()
    weight, bias = head.weight, getattr(head, "bias", None)
    if out is None or out.shape[1] != weight.shape[0]:
        logits = head(hidden).float()
    elif weight.dtype == torch.float32 and hidden.dtype == torch.float32:
        logits = torch.mm(hidden, weight.t(), out=out)
        if bias is not None:
            logits.add_(bias)
    else:
        logits = out.copy_(head(hidden))
    cap = getattr(loaded.model.config, "final_logit_softcapping", None)
    if cap:
        logits = logits.div_(cap).tanh_().mul_(cap)
    return logits


def token_stats(
    loaded: LoadedModel, hidden: torch.Tensor, actual: torch.Tensor, top_k: int
) -> list[TokenStats]:
    """Statistics of ``actual[i]`` given final hidden states ``hidden[i]`` (one row each).

    Works on shifted logits ``z = logits - max`` and one buffer ``e = exp(z)``: with
    ``S = sum(e)``, log p = z - log S and the entropy is log S - sum(e * z) / S. The full
    log-softmax and probability matrices are never built.
    """
    head = loaded.model.get_output_embeddings()
    z_buf, _ = _buffers(loaded, len(actual), head.weight.shape[0])
    fast = _bfloat16_head(loaded)
    if fast is None:
        return stats_from_logits(loaded, lm_head(loaded, hidden, z_buf), actual, top_k)
    # Every logit from the bfloat16 head, then the ones the numbers hinge on (the top-k and
    # the actual token's) again in float32: surprise, rank and top-k are float32's, and only
    # the tail of the softmax sum and the entropy carry bfloat16's rounding.
    size = loaded.row_blocks.size if loaded.row_blocks is not None else None
    approx = matmul(hidden.to(torch.bfloat16), fast, size, pad=True)
    weight = head.weight

    def exact(ids: torch.Tensor) -> torch.Tensor:
        return torch.bmm(weight[ids], hidden.float()[:, :, None])[:, :, 0]

    # The candidates for the top-k from the bfloat16 logits (half the bytes to read).
    k = min(max(top_k, RANK_SHORTCUT), approx.shape[-1])
    candidates = approx.topk(k, dim=-1).indices
    return stats_from_logits(loaded, z_buf.copy_(approx), actual, top_k, exact, candidates)


def _bfloat16_head(loaded: LoadedModel) -> torch.Tensor | None:
    """The LM head's weight in bfloat16 when the model runs :data:`MIXED` and its head is a
    plain projection (no bias, no soft-capping); else None. Made once, kept on the model."""
    if loaded.precision != MIXED:
        return None
    if "bf16_head" not in loaded.cache:
        head = loaded.model.get_output_embeddings()
        plain = getattr(head, "bias", None) is None
        plain = plain and not getattr(loaded.model.config, "final_logit_softcapping", None)
        plain = plain and type(head) is torch.nn.Linear
        loaded.cache["bf16_head"] = head.weight.detach().to(torch.bfloat16) if plain else None
    return loaded.cache["bf16_head"]


def stats_from_logits(
    loaded: LoadedModel,
    z: torch.Tensor,
    actual: torch.Tensor,
    top_k: int,
    exact: Callable[[torch.Tensor], torch.Tensor] | None = None,
    candidates: torch.Tensor | None = None,
) -> list[TokenStats]:
    """:func:`token_stats` from float32 logits ``z`` (rows, vocab), which are overwritten.

    ``exact(ids)``: the logits of ``ids`` (rows, n) computed more precisely than ``z``'s;
    they replace ``z``'s for the top-k and the actual tokens. ``candidates``: the ids of the
    top-k when already known (then recomputed by ``exact``)."""
    _, e_buf = _buffers(loaded, len(actual), z.shape[-1])
    rows = torch.arange(len(actual), device=z.device)
    k = min(max(top_k, RANK_SHORTCUT), z.shape[-1])
    if candidates is not None and exact is not None:
        top_id = candidates[:, :k]
    else:
        top_z, top_id = z.topk(k, dim=-1)
    if exact is not None:
        values = exact(torch.cat([top_id, actual[:, None]], 1))
        # The actual token first, then the top-k: an actual token among the top-k keeps the
        # very number it is compared with there (its rank is then exact, ties included).
        z.scatter_(1, actual[:, None], values[:, k:])
        z.scatter_(1, top_id, values[:, :k])
        top_z, order = values[:, :k].sort(-1, descending=True)
        top_id = top_id.gather(1, order)
    z.sub_(top_z[:, :1])  # in place: the head's output is ours
    top_z = top_z - top_z[:, :1]
    e = torch.exp(z, out=e_buf)
    total = e.sum(-1)
    log_total = total.log()
    z_actual = z[rows, actual]
    rank = (top_z > z_actual[:, None]).sum(-1) + 1
    far = (z_actual < top_z[:, -1]).nonzero()[:, 0]
    if far.numel():  # ranks past the top-k: a full-vocabulary comparison for those rows only
        rank[far] = (z[far] > z_actual[far, None]).sum(-1) + 1
    # Whitespace-insensitive classes: sums over the shared ones only (see _SharedClasses).
    shared = _shared_classes(loaded, z.shape[-1])
    class_e = torch.zeros(len(actual), max(shared.n, 1), device=z.device)
    if shared.n:
        class_e.scatter_add_(1, shared.classes.expand(len(actual), -1), e[:, shared.tokens])
    actual_class = shared.of_token[actual]
    e_actual = e[rows, actual]
    in_shared = actual_class >= 0
    e_class = torch.where(in_shared, class_e[rows, actual_class.clamp_min(0)], e_actual)
    # The likeliest class: a shared class's sum, or else the likeliest single id (e = 1).
    e_top_class = class_e.max(-1).values.clamp_min(1.0)
    tiny = torch.finfo(torch.float32).tiny
    e_class = e_class.clamp_min(tiny)
    entropy = log_total - e.mul_(z).sum(-1) / total  # e is spent here
    lp_actual = z_actual - log_total
    top_p = torch.exp(top_z[:, :top_k] - log_total[:, None])
    out = zip(
        (-lp_actual / LN2).tolist(),
        rank.tolist(),
        (entropy / LN2).tolist(),
        ((log_total - torch.log(e_class)) / LN2).tolist(),
        ((torch.log(e_top_class) - torch.log(e_class)) / LN2).clamp_min(0).tolist(),
        top_p.tolist(),
        top_id[:, :top_k].tolist(),
        strict=True,
    )
    return [TokenStats(s, r, h, min(code, s), m, tp, ti) for s, r, h, code, m, tp, ti in out]

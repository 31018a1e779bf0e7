"""Small helpers over transformers' ``DynamicCache`` (5.x): length, cropping, memory."""

from __future__ import annotations

import torch


def cache_len(cache) -> int:
    """Tokens held by ``cache``."""
    return int(cache.get_seq_length())


def crop_to(cache, length: int) -> None:
    """Keep the first ``length`` tokens of ``cache``."""
    extra = cache_len(cache) - length
    if extra > 0:
        cache.crop(-extra)  # transformers 5: a negative count of tokens to drop


def cache_bytes(cache) -> int:
    """Bytes of the keys and values held by ``cache``."""
    total = 0
    for layer in getattr(cache, "layers", ()):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total

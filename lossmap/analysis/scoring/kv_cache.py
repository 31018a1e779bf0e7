"""Small helpers over transformers' ``DynamicCache`` (5.x): passing it, length, cropping,
memory."""

from __future__ import annotations

import functools
import inspect

import torch


def cache_args(base, cache) -> dict:
    """The keyword arguments that run ``base`` (a transformers base model) after ``cache``
    and append to it: ``base(input_ids=..., **cache_args(base, cache))``."""
    return {_cache_kwarg(type(base)): cache, "use_cache": True}


@functools.cache
def _cache_kwarg(model_class: type) -> str:
    """The name ``model_class.forward`` takes the KV cache under, looked up once per class.

    transformers 5.24 renamed ``past_key_values`` to ``cache`` (the old name warns, with
    removal due in 5.40, after which it would be swallowed by ``**kwargs`` and the cache
    silently ignored); earlier 5.x releases, and remote-code models, only know the old name.
    The decorators on ``forward`` keep ``__wrapped__``, so the signature is the real one.
    """
    try:
        params = inspect.signature(model_class.forward).parameters
    except (TypeError, ValueError):  # no introspectable signature: the long-standing name
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


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

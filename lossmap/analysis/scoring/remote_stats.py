"""Per-token statistics from a model server's answers (log-probabilities and top-k only).

An engine returns, per prompt token, log p(token), its rank where it knows it, and the top-k
alternatives (``models.remote.PromptLogprob``). From those:

- **surprise**, **probability**, **margin** and the top-k are exact (the engine's numbers).
- **rank** is exact within the top-k (vLLM: always); past it, unknown (None).
- **entropy** is estimated: the top-k's own terms, plus the rest of the probability mass
  spread evenly over as few tokens as could hold it (none likelier than the k-th).
- the **whitespace-insensitive** (code) surprise and margin sum the classes over the top-k
  and the actual token only; mass of a class outside the top-k is not seen.
"""

from __future__ import annotations

import math

from ..models.loading import LoadedModel
from ..models.remote import REMOTE_TOP_K, PromptLogprob
from .head import LN2, TokenStats
from .token_classes import whitespace_classes


def remote_stats(
    loaded: LoadedModel, prompts: list[list[int]], froms: list[int], top_k: int
) -> list[list[TokenStats | None]]:
    """For each prompt, the statistics of its tokens from ``froms[i]`` on (None where the
    engine gave no numbers), asked of ``loaded``'s server in one call."""
    remote = loaded.remote
    assert remote is not None, "remote_stats needs a remote model"
    # Always the same k: vLLM refuses more than its --max-logprobs (20 by default), and a
    # larger top_k shows at most k alternatives.
    answers = remote.prompt_logprobs(prompts, REMOTE_TOP_K)
    classes = _classes(loaded)
    return [
        [
            None if entry is None else stats_from_top(prompt[t], entry, top_k, classes)
            for t, entry in enumerate(answer[start:], start)
        ]
        for prompt, start, answer in zip(prompts, froms, answers, strict=True)
    ]


def stats_from_top(actual: int, entry: PromptLogprob, top_k: int, classes: list[int]) -> TokenStats:
    """:class:`TokenStats` of ``actual`` from an engine's numbers (see the module's notes)."""
    seen = dict(entry.top)
    seen[actual] = entry.logprob
    probs = {tid: math.exp(lp) for tid, lp in seen.items()}
    top = entry.top or [(actual, entry.logprob)]
    # Entropy: the seen terms, then the unseen mass over the fewest tokens that can hold it.
    known = sum(probs.values())
    entropy = -sum(p * math.log(p) for p in probs.values() if p > 0)
    rest = 1.0 - known
    if rest > 1e-9:
        smallest = max(min(math.exp(lp) for _, lp in top), 1e-12)
        spread = max(1, math.ceil(rest / smallest))
        entropy += rest * math.log(spread / rest)
    # Whitespace-insensitive classes over what was seen.
    by_class: dict[int, float] = {}
    for tid, p in probs.items():
        c = classes[tid] if tid < len(classes) else -1 - tid
        by_class[c] = by_class.get(c, 0.0) + p
    actual_class = classes[actual] if actual < len(classes) else -1 - actual
    p_class = max(by_class[actual_class], 1e-300)
    surprise = -entry.logprob / LN2
    code_surprise = min(-math.log2(p_class), surprise)
    code_margin = max(0.0, math.log2(max(by_class.values())) - math.log2(p_class))
    shown = top[:top_k]
    return TokenStats(
        surprise=surprise,
        rank=entry.rank,
        entropy=entropy / LN2,
        code_surprise=code_surprise,
        code_margin=code_margin,
        top_probabilities=[math.exp(lp) for _, lp in shown],
        top_ids=[tid for tid, _ in shown],
    )


def _classes(loaded: LoadedModel) -> list[int]:
    """Whitespace-insensitive class per vocabulary id, made once per model."""
    classes = loaded.cache.get("ws_classes_list")
    if classes is None:
        classes = whitespace_classes(loaded.tokenizer, len(loaded.tokenizer)).tolist()
        loaded.cache["ws_classes_list"] = classes
    return classes

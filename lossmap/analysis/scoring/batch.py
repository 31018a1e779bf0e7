"""Scoring many texts at once: windows of similar length share a forward pass.

Every text is cut into its sliding windows (as :func:`score_text` does); windows of all texts
are sorted by length and run ``batch`` at a time, right-padded to the longest of their batch
only, with an attention mask. Sorting keeps the padding small (the paper's tool padded every
sample to the model's maximum length). Right padding under a causal mask leaves every real
position's numbers as they are alone, so the results equal ``score_text`` per text.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.loading import LoadedModel
from .head import DEFAULT_CHUNK, token_stats
from .remote_stats import remote_stats
from .tokens import ScoredText, encode, scored_text
from .windows import DEFAULT_MIN_CONTEXT, DEFAULT_WINDOW, plan_windows


@torch.inference_mode()
def score_texts(
    loaded: LoadedModel,
    texts: list[str],
    batch: int = 8,
    top_k: int = 5,
    window: int | None = None,
    min_context: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[ScoredText]:
    """Score every text; ``batch`` windows per forward pass.

    ``on_batch(windows done, windows in all)`` reports progress.
    """
    window = min(window or DEFAULT_WINDOW, loaded.context_length)
    if min_context is None:
        min_context = min(DEFAULT_MIN_CONTEXT, window // 2)
    encoded = [encode(loaded, t) for t in texts]
    rows: list[list[tuple | None]] = [[None] * len(ids) for ids, _, _ in encoded]
    jobs = [  # (text index, window)
        (i, w)
        for i, (ids, _, _) in enumerate(encoded)
        for w in plan_windows(len(ids), window, min_context)
        if w.end - max(w.score_from, w.start + 1) > 0
    ]
    jobs.sort(key=lambda job: job[1].end - job[1].start)
    run = _run_remote if loaded.remote is not None else _run_local
    for b in range(0, len(jobs), max(batch, 1)):
        run(loaded, encoded, jobs[b : b + batch], rows, top_k, chunk)
        if on_batch:
            on_batch(min(b + batch, len(jobs)), len(jobs))
    return [
        scored_text(loaded, text, ids, spans, has_bos, rows[i], (window, min_context, top_k))
        for i, (text, (ids, spans, has_bos)) in enumerate(zip(texts, encoded, strict=True))
    ]


def _run_remote(loaded, encoded, group, rows, top_k, chunk) -> None:
    """One request to the model server for the windows of ``group``."""
    prompts = [encoded[i][0][w.start : w.end] for i, w in group]
    froms = [max(w.score_from, w.start + 1) - w.start for _, w in group]
    for (i, w), got in zip(group, remote_stats(loaded, prompts, froms, top_k), strict=True):
        rows[i][w.end - len(got) : w.end] = got


def _run_local(loaded, encoded, group, rows, top_k, chunk) -> None:
    """One forward pass over the windows of ``group``, right-padded, then the LM head."""
    base = loaded.model.base_model
    pad = loaded.tokenizer.pad_token_id
    pad = pad if pad is not None else 0
    dev = loaded.device
    length = max(w.end - w.start for _, w in group)
    input_ids = torch.full((len(group), length), pad, dtype=torch.long, device=dev)
    mask = torch.zeros((len(group), length), dtype=torch.long, device=dev)
    for r, (i, w) in enumerate(group):
        seq = encoded[i][0][w.start : w.end]
        input_ids[r, : len(seq)] = torch.tensor(seq, device=dev)
        mask[r, : len(seq)] = 1
    hidden = base(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state
    # Gather (row, position, text, target) for every target of the batch, then chunk.
    targets = [
        (r, t - 1 - w.start, i, t)
        for r, (i, w) in enumerate(group)
        for t in range(max(w.score_from, w.start + 1), w.end)
    ]
    for c in range(0, len(targets), chunk):
        part = targets[c : c + chunk]
        rows_idx = torch.tensor([p[0] for p in part], device=dev)
        pos_idx = torch.tensor([p[1] for p in part], device=dev)
        actual = torch.tensor([encoded[p[2]][0][p[3]] for p in part], device=dev)
        stats = token_stats(loaded, hidden[rows_idx, pos_idx], actual, top_k)
        for (_, _, i, t), row in zip(part, stats, strict=True):
            rows[i][t] = row

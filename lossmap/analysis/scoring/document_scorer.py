"""Scoring one document window by window, re-running only what an edit changed.

A causal model's statistics for token ``t`` depend on tokens ``0..t`` only. A
:class:`DocumentScorer` keeps, for the last text it scored, the token ids, every token's
statistics and (optionally) each sliding window's KV cache. Scoring a new version reuses the
statistics of the longest common token prefix, crops each window's cache to that prefix and
runs the model on the rest only. Comparing token ids (not characters) covers edits that make
the tokenizer re-merge tokens before the edit: the prefix simply ends earlier.

Invariant: ``rows[t]`` holds the statistics of ``ids[t]`` for every ``t < len(ids)`` (``rows[0]``
is ``None``: the first token has no left context), and each window's cache holds the keys and
values of ``ids[start : start + cache length]`` with ``start + cache length <= len(ids)``. Work
that stops early (``keep_going``) keeps the invariant by truncating ``ids`` where it stopped.

Window starts do not depend on the text's length (see :mod:`windows`), so a window's cache
stays valid across edits after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..models.loading import LoadedModel
from ..models.row_exact import ROW_BLOCK, exact_rows
from ..progress import ProgressFn
from . import kv_cache
from .head import DEFAULT_CHUNK, TokenStats, token_stats
from .remote_stats import remote_stats
from .tokens import ScoredText, encode, scored_text
from .windows import DEFAULT_MIN_CONTEXT, DEFAULT_WINDOW, plan_windows

#: After an edit, the tokens from the first changed one that are scored (and offered to
#: ``on_partial``) before the rest of the document.
LOCAL_FIRST_TOKENS = 128
#: With caches kept, a window runs in pieces of at most this many tokens, so that stale work
#: can stop between pieces.
SCORING_PIECE_TOKENS = 512


@dataclass(frozen=True)
class RunStats:
    """What the last ``score`` call did, in tokens."""

    tokens: int  # tokens of the text (with BOS)
    reused: int  # statistics kept from the previous version (the common prefix)
    run: int  # tokens the model ran on (cached context not counted)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class DocumentScorer:
    """Scores successive versions of one document, reusing the unchanged prefix.

    Not thread-safe: one worker scores at a time (the server's model host).
    ``keep_cache=False`` scores each version from scratch in one pass per window (the CLI).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        top_k: int = 5,
        window: int | None = None,
        min_context: int | None = None,
        chunk: int = DEFAULT_CHUNK,
        keep_cache: bool = True,
    ) -> None:
        self.loaded = loaded
        self.top_k = top_k
        self.window = min(window or DEFAULT_WINDOW, loaded.context_length)
        self.min_context = (
            min(DEFAULT_MIN_CONTEXT, self.window // 2) if min_context is None else min_context
        )
        plan_windows(0, self.window, self.min_context)  # validate the geometry now
        self.chunk = chunk
        self.keep_cache = keep_cache
        self.ids: list[int] = []
        self.rows: list[TokenStats | None] = []
        self._caches: dict[int, object] = {}  # window start -> DynamicCache
        self._last_change = 0  # token index of the last edit: caches near it are kept longest
        self.last_run = RunStats(0, 0, 0)

    # -- memory -------------------------------------------------------------------------
    @property
    def cache_bytes(self) -> int:
        """Bytes held by the KV caches of this document."""
        return sum(kv_cache.cache_bytes(c) for c in self._caches.values())

    def drop_caches(self) -> None:
        """Free the KV caches; statistics are kept, so the next edit still reuses its prefix."""
        self._caches.clear()

    def trim(self, max_bytes: int) -> None:
        """Drop window caches, farthest from the last edit first, until under ``max_bytes``."""
        order = sorted(self._caches, key=lambda s: -abs(s + self.window // 2 - self._last_change))
        for start in order:
            if self.cache_bytes <= max_bytes:
                return
            del self._caches[start]

    # -- scoring ------------------------------------------------------------------------
    @torch.inference_mode()
    def score(
        self,
        text: str,
        progress: ProgressFn | None = None,
        on_partial: Callable[[ScoredText], None] | None = None,
        local_first: int = LOCAL_FIRST_TOKENS,
        keep_going: Callable[[], bool] | None = None,
    ) -> ScoredText | None:
        """Score ``text``; ``None`` if ``keep_going`` said stop (the work done is kept).

        ``on_partial``: called once, when more than ``local_first`` tokens remain after the
        ``local_first`` tokens from the first change, with a provisional :class:`ScoredText`:
        tokens up to there re-scored, tokens of the unchanged tail carrying their previous
        statistics, tokens in between unscored; its ``fresh_until`` says where the re-scored
        part ends.
        """
        ids, spans, has_bos = encode(self.loaded, text)
        old_ids, old_rows = self.ids, self.rows

        def build(rows: list[TokenStats | None], fresh_until: int | None) -> ScoredText:
            return scored_text(
                self.loaded,
                text,
                ids,
                spans,
                has_bos,
                rows,
                (self.window, self.min_context, self.top_k),
                fresh_until=fresh_until,
            )

        def partial(rows: list[TokenStats | None], done: int) -> None:
            if on_partial is not None:
                on_partial(build(_provisional(old_ids, old_rows, ids, rows, done), done))

        rows = self._score_ids(ids, progress, partial, local_first, keep_going)
        if rows is None:
            return None
        return build(rows, None)

    def _score_ids(
        self,
        ids: list[int],
        progress: ProgressFn | None,
        partial: Callable[[list[TokenStats | None], int], None],
        local_first: int,
        keep_going: Callable[[], bool] | None,
    ) -> list[TokenStats | None] | None:
        if self.loaded.remote is not None:
            return self._score_remote(ids, progress, keep_going)
        prefix, rows, total = self._begin(ids)
        windows = plan_windows(len(ids), self.window, self.min_context)
        self._forget_after(prefix, {w.start for w in windows})
        run = 0
        partial_at = max(prefix, 1) + local_first
        partial_due = total > 2 * local_first
        base = self.loaded.model.base_model
        for w in windows:
            first = max(w.score_from, prefix, w.start + 1)  # first target still to score
            if first >= w.end:
                continue
            cache = self._window_cache(w.start, first - 1)
            at = w.start + (kv_cache.cache_len(cache) if cache is not None else 0)
            if self._block:
                # Row-exact passes run whole blocks from the window's start (see row_exact).
                # The block holding the first row to run is scored again whole: in the last
                # pass it may have been the window's last block, with fewer rows.
                block = self._block
                aligned = w.start + (at - w.start) // block * block
                if aligned < at:
                    if aligned > w.start:
                        kv_cache.crop_to(cache, aligned - w.start)
                    else:
                        cache = None
                at = aligned
                first_block = w.start + (first - 1 - w.start) // block * block
                first = max(w.score_from, first_block + 1, w.start + 1)
            while at < w.end:
                if keep_going is not None and not keep_going():
                    self._stop(w.start, cache)
                    return None
                stop = w.end
                if self.keep_cache:
                    stop = min(stop, at + SCORING_PIECE_TOKENS)
                    if partial_due and at < partial_at:
                        stop = min(stop, self._block_end(partial_at, w.start))
                cache = self._forward(base, ids, at, stop, w, first, rows, cache)
                run += stop - at
                at = stop
                done = min(at + 1, w.end)
                self.ids, self.rows = ids[:done], rows[:done]
                if progress:
                    progress("scoring", done - max(prefix, 1), total)
                if partial_due and done >= partial_at:
                    partial_due = False
                    partial(rows, done)
            if self.keep_cache and cache is not None:
                self._caches[w.start] = cache
        return self._finish(ids, rows, prefix, run)

    def _score_remote(
        self,
        ids: list[int],
        progress: ProgressFn | None,
        keep_going: Callable[[], bool] | None,
    ) -> list[TokenStats | None] | None:
        """A model server scores each window that holds changed tokens, in one request
        (the server reuses what its own prefix cache holds; no local-first partial result).
        Rows of the common prefix are kept, as locally."""
        prefix, rows, total = self._begin(ids)
        run = 0
        for w in plan_windows(len(ids), self.window, self.min_context):
            first = max(w.score_from, prefix, w.start + 1)
            if first >= w.end:
                continue
            if keep_going is not None and not keep_going():
                self.last_run = RunStats(len(self.ids), 0, 0)
                return None
            got = remote_stats(self.loaded, [ids[w.start : w.end]], [first - w.start], self.top_k)
            rows[first : w.end] = got[0]
            run += w.end - w.start
            self.ids, self.rows = ids[: w.end], rows[: w.end]
            if progress:
                progress("scoring", w.end - max(prefix, 1), total)
        return self._finish(ids, rows, prefix, run)

    def _begin(self, ids: list[int]) -> tuple[int, list[TokenStats | None], int]:
        """Start a pass over ``ids``: the length of the prefix shared with the last text
        (its rows are kept, the rest are to fill) and how many targets are left to score."""
        prefix = common_prefix(self.ids, ids)
        self._last_change = prefix
        rows: list[TokenStats | None] = self.rows[:prefix] + [None] * (len(ids) - prefix)
        self.ids, self.rows = ids[:prefix], rows[:prefix]
        return prefix, rows, max(len(ids) - max(prefix, 1), 0)

    def _finish(
        self, ids: list[int], rows: list[TokenStats | None], prefix: int, run: int
    ) -> list[TokenStats | None]:
        """A pass over ``ids`` is complete: its rows are the scorer's state."""
        self.ids, self.rows = ids, rows
        self.last_run = RunStats(len(ids), prefix, run)
        return rows

    @property
    def _block(self) -> int | None:
        """Rows per matmul block when the model's passes are row-exact, else None."""
        return ROW_BLOCK if self.loaded.row_blocks is not None else None

    def _block_end(self, position: int, start: int) -> int:
        """``position`` rounded up to a block boundary of the window starting at ``start``
        (unchanged when passes are not row-exact)."""
        block = self._block
        return position if not block else start + -(-(position - start) // block) * block

    def _forward(self, base, ids, at, stop, w, first, rows, cache):
        """Run ``ids[at:stop]`` after ``cache`` and fill the rows of the targets it predicts."""
        # Exact rows: a token's numbers must not depend on where the edit split the pass.
        with exact_rows(self.loaded.row_blocks):
            return self._forward_rows(base, ids, at, stop, w, first, rows, cache)

    def _forward_rows(self, base, ids, at, stop, w, first, rows, cache):
        device = self.loaded.device
        input_ids = torch.tensor([ids[at:stop]], device=device)
        if self.keep_cache:
            if cache is None:
                from transformers import DynamicCache

                cache = DynamicCache()
            out = base(input_ids=input_ids, **kv_cache.cache_args(base, cache))
        else:
            out = base(input_ids=input_ids, use_cache=False)
        hidden = out.last_hidden_state[0]
        # Target t is predicted from position t - 1.
        targets = list(range(max(first, at + 1), min(stop + 1, w.end)))
        for c in range(0, len(targets), self.chunk):
            tgt = targets[c : c + self.chunk]
            pos = torch.tensor([t - 1 - at for t in tgt], device=device)
            actual = torch.tensor([ids[t] for t in tgt], device=device)
            for t, row in zip(
                tgt, token_stats(self.loaded, hidden[pos], actual, self.top_k), strict=True
            ):
                rows[t] = row
        return cache

    def _window_cache(self, start: int, upto: int):
        """The window's cache cropped to hold at most ``ids[start:upto]``; None if unusable."""
        cache = self._caches.pop(start, None)
        if cache is None or not self.keep_cache:
            return None
        keep = min(kv_cache.cache_len(cache), upto - start)
        if keep <= 0 or not getattr(cache, "is_croppable", True):
            return None
        kv_cache.crop_to(cache, keep)
        return cache

    def _forget_after(self, prefix: int, starts: set[int]) -> None:
        """Crop every cache to the common prefix; drop caches of windows that no longer exist."""
        for start in list(self._caches):
            keep = min(kv_cache.cache_len(self._caches[start]), prefix - start)
            if start not in starts or keep <= 0:
                del self._caches[start]
            else:
                kv_cache.crop_to(self._caches[start], keep)

    def _stop(self, start: int, cache) -> None:
        """Stopped early: keep the window's cache, cropped to the ids known to be scored."""
        done = len(self.ids)
        if self.keep_cache and cache is not None:
            self._caches[start] = cache
        self.last_run = RunStats(done, 0, 0)
        for start in list(self._caches):
            keep = min(kv_cache.cache_len(self._caches[start]), done - start)
            if keep <= 0:
                del self._caches[start]
            else:
                kv_cache.crop_to(self._caches[start], keep)


def _provisional(
    old_ids: list[int],
    old_rows: list[TokenStats | None],
    ids: list[int],
    rows: list[TokenStats | None],
    done: int,
) -> list[TokenStats | None]:
    """Rows for a partial result: fresh up to ``done``, then the unchanged tail's old rows."""
    out = list(rows[:done]) + [None] * (len(ids) - done)
    n_old, n_new = len(old_ids), len(ids)
    limit = min(n_old, n_new - done)
    tail = 0
    while tail < limit and old_ids[n_old - 1 - tail] == ids[n_new - 1 - tail]:
        tail += 1
    for k in range(1, tail + 1):
        out[n_new - k] = old_rows[n_old - k]
    return out


@torch.inference_mode()
def score_text(
    loaded: LoadedModel,
    text: str,
    top_k: int = 5,
    window: int | None = None,
    min_context: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress: ProgressFn | None = None,
) -> ScoredText:
    """Score every token of ``text`` from scratch.

    The first token is scored after the tokenizer's BOS when it defines one; otherwise it is
    left unscored. Texts longer than ``window`` tokens are scored in sliding windows (see
    :mod:`windows`). To re-score edited versions of a text, keep a :class:`DocumentScorer`
    instead.
    """
    scorer = DocumentScorer(loaded, top_k, window, min_context, chunk, keep_cache=False)
    return scorer.score(text, progress=progress)

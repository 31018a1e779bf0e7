"""One :class:`DocumentScorer` per open document, with their KV caches under one memory budget.

Caches are evicted least recently used first across documents; a document that alone exceeds
the budget keeps the windows nearest its last edit. An evicted document keeps its statistics,
so its next edit still reuses the unchanged prefix; only the model's context for the edited
window is recomputed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..models.loading import LoadedModel
from .document_scorer import DocumentScorer

#: Default budget for all documents' KV caches together.
DEFAULT_CACHE_BUDGET_MB = 1024


class ScorerPool:
    """Scorers by document key (the server uses URIs), least recently used first."""

    def __init__(self, budget_bytes: int = DEFAULT_CACHE_BUDGET_MB * 2**20) -> None:
        self.budget_bytes = budget_bytes
        self._scorers: OrderedDict[str, DocumentScorer] = OrderedDict()
        self._lock = threading.Lock()  # get/release come from different threads

    def get(self, key: str, loaded: LoadedModel, top_k: int) -> DocumentScorer:
        """The scorer of ``key``, made anew if there is none or it was for another model or
        ``top_k``; it becomes the most recently used."""
        with self._lock:
            scorer = self._scorers.pop(key, None)
            if scorer is None or scorer.loaded is not loaded or scorer.top_k != top_k:
                scorer = DocumentScorer(loaded, top_k=top_k)
            self._scorers[key] = scorer
            return scorer

    def release(self, key: str) -> None:
        """Forget ``key`` (its document was closed): its caches are freed once no scoring
        holds the scorer (dropping them here could race with the worker)."""
        with self._lock:
            self._scorers.pop(key, None)

    def clear(self) -> None:
        """Forget every document (the model changed)."""
        with self._lock:
            self._scorers = OrderedDict()

    def enforce(self) -> None:
        """Bring the caches under budget: evict the least recently used documents first,
        then trim the most recent one. Call it from the thread that scores."""
        with self._lock:
            scorers = list(self._scorers.values())
        total = sum(s.cache_bytes for s in scorers)
        for scorer in scorers[:-1]:
            if total <= self.budget_bytes:
                return
            total -= scorer.cache_bytes
            scorer.drop_caches()
        if scorers and total > self.budget_bytes:
            scorers[-1].trim(self.budget_bytes)

    @property
    def cache_bytes(self) -> int:
        with self._lock:
            scorers = list(self._scorers.values())
        return sum(s.cache_bytes for s in scorers)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._scorers

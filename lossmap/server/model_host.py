"""The one resident model of the server, and the worker thread that scores documents.

The event loop never waits on the model: it submits jobs and gets results back through
callbacks, which the host calls on its own threads (the server hops back onto the loop).
At most one job per document is pending; a newer version of a document replaces its
pending job, and the job of the most recently edited document runs first. Scoring goes through
the document's ``DocumentScorer`` (kept in a ``ScorerPool``), so an edit re-runs the model
from the first changed token only; a scoring job whose document moved on stops between pieces,
and the part it finished is reused by the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..analysis import FileAnalysis, LoadedModel, load_model
from ..analysis.analyze import SUGGEST_MIN_BITS, analyze_scored
from ..analysis.errors import LossmapError
from ..analysis.scorer_pool import ScorerPool
from ..analysis.two_sided import confirm_lines

ProgressFn = Callable[[str, float, float | None], None]


@dataclass
class ScoringJob:
    """Score ``text`` (version ``version`` of ``uri``) and hand the result to ``on_done``."""

    uri: str
    version: int
    text: str
    name: str  # a path-like name, for the language from the extension
    language: str | None
    priority: float  # larger runs first: the time of the last edit
    is_current: Callable[[], bool]  # False once a newer version exists: the job is dropped
    on_done: Callable[[Any, str | None], None]  # (result, error)
    top_k: int = 5
    #: "score" only: called with a provisional FileAnalysis once the tokens around the
    #: first change are re-scored, when much of the document remains (local-first updates).
    on_partial: Callable[[FileAnalysis], None] | None = None
    #: "score": a causal FileAnalysis of ``text``; "confirm": two-sided numbers for
    #: ``lines`` of the finished ``analysis`` (a dict line -> TwoSidedLine).
    kind: str = "score"
    analysis: FileAnalysis | None = None
    lines: tuple[int, ...] = ()
    #: The model load this job was made for; a job from before a model change is dropped.
    generation: int = 0


@dataclass
class ModelHost:
    """Owns the resident model; loads it in the background; runs one scoring worker."""

    state: str = "idle"  # idle | loading | ready | failed
    error: str | None = None
    loaded: LoadedModel | None = None
    pool: ScorerPool = field(default_factory=ScorerPool)
    _jobs: dict[str, ScoringJob] = field(default_factory=dict)
    _cv: threading.Condition = field(default_factory=threading.Condition)
    _worker: threading.Thread | None = None
    _load_generation: int = 0

    def load(
        self,
        spec: str,
        device: str,
        progress: ProgressFn,
        done: Callable[[str | None], None],
    ) -> None:
        """Load ``spec`` on a background thread; ``done(error or None)`` when finished."""
        with self._cv:
            self._load_generation += 1
            generation = self._load_generation
            self.state, self.error = "loading", None
            self.pool.clear()

        def run() -> None:
            try:
                loaded = load_model(spec, device=device, progress=progress)
                error = None
            except LossmapError as err:
                loaded, error = None, str(err)
            except Exception as err:  # a model that fails in an unforeseen way
                loaded, error = None, f"cannot load model '{spec}': {type(err).__name__}: {err}"
            with self._cv:
                if generation != self._load_generation:
                    return  # superseded by a newer load
                self.loaded = loaded
                self.state, self.error = ("ready", None) if loaded else ("failed", error)
                self._cv.notify_all()
            done(error)

        threading.Thread(target=run, name="lossmap-model-load", daemon=True).start()
        self._ensure_worker()

    def submit(self, job: ScoringJob) -> None:
        """Queue ``job``, replacing any pending job for the same document."""
        with self._cv:
            self._jobs[job.uri] = job
            self._cv.notify_all()
        self._ensure_worker()

    def discard(self, uri: str) -> None:
        """Forget the pending job and the kept scores and caches of a closed document."""
        with self._cv:
            self._jobs.pop(uri, None)
        self.pool.release(uri)

    def pending(self, uri: str) -> bool:
        with self._cv:
            return uri in self._jobs

    @property
    def generation(self) -> int:
        """Which model load is current (bumped by every ``load``)."""
        return self._load_generation

    def _scoring_waits(self) -> bool:
        with self._cv:
            return any(job.kind == "score" for job in self._jobs.values())

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="lossmap-scoring", daemon=True)
            self._worker.start()

    def _next_job(self) -> ScoringJob:
        with self._cv:
            while not (self._jobs and self.state == "ready"):
                self._cv.wait()
            # Causal scoring of any document before two-sided confirmation of any: fresh
            # highlights matter more than a second opinion. Then the most recent edit first.
            uri = max(
                self._jobs,
                key=lambda u: (self._jobs[u].kind == "score", self._jobs[u].priority),
            )
            return self._jobs.pop(uri)

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if not self._live(job):
                continue
            try:
                value: Any = self._run(job)
                result: tuple[Any, str | None] = (value, None)
            except Exception as err:  # keep serving: report and move on
                result = (None, f"{job.kind} failed: {type(err).__name__}: {err}")
            if result[0] is None and result[1] is None:
                continue  # stopped: a newer version of the document is queued
            job.on_done(*result)

    def _live(self, job: ScoringJob) -> bool:
        return job.is_current() and job.generation == self._load_generation

    def _run(self, job: ScoringJob) -> Any:
        loaded = self.loaded
        if job.kind == "confirm":
            return confirm_lines(
                loaded,
                job.analysis,
                list(job.lines),
                suggest_min=SUGGEST_MIN_BITS,
                # Yield to any scoring job; the server queues the rest again.
                keep_going=lambda: self._live(job) and not self._scoring_waits(),
            )
        scorer = self.pool.get(job.uri, loaded, job.top_k)
        on_partial = None
        if job.on_partial is not None:

            def on_partial(scored) -> None:
                job.on_partial(analyze_scored(scored, job.name, job.language))

        try:
            scored = scorer.score(
                job.text, on_partial=on_partial, keep_going=lambda: self._live(job)
            )
        finally:
            self.pool.enforce()
        if scored is None:
            return None
        return analyze_scored(scored, job.name, job.language)

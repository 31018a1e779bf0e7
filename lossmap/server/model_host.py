"""The server's resident models (live, and the judge while it is used), and the worker thread
that scores and confirms documents.

The event loop never waits on the model: it submits jobs and gets results back through
callbacks, which the host calls on its own threads (the server hops back onto the loop).
At most one job per document is pending; a newer version of a document replaces its
pending job, and the job of the most recently edited document runs first. Scoring goes through
the document's ``DocumentScorer`` (kept in a ``ScorerPool``), so an edit re-runs the model
from the first changed token only; a scoring job whose document moved on stops between pieces,
and the part it finished is reused by the next one.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..analysis import FileAnalysis, LoadedModel, load_model
from ..analysis.analyze import analyze_scored
from ..analysis.verdicts.confirm import SUGGEST_MIN_BITS
from ..analysis.errors import LossmapError
from ..analysis.models.roles import ModelRoles, role_progress, share_tokenizer
from ..analysis.progress import ProgressFn
from ..analysis.scoring.scorer_pool import ScorerPool
from ..analysis.verdicts.two_sided import confirm_lines, fim_format


@dataclass
class ScoringJob:
    """Score ``text`` (revision ``revision`` of the document ``uri``) and hand the result to
    ``on_done``."""

    uri: str  # the document's key (``documents.uri_key``)
    revision: int
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


def _load(
    spec: str, device: str, progress: ProgressFn | None, tokenizer_like: Any = None
) -> tuple[Any, str | None]:
    """(LoadedModel, None) or (None, the reason): a model failing to load never escapes."""
    try:
        return load_model(
            spec, device=device, progress=progress, tokenizer_like=tokenizer_like
        ), None
    except LossmapError as err:
        return None, str(err)
    except Exception as err:  # a model that fails in an unforeseen way
        return None, f"cannot load model '{spec}': {type(err).__name__}: {err}"


@dataclass
class ModelHost:
    """Owns the resident models (live, and the judge when it is another model); loads them
    in the background; runs one scoring worker.

    The judge is loaded after the live model (highlights come first) and freed after
    ``judge_idle_seconds`` without confirmations; the next confirmation loads it again.
    """

    state: str = "idle"  # idle | loading | ready | failed  (the live model)
    error: str | None = None
    loaded: LoadedModel | None = None
    roles: ModelRoles | None = None
    judge: LoadedModel | None = None
    #: none (no judge) | loading | ready | failed | freed (idle: loads again when needed)
    judge_state: str = "none"
    judge_error: str | None = None
    judge_idle_seconds: float = 900.0
    pool: ScorerPool = field(default_factory=ScorerPool)
    _jobs: dict[str, ScoringJob] = field(default_factory=dict)
    _cv: threading.Condition = field(default_factory=threading.Condition)
    _worker: threading.Thread | None = None
    _load_generation: int = 0
    _judge_used: float = 0.0
    _device: str = "auto"
    #: Told how every load of the judge ends, a reload after idleness included.
    _judge_done: Callable[[str | None], None] | None = None

    def load(
        self,
        roles: ModelRoles,
        device: str,
        progress: ProgressFn,
        done: Callable[[str | None], None],
        judge_done: Callable[[str | None], None] | None = None,
    ) -> None:
        """Load the live model of ``roles`` on a background thread, then its judge.

        ``done(error or None)`` once the live model is ready (scoring starts);
        ``judge_done(error or None)`` once the judge is (called too when there is none).
        """
        with self._cv:
            self._load_generation += 1
            generation = self._load_generation
            self.state, self.error = "loading", None
            self.roles, self._device = roles, device
            self.judge, self.judge_error = None, None
            self.judge_state = "none" if roles.judge is None else "loading"
            self._judge_done = judge_done
            self.pool.clear()

        def run() -> None:
            live_progress = (
                role_progress(progress, f"live {roles.live}") if roles.judge else progress
            )
            loaded, error = _load(roles.live, device, live_progress)
            with self._cv:
                if generation != self._load_generation:
                    return  # superseded by a newer load
                self.loaded = loaded
                self.state, self.error = ("ready", None) if loaded else ("failed", error)
                if loaded is not None and roles.judge_is_live:
                    self.judge, self.judge_state = loaded, "ready"
                elif loaded is None and roles.judge is not None:
                    self.judge_state = "failed"
                self._cv.notify_all()
            _settle_heap(full=True)  # frees the models this load replaced, cycles and all
            done(error)
            if loaded is not None and self.judge_state == "loading":
                self._load_judge(generation, progress)
            elif judge_done is not None and generation == self._load_generation:
                judge_done(None)

        threading.Thread(target=run, name="lossmap-model-load", daemon=True).start()
        self._ensure_worker()

    def _load_judge(self, generation: int, progress: ProgressFn | None) -> None:
        """Load the judge of the current roles and tell ``judge_done`` how it went (a
        reload after idleness too: a judge that fails then must not fail silently)."""
        spec = self.roles.judge
        judge, error = _load(
            spec, self._device, role_progress(progress, f"judge {spec}"), self.loaded
        )
        _settle_heap(full=False)
        with self._cv:
            if generation != self._load_generation:
                return
            self.judge = judge
            self.judge_state, self.judge_error = ("ready", None) if judge else ("failed", error)
            self._judge_used = time.monotonic()
            if judge is None:  # confirmations waiting for it will never run
                self._jobs = {u: j for u, j in self._jobs.items() if j.kind != "confirm"}
            self._cv.notify_all()
            judge_done = self._judge_done
        if judge_done is not None:
            judge_done(error)

    def _free_idle_judge(self) -> bool:
        """Drop a judge (not also the live model) unused for ``judge_idle_seconds``; called
        with the lock held. True if it was dropped: the caller frees its memory after
        releasing the lock (a full collection takes 0.2-0.3 s, and the event loop would
        wait that long for the lock)."""
        if (
            self.judge_state == "ready"
            and self.judge is not self.loaded
            and self.judge_idle_seconds > 0
            and time.monotonic() - self._judge_used > self.judge_idle_seconds
            and not any(j.kind == "confirm" for j in self._jobs.values())
        ):
            self.judge, self.judge_state = None, "freed"
            return True
        return False

    def _reload_judge(self) -> None:
        """A confirmation waits for a freed judge: load it again in the background."""
        self.judge_state = "loading"
        generation = self._load_generation
        threading.Thread(
            target=self._load_judge, args=(generation, None), name="lossmap-judge-load", daemon=True
        ).start()

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

    def _runnable(self, job: ScoringJob) -> bool:
        if job.kind == "confirm":
            return self.state == "ready" and self.judge_state == "ready"
        return self.state == "ready"

    def _next_job(self) -> ScoringJob:
        while True:
            with self._cv:
                ready = [u for u, j in self._jobs.items() if self._runnable(j)]
                if ready:
                    # Causal scoring of any document before two-sided confirmation of any:
                    # fresh highlights matter more than a second opinion. Then the most
                    # recent edit first.
                    uri = max(
                        ready, key=lambda u: (self._jobs[u].kind == "score", self._jobs[u].priority)
                    )
                    return self._jobs.pop(uri)
                if self.judge_state == "freed" and any(
                    j.kind == "confirm" for j in self._jobs.values()
                ):
                    self._reload_judge()
                freed = self._free_idle_judge()
                if not freed:
                    idle = self.judge_idle_seconds if self.judge_idle_seconds > 0 else 30.0
                    self._cv.wait(timeout=min(30.0, idle))
            if freed:
                _settle_heap(full=True)
                _empty_device_cache()

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
            if job.generation != self._load_generation:
                continue  # the models changed under it: what it made belongs to neither
            job.on_done(*result)

    def _live(self, job: ScoringJob) -> bool:
        return job.is_current() and job.generation == self._load_generation

    def _run(self, job: ScoringJob) -> Any:
        loaded = self.loaded
        if job.kind == "confirm":
            judge = self.judge
            if judge is None or fim_format(judge.tokenizer) is None:
                return (None if judge is None else judge.name), {}
            try:
                return judge.name, confirm_lines(
                    judge,
                    job.analysis,
                    list(job.lines),
                    suggest_min=SUGGEST_MIN_BITS,
                    # Yield to any scoring job; the server queues the rest again.
                    keep_going=lambda: self._live(job) and not self._scoring_waits(),
                    line_level=not share_tokenizer(loaded, judge),
                    judge_causal=judge is not loaded,
                )
            finally:
                self._judge_used = time.monotonic()
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


def _settle_heap(full: bool) -> None:
    """Collect what loading left behind, then freeze the survivors (the models, the
    imported libraries: some 400k objects) out of the garbage collector's reach.

    Without this, a full collection walks them all: 0.2-0.3 s holding the GIL, at whatever
    moment scoring allocates enough, and a hover waits that long. ``full`` also collects the
    frozen objects first, so a model dropped since the last freeze is freed with its cycles.
    """
    if full:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def _empty_device_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()

"""The server's two models, live and judge, and the worker thread that runs their jobs.

The live model scores documents as they are edited; the judge (another model, the live one
itself, or none: ``analysis.models.roles``) confirms suspicious lines two-sided. Both load in
the background, the live one first (highlights come first); a judge that is not the live model
is freed after ``judge_idle_seconds`` without confirmations and loaded again by the next one.

The event loop never waits on a model: it submits jobs and gets results back through
callbacks, which the host calls on its worker thread (the server hops back onto the loop).
A :class:`ScoreJob` delivers a causal ``FileAnalysis`` of a document's text; a
:class:`ConfirmJob` delivers a ``Confirmation`` (``analysis.verdicts.confirm``), the judge's
two-sided verdicts of some lines of a finished analysis. At most one job per document is
pending, of either kind: a newer one replaces it. Scoring of any document runs before
confirmation of any, then the most recently edited document first; a confirmation gives way
to waiting scoring between lines and delivers the lines it did. Scoring goes through the
document's ``DocumentScorer`` (kept in a ``ScorerPool``), so an edit re-runs the model from
the first changed token only; a scoring job whose document moved on stops between pieces
(:class:`Stopped`: it delivers nothing), and the part it finished is reused by the next one.
A job made for an older model load delivers nothing.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from ..analysis import FileAnalysis, LoadedModel, load_model
from ..analysis.analyze import analyze_scored
from ..analysis.errors import LossmapError
from ..analysis.models.http_client import RemoteUnavailable
from ..analysis.models.roles import ModelRoles, role_progress
from ..analysis.progress import ProgressFn
from ..analysis.scoring.scorer_pool import ScorerPool
from ..analysis.verdicts.confirm import Confirmation, confirm
from ..analysis.verdicts.two_sided import JUDGE_PIECE_TOKENS

_log = logging.getLogger(__name__)


class Unreachable(str):
    """A job's error message when its model server could not be reached: the same job can
    succeed later unchanged (the server keeps the last result, marked stale, and tries
    again)."""


#: Seconds between tries to reach a model server that was down when its model loaded.
LOAD_RETRY_SECONDS = (2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Stopped:
    """What a job that stopped early makes: nothing to deliver (its document moved on, and
    the job of the newer version is queued; or a new model load took its model)."""


R = TypeVar("R", FileAnalysis, Confirmation)


@dataclass(kw_only=True)
class Job(Generic[R]):
    """What every job has: the document text it is for, its place in the queue, and where its
    result goes."""

    kind: ClassVar[str]  # names the job in error messages: "score failed: ..."
    uri: str  # the document's key (``documents.uri_key``)
    revision: int  # the store's revision of the text the job is for
    priority: float  # larger runs first: the time of the last edit
    is_current: Callable[[], bool]  # False once a newer version exists: the job is dropped
    #: Called on the worker thread with ``(result, None)`` or ``(None, error)``.
    on_done: Callable[[R | None, str | None], None]
    #: The model load this job was made for; a job from before a model change delivers nothing.
    generation: int = 0


@dataclass(kw_only=True)
class ScoreJob(Job[FileAnalysis]):
    """Score ``text`` with the live model: its causal ``FileAnalysis``."""

    kind: ClassVar[str] = "score"
    text: str
    name: str  # a path-like name, for the language from the extension
    language: str | None
    top_k: int = 5
    #: Called with a provisional FileAnalysis once the tokens around the first change are
    #: re-scored, when much of the document remains (local-first updates).
    on_partial: Callable[[FileAnalysis], None] | None = None


#: Tokens per judge pass for an urgent confirmation (an edited line): about 2 s per piece with
#: bfloat16 matmuls on 2 CPU cores, against about 0.5 s for 32 at a third of the throughput.
URGENT_PIECE_TOKENS = 256


@dataclass(kw_only=True)
class ConfirmJob(Job[Confirmation]):
    """Confirm ``lines`` (1-based) of the finished ``analysis`` two-sided with the judge."""

    kind: ClassVar[str] = "confirm"
    analysis: FileAnalysis
    lines: tuple[int, ...]
    #: The edited lines of a provisional result: the document's scoring job stops for it
    #: (keeping its work) and the server queues the rest of the scoring again afterwards.
    #: Confirmed in larger pieces and without suggestions (the next round adds them).
    urgent: bool = False


def _load(
    spec: str,
    device: str,
    progress: ProgressFn | None,
    tokenizer_like: Any = None,
    runtime: str = "auto",
) -> tuple[Any, str | None]:
    """(LoadedModel, None) or (None, the reason): a model failing to load never escapes."""
    try:
        return load_model(
            spec, device=device, progress=progress, tokenizer_like=tokenizer_like, runtime=runtime
        ), None
    except RemoteUnavailable as err:
        return None, Unreachable(str(err))
    except LossmapError as err:
        return None, str(err)
    except Exception as err:  # a model that fails in an unforeseen way
        return None, f"cannot load model '{spec}': {type(err).__name__}: {err}"


def _load_waiting(
    load: Callable[[], tuple[Any, str | None]],
    still_wanted: Callable[[], bool],
    progress: ProgressFn | None,
) -> tuple[Any, str | None]:
    """``load()``, again and again while it fails because its model server cannot be reached
    (it may be up in a minute) and the load is still wanted, saying so through ``progress``."""
    loaded, error = load()
    tries = 0
    while isinstance(error, Unreachable) and still_wanted():
        wait = LOAD_RETRY_SECONDS[min(tries, len(LOAD_RETRY_SECONDS) - 1)]
        if progress:
            progress(f"{error}; trying again in {wait:.0f} s", 0, None)
        time.sleep(wait)
        tries += 1
        if still_wanted():
            loaded, error = load()
    return loaded, error


@dataclass
class ModelHost:
    """Owns the resident models (live, and the judge when it is another model); loads them
    in the background; runs one worker for both kinds of job.

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
    _jobs: dict[str, Job] = field(default_factory=dict)  # one per document, by key
    _cv: threading.Condition = field(default_factory=threading.Condition)
    _worker: threading.Thread | None = None
    _load_generation: int = 0
    _judge_used: float = 0.0
    _device: str = "auto"
    _runtime: str = "auto"
    #: Told how every load of the judge ends, a reload after idleness included.
    _judge_done: Callable[[str | None], None] | None = None

    def load(
        self,
        roles: ModelRoles,
        device: str,
        progress: ProgressFn,
        done: Callable[[str | None], None],
        judge_done: Callable[[str | None], None] | None = None,
        runtime: str = "auto",
    ) -> None:
        """Load the live model of ``roles`` on a background thread, then its judge, both
        in ``runtime`` (how they compute on a CPU).

        ``done(error or None)`` once the live model is ready (scoring starts);
        ``judge_done(error or None)`` once the judge is (called too when there is none).
        """
        with self._cv:
            self._load_generation += 1
            generation = self._load_generation
            self.state, self.error = "loading", None
            self.roles, self._device, self._runtime = roles, device, runtime
            self.judge, self.judge_error = None, None
            self.judge_state = "none" if roles.judge is None else "loading"
            self._judge_done = judge_done
            self.pool.clear()

        def run() -> None:
            live_progress = (
                role_progress(progress, f"live {roles.live}") if roles.judge else progress
            )
            loaded, error = _load_waiting(
                lambda: _load(roles.live, device, live_progress, runtime=runtime),
                lambda: generation == self._load_generation,
                live_progress,
            )
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
        judge_progress = role_progress(progress, f"judge {spec}")
        judge, error = _load_waiting(
            lambda: _load(spec, self._device, judge_progress, self.loaded, self._runtime),
            lambda: generation == self._load_generation,
            judge_progress,
        )
        _settle_heap(full=False)
        with self._cv:
            if generation != self._load_generation:
                return
            self.judge = judge
            self.judge_state, self.judge_error = ("ready", None) if judge else ("failed", error)
            self._judge_used = time.monotonic()
            if judge is None:  # confirmations waiting for it will never run
                self._jobs = {u: j for u, j in self._jobs.items() if not isinstance(j, ConfirmJob)}
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
            and not self._confirmations_wait()
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

    def submit(self, job: Job) -> None:
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
            return any(isinstance(job, ScoreJob) for job in self._jobs.values())

    def _urgent_waits(self, uri: str) -> bool:
        """Whether an urgent confirmation of ``uri`` is queued (its scoring gives way)."""
        with self._cv:
            job = self._jobs.get(uri)
            return isinstance(job, ConfirmJob) and job.urgent

    def _confirmations_wait(self) -> bool:
        """Whether a confirmation is queued; called with the lock held."""
        return any(isinstance(job, ConfirmJob) for job in self._jobs.values())

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="lossmap-scoring", daemon=True)
            self._worker.start()

    def _runnable(self, job: Job) -> bool:
        if isinstance(job, ConfirmJob):
            return self.state == "ready" and self.judge_state == "ready"
        return self.state == "ready"

    def _next_job(self) -> Job:
        while True:
            with self._cv:
                ready = [u for u, j in self._jobs.items() if self._runnable(j)]
                if ready:
                    # Causal scoring of any document before two-sided confirmation of any:
                    # fresh highlights matter more than a second opinion. Then the most
                    # recent edit first.
                    uri = max(
                        ready,
                        key=lambda u: (isinstance(self._jobs[u], ScoreJob), self._jobs[u].priority),
                    )
                    return self._jobs.pop(uri)
                if self.judge_state == "freed" and self._confirmations_wait():
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
            started = time.monotonic()
            try:
                result, error = self._run(job), None
            except RemoteUnavailable as err:  # the same job may succeed later
                result, error = None, Unreachable(f"{job.kind} waits for the model server: {err}")
            except Exception as err:  # keep serving: report and move on
                result, error = None, f"{job.kind} failed: {type(err).__name__}: {err}"
            _log.debug(
                "%s%s of %s revision %d: %s in %.2f s",
                job.kind,
                " (urgent)" if getattr(job, "urgent", False) else "",
                job.uri.rsplit("/", 1)[-1],
                job.revision,
                "stopped" if isinstance(result, Stopped) else "failed" if error else "done",
                time.monotonic() - started,
            )
            if isinstance(result, Stopped):
                continue  # a newer version of the document is queued
            if job.generation != self._load_generation:
                continue  # the models changed under it: what it made belongs to neither
            job.on_done(result, error)

    def _live(self, job: Job) -> bool:
        return job.is_current() and job.generation == self._load_generation

    def _run(self, job: Job) -> FileAnalysis | Confirmation | Stopped:
        if isinstance(job, ConfirmJob):
            return self._confirm(job)
        return self._score(job)

    def _score(self, job: ScoreJob) -> FileAnalysis | Stopped:
        scorer = self.pool.get(job.uri, self.loaded, job.top_k)
        on_partial = None
        if job.on_partial is not None:

            def on_partial(scored) -> None:
                job.on_partial(analyze_scored(scored, job.name, job.language))

        try:
            scored = scorer.score(
                job.text,
                on_partial=on_partial,
                keep_going=lambda: self._live(job) and not self._urgent_waits(job.uri),
            )
        finally:
            self.pool.enforce()
        if scored is None:
            return Stopped()
        return analyze_scored(scored, job.name, job.language)

    def _confirm(self, job: ConfirmJob) -> Confirmation | Stopped:
        """The judge's verdicts of ``job.lines``, through the analysis's one confirmation
        entry point (which also answers for a judge without fill-in-the-middle tokens). It
        stops between lines (keeping those done) when the document moves on or scoring
        waits."""
        loaded, judge = self.loaded, self.judge
        if judge is None:  # a new load took it: the job is from an older generation
            return Stopped()
        try:
            return confirm(
                judge,
                loaded,
                job.analysis,
                job.lines,
                # Yield to any scoring job; the server queues the rest again.
                keep_going=lambda: self._live(job) and not self._scoring_waits(),
                # The user waits for an urgent verdict: larger pieces run faster (each pass
                # streams all weights), a new edit's scoring waits longer for one.
                piece_tokens=URGENT_PIECE_TOKENS if job.urgent else JUDGE_PIECE_TOKENS,
                suggest=not job.urgent,
            )
        finally:
            self._judge_used = time.monotonic()


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

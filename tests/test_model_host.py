"""The model host: the last-edited document first, stale work dropped, closed documents freed."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from lossmap.analysis.models.roles import ModelRoles
from lossmap.server.model_host import ConfirmJob, ModelHost, ScoreJob

TEXT = "def f(x):\n    return x + 1\n" * 20


@pytest.fixture(autouse=True)
def _unfrozen_heap():
    """The host freezes the heap (as the server process should); give this test process's
    later tests their garbage collector back."""
    yield
    gc.unfreeze()


def job(uri: str, priority: float, done: list, current=lambda: True, text: str = TEXT):
    finished = threading.Event()

    def on_done(value, error):
        done.append((uri, value, error))
        finished.set()

    j = ScoreJob(
        uri=uri,
        revision=1,
        text=text,
        name=uri + ".py",
        language=None,
        priority=priority,
        is_current=current,
        on_done=on_done,
    )
    return j, finished


def loaded_host(tiny_model_dir) -> ModelHost:
    host = ModelHost()
    ready = threading.Event()
    host.load(
        ModelRoles(str(tiny_model_dir), None), "cpu", lambda *a: None, lambda error: ready.set()
    )
    assert ready.wait(60) and host.state == "ready"
    return host


def test_the_last_edited_document_is_scored_first(tiny_model_dir):
    host = ModelHost()
    done: list = []
    old, _ = job("file:///old", 1.0, done)
    new, _ = job("file:///new", 2.0, done)
    last, finished = job("file:///older", 0.5, done)
    with host._cv:  # nothing runs until all three are queued
        host.load(ModelRoles(str(tiny_model_dir), None), "cpu", lambda *a: None, lambda error: None)
        for j in (old, new, last):
            j.generation = host.generation
            host.submit(j)
    assert finished.wait(60)
    assert [uri for uri, _, _ in done] == ["file:///new", "file:///old", "file:///older"]
    assert all(value is not None and error is None for _, value, error in done)


def test_a_job_whose_document_moved_on_stops_and_its_work_is_kept(tiny_model_dir):
    host = loaded_host(tiny_model_dir)
    done: list = []
    checks = []

    def current() -> bool:  # stale after the first piece of work
        checks.append(1)
        return len(checks) <= 2

    long_text = TEXT * 30  # several windows' worth of pieces
    stale, _ = job("file:///doc", 1.0, done, current, long_text)
    fresh, finished = job("file:///doc", 2.0, done, text=long_text)
    stale.generation = fresh.generation = host.generation
    host.submit(stale)
    threading.Timer(0.5, host.submit, (fresh,)).start()
    assert finished.wait(60)
    assert len(done) == 1  # the stale job published nothing
    scorer = host.pool.get("file:///doc", host.loaded, 5)
    assert scorer.last_run.reused > 0  # the fresh job resumed where the stale one stopped


def test_closing_a_document_forgets_its_scorer(tiny_model_dir):
    host = loaded_host(tiny_model_dir)
    done: list = []
    j, finished = job("file:///a", 1.0, done)
    j.generation = host.generation
    host.submit(j)
    assert finished.wait(60)
    assert "file:///a" in host.pool and host.pool.cache_bytes > 0
    host.discard("file:///a")
    assert "file:///a" not in host.pool and host.pool.cache_bytes == 0


def test_the_judge_confirms_and_is_freed_when_idle_then_loaded_again(fim_model_dirs):
    live_dir, twin_dir, _ = fim_model_dirs
    host = ModelHost(judge_idle_seconds=1.0)
    judged = threading.Event()
    host.load(
        ModelRoles(str(live_dir), str(twin_dir)),
        "cpu",
        lambda *a: None,
        lambda error: None,
        lambda error: judged.set(),
    )
    assert judged.wait(60)
    with host._cv:  # the idle release may come any time after the load (a busy machine)
        assert host.judge_state == "ready" and host.judge is not host.loaded
        first_judge = weakref.ref(host.judge.model)
    assert gc.get_freeze_count() > 0  # loading froze what it left, out of the GC's walks

    analysis = _scored(host)

    def confirm():
        done: list = []
        host.submit(_confirm_job(host, analysis, done, lines=(1, 2)))
        deadline = time.monotonic() + 60
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
        confirmation, error = done[-1]
        assert error is None
        name, lines = confirmation.judge, confirmation.lines
        assert name == str(twin_dir) and set(lines) == {1, 2}
        assert not lines[1].line_level  # one tokenizer: per-token numbers

    confirm()
    deadline = time.monotonic() + 10
    while host.judge_state != "freed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.judge_state == "freed" and host.judge is None
    assert first_judge() is None  # released (the heap froze after loading)
    assert host.loaded is not None  # the live model stays
    confirm()  # loads the judge again
    assert host.judge_state == "ready"


def _confirm_job(
    host: ModelHost, analysis, done: list, current=lambda: True, lines=(1, 2, 3, 4)
) -> ConfirmJob:
    return ConfirmJob(
        uri="file:///a",
        revision=1,
        priority=2.0,
        is_current=current,
        on_done=lambda value, error: done.append((value, error)),
        analysis=analysis,
        lines=lines,
        generation=host.generation,
    )


def _scored(host: ModelHost) -> object:
    done: list = []
    score, finished = job("file:///a", 1.0, done)
    score.generation = host.generation
    host.submit(score)
    assert finished.wait(60)
    return done[-1][1]


def test_a_freed_judge_that_fails_to_load_again_is_reported(fim_model_dirs, tmp_path):
    import shutil

    live_dir, twin_dir, _ = fim_model_dirs
    judge_dir = shutil.copytree(twin_dir, tmp_path / "judge")
    host = ModelHost(judge_idle_seconds=0.3)
    judge_done: list = []
    loaded = threading.Event()
    host.load(
        ModelRoles(str(live_dir), str(judge_dir)),
        "cpu",
        lambda *a: None,
        lambda error: None,
        lambda error: (judge_done.append(error), loaded.set()),
    )
    assert loaded.wait(60) and judge_done == [None]
    analysis = _scored(host)
    deadline = time.monotonic() + 10
    while host.judge_state != "freed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.judge_state == "freed"
    for weights in judge_dir.glob("*.safetensors"):
        weights.unlink()  # the judge can no longer load
    done: list = []
    host.submit(_confirm_job(host, analysis, done))
    deadline = time.monotonic() + 60
    while len(judge_done) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(judge_done) == 2 and judge_done[1], "the failed reload was not reported"
    assert host.judge_state == "failed"
    assert not host.pending("file:///a")  # the confirmation that can never run is dropped
    assert done == []


def test_freeing_the_idle_judge_collects_garbage_outside_the_host_lock(fim_model_dirs, monkeypatch):
    from lossmap.server import model_host

    live_dir, twin_dir, _ = fim_model_dirs
    host = ModelHost(judge_idle_seconds=0.3)
    held: list[bool] = []
    real_settle = model_host._settle_heap

    def settle(full: bool) -> None:
        held.append(host._cv._is_owned())
        real_settle(full)

    monkeypatch.setattr(model_host, "_settle_heap", settle)
    loaded = threading.Event()
    host.load(
        ModelRoles(str(live_dir), str(twin_dir)),
        "cpu",
        lambda *a: None,
        lambda error: None,
        lambda error: loaded.set(),
    )
    assert loaded.wait(60)
    deadline = time.monotonic() + 10
    while host.judge_state != "freed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.judge_state == "freed"
    time.sleep(0.2)
    assert held and not any(held), "a full collection ran while holding the host's lock"


def test_a_confirmation_cut_short_by_a_model_change_delivers_nothing(fim_model_dirs):
    live_dir, twin_dir, _ = fim_model_dirs
    host = ModelHost()
    roles = ModelRoles(str(live_dir), str(twin_dir))
    loaded = threading.Event()
    host.load(roles, "cpu", lambda *a: None, lambda error: None, lambda error: loaded.set())
    assert loaded.wait(60)
    analysis = _scored(host)
    reloaded = threading.Event()
    checks: list[int] = []

    def current() -> bool:  # the user picks another model while the judge works
        checks.append(1)
        if len(checks) == 2:
            host.load(roles, "cpu", lambda *a: None, lambda e: None, lambda e: reloaded.set())
        return True

    done: list = []
    host.submit(_confirm_job(host, analysis, done, current))
    assert reloaded.wait(60)
    _scored(host)  # one worker: once this ran, the confirmation has finished
    assert len(checks) >= 2
    assert done == [], "verdicts made before the model change were delivered"


def test_scoring_gives_way_to_an_urgent_confirmation_and_keeps_its_work(fim_model_dirs):
    """The server confirms an edited line from the provisional result: the document's scoring
    stops for it (nothing delivered), the judge runs, and scoring queued again resumes."""
    live_dir, twin_dir, _ = fim_model_dirs
    host = ModelHost()
    judged = threading.Event()
    host.load(
        ModelRoles(str(live_dir), str(twin_dir)),
        "cpu",
        lambda *a: None,
        lambda error: None,
        lambda error: judged.set(),
    )
    assert judged.wait(60) and host.judge_state == "ready"
    first = _scored(host)  # the document as it was; then an edit near the top
    edited_text = TEXT.replace("x + 1", "x + 2", 1) * 30
    done: list = []
    events: list[str] = []
    confirmed: list = []

    def on_partial(analysis) -> None:  # on the worker, as the server's would be queued
        events.append("partial")
        urgent = _confirm_job(host, analysis, confirmed, lines=(2,))
        urgent.urgent = True
        host.submit(urgent)

    score, _ = job("file:///a", 1.0, done, text=edited_text)
    score.on_partial, score.generation = on_partial, host.generation
    host.pool.get("file:///a", host.loaded, 5).score(first.scored.text)
    host.submit(score)
    deadline = time.monotonic() + 60
    while not confirmed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert events == ["partial"] and not done  # the scoring stopped for the judge
    confirmation, error = confirmed[0]
    assert error is None and set(confirmation.lines) == {2}
    again, finished = job("file:///a", 1.0, done, text=edited_text)
    again.generation = host.generation
    host.submit(again)
    assert finished.wait(60) and done[-1][2] is None
    assert host.pool.get("file:///a", host.loaded, 5).last_run.reused > 0


def test_a_partial_result_is_handled_on_the_event_loop_before_scoring_goes_on():
    """The scorer hands a partial result to the event loop and waits until it is handled:
    an urgent confirmation it queues is then in place before the scorer's next piece."""
    import asyncio
    from types import SimpleNamespace

    from lossmap.server.scheduling import _hand_over_and_wait

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        handled: list[str] = []

        def handle() -> None:
            time.sleep(0.2)  # the loop takes a while (publishing the partial result)
            handled.append(threading.current_thread().name)

        _hand_over_and_wait(SimpleNamespace(loop=loop), handle)
        assert handled == [thread.name]  # ran on the loop, and before the call returned
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()

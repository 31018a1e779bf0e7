"""The model host: the last-edited document first, stale work dropped, closed documents freed."""

from __future__ import annotations

import threading

from lossmap.server.model_host import ModelHost, ScoringJob

TEXT = "def f(x):\n    return x + 1\n" * 20


def job(uri: str, priority: float, done: list, current=lambda: True, text: str = TEXT):
    finished = threading.Event()

    def on_done(value, error):
        done.append((uri, value, error))
        finished.set()

    j = ScoringJob(
        uri=uri,
        version=1,
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
    host.load(str(tiny_model_dir), "cpu", lambda *a: None, lambda error: ready.set())
    assert ready.wait(60) and host.state == "ready"
    return host


def test_the_last_edited_document_is_scored_first(tiny_model_dir):
    host = ModelHost()
    done: list = []
    old, _ = job("file:///old", 1.0, done)
    new, _ = job("file:///new", 2.0, done)
    last, finished = job("file:///older", 0.5, done)
    with host._cv:  # nothing runs until all three are queued
        host.load(str(tiny_model_dir), "cpu", lambda *a: None, lambda error: None)
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

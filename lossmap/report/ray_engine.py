"""Corpus scoring on Ray (``lossmap report --engine ray``): each worker holds one model.

The driver reads files and keeps the cache, exactly as the local engine does; workers only
turn (name, text) into a :class:`FileRecord`. ``ray.init()`` joins the cluster named by
``RAY_ADDRESS`` or starts a local one. Install with ``pip install 'lossmap[ray]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..analysis.errors import InputError


class _Worker:
    """A Ray actor body: loads the model once, then scores files on request."""

    def __init__(
        self,
        spec: str,
        device: str,
        trust_remote_code: bool,
        window: int | None,
        runtime: str = "auto",
    ):
        from ..analysis import load_model

        self.loaded = load_model(
            spec, device=device, trust_remote_code=trust_remote_code, runtime=runtime
        )
        self.window = window

    def score(self, name: str, text: str) -> dict[str, Any]:
        from ..analysis import analyze_text
        from .records import file_record

        analysis = analyze_text(self.loaded, text, name=name, window=self.window)
        return file_record(analysis, name).to_json()


def ray_records(
    spec: str,
    device: str,
    trust_remote_code: bool,
    window: int | None,
    todo: list[tuple[str, str]],
    workers: int,
    on_done: Callable[[str, dict[str, Any]], None],
    runtime: str = "auto",
) -> None:
    """Score ``todo`` (name, text) on ``workers`` Ray actors, each model in ``runtime``;
    ``on_done(name, record json)`` as each finishes (in completion order)."""
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'lossmap[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        actor = ray.remote(num_cpus=0)(_Worker)  # CPU threads are torch's to manage
        pool = [
            actor.remote(spec, device, trust_remote_code, window, runtime) for _ in range(workers)
        ]
        pending: dict[Any, str] = {}
        queue: Iterator[tuple[str, str]] = iter(todo)
        for w in pool:  # one file in flight per worker: results come back as they finish
            _submit(w, queue, pending)
        owner = {ref: w for ref, w in zip(pending, pool, strict=False)}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ref)
            worker = owner.pop(ref)
            on_done(name, ray.get(ref))
            new = _submit(worker, queue, pending)
            if new is not None:
                owner[new] = worker
    finally:
        if started:
            ray.shutdown()


def _submit(worker, queue: Iterator[tuple[str, str]], pending: dict) -> Any:
    job = next(queue, None)
    if job is None:
        return None
    ref = worker.score.remote(*job)
    pending[ref] = job[0]
    return ref

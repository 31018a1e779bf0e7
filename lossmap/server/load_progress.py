"""The ``$/progress`` of one model load: created, begun, reported, ended exactly once."""

from __future__ import annotations

import asyncio
import time

from lsprotocol import types
from pygls.lsp.server import LanguageServer

#: Seconds between two progress reports (at most 4 a second).
REPORT_INTERVAL = 0.25


class LoadProgress:
    """The client's progress bar for one model load, when the client supports one.

    One task owns begin and end, so a load that ends (or fails) before the client granted
    the token still ends its progress once granted: otherwise the client spins forever.
    :meth:`report` may be called from any thread; :meth:`end` on the event loop.
    """

    def __init__(
        self,
        server: LanguageServer,
        loop: asyncio.AbstractEventLoop,
        title: str,
        enabled: bool,
    ) -> None:
        self.token = f"lossmap-load-{time.monotonic_ns()}"
        self._server = server
        self._loop = loop
        self._title = title
        self._enabled = enabled
        self._ended = asyncio.Event()
        self._outcome = ""
        self._last_report = 0.0

    def start(self) -> None:
        """Ask the client for the token, then begin; the end waits for :meth:`end`."""
        if self._enabled:
            self._loop.create_task(self._lifecycle())

    async def _lifecycle(self) -> None:
        progress = self._server.work_done_progress
        try:
            await progress.create_async(self.token)
        except Exception:  # the client refused a progress token: carry on without
            return
        progress.begin(
            self.token,
            types.WorkDoneProgressBegin(title=self._title, message="starting", percentage=0),
        )
        await self._ended.wait()
        progress.end(self.token, types.WorkDoneProgressEnd(message=self._outcome))

    def report(self, description: str, done: float, total: float | None) -> None:
        """A ``ProgressFn`` for the load (called on its thread); throttled, nothing once
        ended."""
        now = time.monotonic()
        if not self._enabled or self._ended.is_set() or now - self._last_report < REPORT_INTERVAL:
            return
        self._last_report = now
        pct = int(100 * done / total) if total else None
        self._loop.call_soon_threadsafe(
            self._server.work_done_progress.report,
            self.token,
            types.WorkDoneProgressReport(message=description, percentage=pct),
        )

    def end(self, message: str) -> None:
        """End the progress with ``message`` ("ready on cpu", "failed", "superseded ...");
        only the first call counts."""
        if not self._ended.is_set():
            self._outcome = message
            self._ended.set()

"""Progress on stderr for work that takes more than a second; silent when not a TTY."""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

#: Nothing is drawn for work that finishes faster than this.
SHOW_AFTER_S = 1.0


class StderrProgress(AbstractContextManager):
    """A progress callback ``(description, completed, total)`` drawn lazily on stderr."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task = None

    def __call__(self, description: str, completed: float, total: float | None) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            if time.monotonic() - self.started < SHOW_AFTER_S:
                return
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),  # file names are not markup
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(description, total=total)
        self._progress.update(self._task, description=description, completed=completed, total=total)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

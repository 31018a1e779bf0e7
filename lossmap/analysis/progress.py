"""The progress callback every long step accepts: ``progress(what, done, total)``.

``what`` says what is under way in words for a user ("scoring", "assembling default");
``done`` and ``total`` are in the step's own unit (tokens, bytes, lines); ``total`` is None
when unknown.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, float, float | None], None]

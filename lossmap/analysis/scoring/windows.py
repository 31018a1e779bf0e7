"""Sliding windows for sequences longer than the model's context.

Window k covers tokens ``[start, end)`` and scores ``[score_from, end)``. The first window
scores from its start; each later window starts ``min_context`` tokens before the previous
window's end, so every token is scored exactly once and, past the first window, with at
least ``min_context`` tokens of left context.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Default geometry (tokens). Past the first window, every scored token sees at least
#: ``DEFAULT_MIN_CONTEXT`` tokens of code before it.
DEFAULT_WINDOW = 2048
DEFAULT_MIN_CONTEXT = 512


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    score_from: int


def plan_windows(n_tokens: int, window: int, min_context: int) -> list[Window]:
    """Windows covering ``n_tokens`` tokens; each token is scored by exactly one window."""
    if window < 2:
        raise ValueError("window must hold at least 2 tokens")
    if not 1 <= min_context < window:
        # A window's first token has nothing before it: it can only be scored as context.
        raise ValueError("min_context must be in [1, window)")
    windows: list[Window] = []
    if n_tokens <= 0:
        return windows
    end = min(window, n_tokens)
    windows.append(Window(0, end, 0))
    while end < n_tokens:
        start = end - min_context
        new_end = min(start + window, n_tokens)
        windows.append(Window(start, new_end, end))
        end = new_end
    return windows

"""The one line ranking: a file's lines (the editor, ``scan``) and lines of many files
against each other (``diff``, ``report``) are ordered by the same rule.

Of the causal top ``confirm_k`` lines, those the judge confirmed two-sided come first, ordered
by their combined margin; every other line follows by its causal verdict. The causal top lines
were the most suspicious to begin with; lines confirmed only because they were just edited
keep their causal place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from .lines import LineSummary
from .two_sided import TwoSidedLine

T = TypeVar("T")


def rank(
    items: Sequence[T],
    verdict: Callable[[T], float],
    combined: Callable[[T], float | None],
    confirm_k: int,
) -> list[T]:
    """``items`` most surprising first: ``verdict`` is an item's causal margin, ``combined``
    its two-sided combined margin (None when not confirmed). Ties keep the input order."""
    causal = sorted(items, key=lambda item: -verdict(item))
    lead = {id(item): c for item in causal[:confirm_k] if (c := combined(item)) is not None}

    def key(item: T) -> tuple[int, float]:
        return (0, -lead[id(item)]) if id(item) in lead else (1, -verdict(item))

    return sorted(items, key=key)


def rank_lines(
    lines: list[LineSummary],
    top: int | None = None,
    confirmed: Mapping[int, TwoSidedLine] | None = None,
    confirm_k: int = 0,
) -> list[LineSummary]:
    """A file's lines with a verdict, most surprising first (``confirmed``: line -> the
    judge's verdict; ``confirm_k``: how many causal top lines the judge covered)."""
    confirmed = confirmed or {}
    ranked = rank(
        [ln for ln in lines if ln.verdict is not None],
        lambda ln: ln.verdict,
        lambda ln: confirmed[ln.line].combined if ln.line in confirmed else None,
        confirm_k,
    )
    return ranked if top is None else ranked[:top]

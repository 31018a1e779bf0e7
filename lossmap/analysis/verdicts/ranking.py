"""The one line ranking: a file's lines (the editor's diagnostics, ``scan``) and lines of many
files against each other (``diff``, ``report``) are ordered by the same rule.

A line's verdict is its causal verdict until the judge has looked at it; from then on it is
the judge's combined verdict (per code token the smaller of the causal and two-sided margins,
the max over the line). Lines are ranked by that verdict, most surprising first. So a line
the judge cleared (the code after it explains it) sinks to where its combined verdict puts
it, below every line still waiting for the judge with a higher causal verdict.

What is shown (the editor's diagnostics, ``diff``'s lines) is the ranking filtered by
:func:`shown`: a confirmed line when its combined verdict reaches the threshold plus
``confirmed_extra`` (the editor: ``CONFIRMED_EXTRA_BITS``; ``diff``: none), a line the judge
has not confirmed only when its causal verdict reaches ``UNCONFIRMED_EXTRA_BITS`` more (the
causal view alone is wrong far more often: 45 clean lines per 1,000 reach 10 bits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from .levels import UNCONFIRMED_EXTRA_BITS
from .lines import LineSummary
from .two_sided import TwoSidedLine

T = TypeVar("T")


def final_verdict(causal: float, combined: float | None) -> float:
    """A line's verdict: the judge's combined verdict once it has one, else the causal."""
    return causal if combined is None else combined


def shown(
    causal: float,
    combined: float | None,
    threshold: float,
    extra: float = UNCONFIRMED_EXTRA_BITS,
    confirmed_extra: float = 0.0,
) -> bool:
    """Whether a line is shown (a diagnostic, a line of ``diff``): the judge's combined
    verdict reaches ``threshold + confirmed_extra``, or, while the judge has not confirmed the
    line, its causal verdict reaches ``threshold + extra``."""
    if combined is not None:
        return combined >= threshold + confirmed_extra
    return causal >= threshold + extra


def cleared(causal: float, combined: float | None, threshold: float) -> bool:
    """Whether the judge cleared a line: its causal verdict reached ``threshold``, its
    combined verdict does not (the code after it explains it)."""
    return combined is not None and combined < threshold <= causal


def rank(
    items: Sequence[T],
    verdict: Callable[[T], float],
    combined: Callable[[T], float | None],
) -> list[T]:
    """``items`` most surprising first by :func:`final_verdict`: ``verdict`` is an item's
    causal verdict, ``combined`` its two-sided combined verdict (None when not confirmed).
    Ties keep the input order."""
    return sorted(items, key=lambda item: -final_verdict(verdict(item), combined(item)))


def rank_lines(
    lines: list[LineSummary],
    top: int | None = None,
    confirmed: Mapping[int, TwoSidedLine] | None = None,
) -> list[LineSummary]:
    """A file's lines with a verdict, most surprising first (``confirmed``: line -> the
    judge's verdict)."""
    confirmed = confirmed or {}
    ranked = rank(
        [ln for ln in lines if ln.verdict is not None],
        lambda ln: ln.verdict,
        lambda ln: confirmed[ln.line].combined if ln.line in confirmed else None,
    )
    return ranked if top is None else ranked[:top]

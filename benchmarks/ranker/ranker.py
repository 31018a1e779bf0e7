"""An experimental learned line ranker: a linear score over a line's features (``features.py``).

Trained by ``train.py`` on synthetic bugs planted in code outside every benchmark
(``data.py``), written as JSON (features, standardisation, weights, and the threshold
calibrated on that corpus's clean lines; ``ranker.json`` here by default). A line's score is
put on the verdicts' scale: ``DIAGNOSTIC_THRESHOLD + (score - threshold) / ln 2``, i.e. the
calibrated threshold sits at the default diagnostic threshold and one bit more means twice
the odds of holding the bug, as the ranker sees it. Linear, so that each feature's share of a
line's score can be named (``contributions``, ``why``). Not shipped: on real bugs it ranked no
better than the product's rule (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from features import FEATURES

from lossmap.analysis.verdicts.levels import DIAGNOSTIC_THRESHOLD

#: Where ``train.py --write`` puts the ranker by default.
RANKER_FILE = Path(__file__).with_name("ranker.json")

#: What each feature means, for "why this line" texts.
DESCRIPTIONS = {
    "verdict": "its most surprising token",
    "second": "a second surprising token",
    "sum_pos": "surprise spread over the line",
    "n_surprising": "several surprising tokens",
    "mean_surprise": "the line's mean surprise",
    "max_entropy": "an uncertain model",
    "n_tokens": "a long line",
    "relative": "more surprising than the rest of its definition",
    "name_max": "a surprising name",
    "symbol_max": "a surprising operator or keyword",
    "literal_max": "a surprising literal",
    "bound_share": "names being bound",
    "has_prose": "strings or comments",
    "header": "a definition's first line",
}


@dataclass(frozen=True)
class LineRanker:
    """A trained linear ranker (see the module docstring) over ``features``, a subset of
    ``features.FEATURES``; it reads full feature vectors (``FEATURES`` order)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]
    threshold: float
    version: int = 1

    @cached_property
    def _columns(self) -> tuple[int, ...]:
        return tuple(FEATURES.index(name) for name in self.features)

    def _terms(self, values: tuple[float, ...]) -> list[float]:
        """Each feature's share of the raw score (nats)."""
        return [
            w * (values[k] - m) / s
            for k, w, m, s in zip(self._columns, self.weights, self.mean, self.std, strict=True)
        ]

    def raw(self, values: tuple[float, ...]) -> float:
        """The ranker's score (log-odds, nats)."""
        return sum(self._terms(values))

    def verdict(self, values: tuple[float, ...]) -> float:
        """The score on the verdicts' scale (bits; the calibrated threshold at the default
        diagnostic threshold)."""
        return DIAGNOSTIC_THRESHOLD + (self.raw(values) - self.threshold) / math.log(2)

    def contributions(self, values: tuple[float, ...]) -> list[tuple[str, float]]:
        """(feature, bits it adds to the verdict relative to an average line), largest
        first."""
        parts = [
            (name, t / math.log(2))
            for name, t in zip(self.features, self._terms(values), strict=True)
        ]
        return sorted(parts, key=lambda p: -p[1])

    def why(self, values: tuple[float, ...], top: int = 2) -> str:
        """The features that raised this line most, in words."""
        parts = [DESCRIPTIONS.get(n, n) for n, c in self.contributions(values)[:top] if c > 0]
        return ", ".join(parts) if parts else "nothing stands out"


def ranker_from_json(data: dict) -> LineRanker:
    """A ranker from its file's contents; refuses one that uses a feature this code does not
    compute."""
    features = tuple(data["features"])
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(
            f"line ranker file uses features {unknown} that are not computed"
            f" ({', '.join(FEATURES)}): retrain it (benchmarks/ranker/train.py)"
        )
    n = len(features)
    if not all(len(data[k]) == n for k in ("mean", "std", "weights")):
        raise ValueError("line ranker file: mean, std and weights must match its features")
    return LineRanker(
        features=features,
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        weights=tuple(data["weights"]),
        threshold=float(data["threshold"]),
        version=int(data.get("version", 1)),
    )


def load_ranker(path: Path = RANKER_FILE) -> LineRanker | None:
    """The ranker in ``path``; None when there is none."""
    if not path.exists():
        return None
    return ranker_from_json(json.loads(path.read_text(encoding="utf-8")))

"""Server settings: from initializationOptions, workspace/configuration, didChangeConfiguration.

Keys are camelCase in JSON (``displayThreshold``); unknown keys and bad values are reported
and the previous value is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..analysis.models.runtime import RUNTIMES, runtime_name
from ..analysis.scoring.scorer_pool import DEFAULT_CACHE_BUDGET_MB
from ..analysis.verdicts.levels import (
    CONFIRMED_EXTRA_BITS,
    DEFAULT_DISPLAY_THRESHOLD,
    DIAGNOSTIC_THRESHOLD,
    UNCONFIRMED_EXTRA_BITS,
)
from ..analysis.verdicts.two_sided import DEFAULT_CONFIRM

SEVERITIES = ("error", "warning", "information", "hint")
#: Alternatives kept per token: each costs every token a top-k over the vocabulary and a
#: row in every hover; the CLI has the same bound.
MAX_TOP_K = 100


@dataclass(frozen=True)
class ServerConfig:
    """Everything a user can set; see the README's server section."""

    #: The live model; "auto": default-large on a GPU, default elsewhere.
    model: str = "auto"
    #: The judge: "auto" (default-large with the default live model), "same", "none", a spec.
    judge: str = "auto"
    #: Seconds without confirmations after which the judge (when not the live model) is freed;
    #: 0 keeps it resident.
    judge_idle_seconds: int = 900
    device: str = "auto"
    #: How models compute on a CPU: auto, float32 or bfloat16-matmuls (see README).
    runtime: str = "auto"
    #: Tokens at or above this surprise (bits) get a semantic token / heat-map colour.
    display_threshold: float = DEFAULT_DISPLAY_THRESHOLD
    #: Code tokens whose margin (bits) reaches this become "model is confused here" (plus
    #: the extra bits below), and lines whose causal verdict reaches it are the judge's
    #: candidates.
    diagnostic_threshold: float = DIAGNOSTIC_THRESHOLD
    #: Bits more a token's causal margin needs while the judge has not confirmed its line.
    unconfirmed_extra_bits: float = UNCONFIRMED_EXTRA_BITS
    #: Bits more a token's combined margin needs once the judge confirmed its line.
    confirmed_extra_bits: float = CONFIRMED_EXTRA_BITS
    max_diagnostics: int = 10
    diagnostic_severity: str = "information"
    #: Half-typed code is always surprising; by default it produces no diagnostics.
    diagnostics_in_error_regions: bool = False
    debounce_ms: int = 300
    #: Larger documents are not scored (a message says so); their highlights are cleared.
    max_file_bytes: int = 1_000_000
    #: LSP language ids to score; empty means every language.
    languages: tuple[str, ...] = field(default_factory=tuple)
    top_k: int = 5
    #: After each re-score, confirm this many of the most suspicious lines two-sided
    #: (fill-in-the-middle), plus the lines around the last edit; 0 turns it off.
    confirm_lines: int = DEFAULT_CONFIRM
    #: Lines above and below the last edit that are confirmed too (first, before the top).
    confirm_around_edit: int = 1
    #: Then confirm, in the background, every other line whose causal verdict reaches
    #: ``diagnostic_threshold``: each diagnostic shown is then the judge's.
    confirm_candidates: bool = True
    #: Memory for the KV caches of all open documents (MiB); least recently edited
    #: documents lose theirs first. 0 keeps none: every edit re-runs its whole window.
    cache_budget_mb: int = DEFAULT_CACHE_BUDGET_MB


_CAMEL = {
    "model": "model",
    "judge": "judge",
    "judgeIdleSeconds": "judge_idle_seconds",
    "device": "device",
    "runtime": "runtime",
    "displayThreshold": "display_threshold",
    "diagnosticThreshold": "diagnostic_threshold",
    "unconfirmedExtraBits": "unconfirmed_extra_bits",
    "confirmedExtraBits": "confirmed_extra_bits",
    "maxDiagnostics": "max_diagnostics",
    "diagnosticSeverity": "diagnostic_severity",
    "diagnosticsInErrorRegions": "diagnostics_in_error_regions",
    "debounceMs": "debounce_ms",
    "maxFileBytes": "max_file_bytes",
    "languages": "languages",
    "topK": "top_k",
    "confirmLines": "confirm_lines",
    "confirmAroundEdit": "confirm_around_edit",
    "confirmCandidates": "confirm_candidates",
    "cacheBudgetMb": "cache_budget_mb",
}


def _check(name: str, value: Any) -> Any:
    """Validated value for field ``name``; raises ValueError with the reason."""
    if name == "runtime":
        runtime = runtime_name(value) if isinstance(value, str) else None
        if runtime is None:
            raise ValueError(f"must be one of {', '.join(RUNTIMES)}")
        return runtime
    if name in ("model", "judge", "device"):
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        return value.strip()
    if name in (
        "display_threshold",
        "diagnostic_threshold",
        "unconfirmed_extra_bits",
        "confirmed_extra_bits",
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError("must be a finite number of bits >= 0")
        return float(value)
    if name in (
        "max_diagnostics",
        "debounce_ms",
        "max_file_bytes",
        "top_k",
        "confirm_lines",
        "confirm_around_edit",
        "cache_budget_mb",
        "judge_idle_seconds",
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("must be an integer >= 0")
        if name == "top_k" and value > MAX_TOP_K:
            raise ValueError(f"must be at most {MAX_TOP_K}")
        return value
    if name == "diagnostic_severity":
        if value not in SEVERITIES:
            raise ValueError(f"must be one of {', '.join(SEVERITIES)}")
        return value
    if name in ("diagnostics_in_error_regions", "confirm_candidates"):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name == "languages":
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of language ids")
        return tuple(value)
    raise ValueError("unknown setting")


def merge_config(base: ServerConfig, raw: Any) -> tuple[ServerConfig, list[str]]:
    """``base`` updated from a JSON object; returns the new config and a list of problems."""
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, ["lossmap settings must be an object"]
    if isinstance(raw.get("lossmap"), dict):  # accept {"lossmap": {...}} as well
        raw = raw["lossmap"]
    known = {f.name for f in fields(ServerConfig)}
    changes: dict[str, Any] = {}
    problems = []
    for key, value in raw.items():
        name = _CAMEL.get(key, key if key in known else None)
        if name is None:
            problems.append(f"unknown setting '{key}'")
            continue
        try:
            changes[name] = _check(name, value)
        except ValueError as err:
            problems.append(f"setting '{key}' {err}; keeping {getattr(base, name)!r}")
    return replace(base, **changes), problems

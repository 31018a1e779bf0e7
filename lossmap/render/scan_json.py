"""The ``lossmap scan --json`` document. Its shape is versioned: see ``docs/scan-json.md``.

Bump ``SCHEMA_VERSION`` on any change that removes or renames a field or changes its meaning;
adding fields keeps the version.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from .. import __version__
from ..analysis import FileAnalysis, LoadedModel

SCHEMA_NAME = "lossmap.scan"
SCHEMA_VERSION = 1
_NATS_PER_BIT = math.log(2.0)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) the document conforms to."""
    return json.loads(resources.files(__package__).joinpath("scan.schema.json").read_text())


def _unit(value: float | None, scale: float) -> float | None:
    return None if value is None else round(value * scale, 6)


def _two_sided_line(ts, k: float) -> dict[str, Any] | None:
    if ts is None:
        return None
    return {
        "margin": _unit(ts.two_sided, k),
        "combined": _unit(ts.combined, k),
        "worst_token": ts.worst_token,
        "suggestion": ts.suggestion,
        "line_level": ts.line_level,
    }


def file_document(analysis: FileAnalysis, unit: str = "bits") -> dict[str, Any]:
    """One file's entry of the document."""
    k = _NATS_PER_BIT if unit == "nats" else 1.0
    text = analysis.scored.text
    line_of = {i: ln.line for ln in analysis.lines for i in ln.token_indices}
    tokens = []
    two_sided_tokens = {i: t for ts in analysis.two_sided.values() for i, t in ts.tokens.items()}
    for tok, syn in zip(analysis.tokens, analysis.syntax, strict=True):
        two = two_sided_tokens.get(tok.index)
        tokens.append(
            {
                "index": tok.index,
                "id": tok.token_id,
                "text": tok.text,
                "start": tok.start,
                "end": tok.end,
                "line": line_of[tok.index],
                "scored": tok.scored,
                "surprise": _unit(tok.surprise, k),
                "probability": tok.probability,
                "rank": tok.rank,
                "entropy": _unit(tok.entropy, k),
                "code_surprise": _unit(tok.code_surprise, k),
                "code_margin": _unit(tok.code_margin, k),
                "kind": syn.kind,
                "node_type": syn.node_type,
                "parent_type": syn.parent_type,
                "path": list(syn.path),
                "label": syn.label,
                "leaf_types": list(syn.leaf_types),
                "in_error": syn.in_error,
                "alternatives": [
                    {"id": a.token_id, "text": a.text, "probability": a.probability}
                    for a in tok.alternatives
                ],
                "two_sided_surprise": _unit(two.surprise, k) if two else None,
                "two_sided_margin": _unit(two.code_margin, k) if two else None,
                "two_sided_expected": two.expected if two else None,
            }
        )
    scored = [t.surprise for t in analysis.tokens if t.surprise is not None]
    mean = sum(scored) / len(scored) if scored else None
    return {
        "path": analysis.name,
        "language": analysis.language,
        "judge": analysis.judge,
        "notes": list(analysis.notes),
        "characters": len(text),
        "token_count": len(analysis.tokens),
        "bos_token": analysis.scored.bos_token,
        "window": analysis.scored.window,
        "min_context": analysis.scored.min_context,
        "mean_surprise": _unit(mean, k),
        "perplexity": None if mean is None else 2.0**mean,
        "tokens": tokens,
        "lines": [
            {
                "line": ln.line,
                "start": ln.start,
                "end": ln.end,
                "token_indices": list(ln.token_indices),
                "mean_surprise": _unit(ln.mean_surprise, k),
                "max_surprise": _unit(ln.max_surprise, k),
                "verdict": _unit(ln.verdict, k),
                "worst_token": ln.worst_token,
                "two_sided": _two_sided_line(analysis.two_sided.get(ln.line), k),
            }
            for ln in analysis.lines
        ],
        "definitions": [
            {
                "name": d.name,
                "kind": d.kind,
                "node_type": d.node_type,
                "start_line": d.start_line,
                "end_line": d.end_line,
                "start": d.start,
                "end": d.end,
                "token_count": d.token_count,
                "mean_surprise": _unit(d.mean_surprise, k),
                "perplexity": d.perplexity,
                "worst_token": d.worst_token,
            }
            for d in analysis.definitions
        ],
        "top_lines": [ln.line for ln in analysis.top_lines()],
    }


def _model(loaded: LoadedModel | None) -> dict[str, Any] | None:
    if loaded is None:
        return None
    return {
        "spec": loaded.name,
        "path": loaded.path,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "precision": loaded.precision,
    }


def scan_document(
    loaded: LoadedModel | None,
    analyses: list[FileAnalysis],
    errors: list[tuple[str, str]],
    unit: str = "bits",
    judge: LoadedModel | None = None,
) -> dict[str, Any]:
    """The whole ``--json`` document for one ``lossmap scan`` run; ``loaded`` is the live
    model, ``judge`` the one that confirmed lines two-sided (None: causal verdicts only)."""
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "lossmap_version": __version__,
        "unit": unit,
        "model": _model(loaded),
        "judge": _model(judge),
        "files": [file_document(a, unit) for a in analyses],
        "errors": [{"path": p, "message": m} for p, m in errors],
    }

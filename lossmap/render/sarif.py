"""SARIF 2.1.0 for ``lossmap diff``: one ``note`` result per surprising changed line.

Code-scanning UIs (GitHub, GitLab, VS Code's SARIF viewer) show these at their lines. Columns
are 1-based UTF-16 code units (the SARIF default ``columnKind``); paths are relative to the
repository root (``%SRCROOT%``).
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..review.review import Review, ReviewedLine

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
RULE_ID = "lossmap/surprising-line"


def _utf16_column(code: str, chars: int) -> int:
    return len(code[:chars].encode("utf-16-le")) // 2 + 1


def _message(ln: ReviewedLine) -> str:
    how = "confirmed two-sided" if ln.confirmed else "causal only"
    msg = f"The model did not expect `{ln.token}` here ({ln.margin:.1f} bits, {how})"
    if ln.expected is not None and ln.expected.strip() != ln.token.strip():
        msg += f"; it expected `{ln.expected.strip()}`"
    if ln.suggestion and ln.suggestion.strip() != ln.code.strip():
        msg += f"; it would write `{ln.suggestion.strip()}`"
    return msg + "."


def _fingerprints(lines: list[ReviewedLine]) -> dict[int, str]:
    """A fingerprint per line (by ``id``) that survives lines moving: the path and the code;
    the second and later copies of the same code in a file, in line order, add ``#n`` so
    code scanning keeps them apart."""
    seen: dict[tuple[str, str], int] = {}
    out: dict[int, str] = {}
    for ln in sorted(lines, key=lambda ln: (ln.path, ln.line)):
        key = (ln.path, ln.code.strip())
        seen[key] = seen.get(key, 0) + 1
        n = seen[key]
        out[id(ln)] = f"{ln.path}:{key[1]}" + (f"#{n}" if n > 1 else "")
    return out


def _result(ln: ReviewedLine, rank: int, fingerprint: str) -> dict[str, Any]:
    start, end = ln.columns
    region: dict[str, Any] = {"startLine": ln.line, "snippet": {"text": ln.code}}
    if end > start:
        region["startColumn"] = _utf16_column(ln.code, start)
        region["endColumn"] = _utf16_column(ln.code, end)
    return {
        "ruleId": RULE_ID,
        "ruleIndex": 0,
        "level": "note",
        "rank": round(min(100.0, ln.margin * 5), 1),  # SARIF ranks are 0-100: 20 bits = 100
        "message": {"text": _message(ln)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": ln.path, "uriBaseId": "%SRCROOT%"},
                    "region": region,
                }
            }
        ],
        "partialFingerprints": {"lossmapLine/v1": fingerprint},
        "properties": {
            "reviewRank": rank,
            "marginBits": round(ln.margin, 3),
            "causalMarginBits": round(ln.causal_margin, 3),
            "twoSidedMarginBits": None if ln.two_sided is None else round(ln.two_sided, 3),
            "surpriseBits": round(ln.surprise, 3),
            "expected": ln.expected,
            "suggestion": ln.suggestion,
        },
    }


def sarif_document(review: Review) -> dict[str, Any]:
    """The review as a SARIF 2.1.0 log with one run."""
    fingerprints = _fingerprints(review.lines)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "lossmap",
                        "version": __version__,
                        "rules": [
                            {
                                "id": RULE_ID,
                                "name": "SurprisingLine",
                                "shortDescription": {
                                    "text": "A changed line the code model found surprising"
                                },
                                "fullDescription": {
                                    "text": "The language model found a token of this changed"
                                    " line much less likely than its own first choice, given"
                                    " the code around it. Surprising code is often a bug, a"
                                    " typo, or code a reader will trip over too."
                                },
                                "defaultConfiguration": {"level": "note"},
                                "help": {
                                    "text": "Check the token against what the model expected;"
                                    " if the code is right, it may deserve a comment."
                                },
                            }
                        ],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "repository root"}}},
                "columnKind": "utf16CodeUnits",
                "automationDetails": {"description": {"text": review.description}},
                "properties": {
                    "model": review.model,
                    "judge": review.judge,
                    "thresholdBits": review.threshold,
                },
                "results": [
                    _result(ln, i, fingerprints[id(ln)])
                    for i, ln in enumerate(review.lines, start=1)
                ],
            }
        ],
    }

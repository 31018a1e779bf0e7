"""A corpus view of scores (the Perplexed paper's analysis): per-file records, then aggregates.

A :class:`FileRecord` keeps, per token, what the corpus tables need (surprise, AST label, node
type, ERROR containment, the callee name when the token names a called function) plus the
file's definitions. It is plain JSON, so finished files can be cached and a long run resumed.
:func:`aggregate` folds records into mean/std/count tables per label, node type and BPE token,
syntactically incorrect vs correct code, and method calls split into internal (the callee is
defined somewhere in the corpus), builtin and external.
"""

from __future__ import annotations

import bisect
import builtins
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..analysis.analyze import FileAnalysis
from ..analysis.syntax.align import LAYOUT, PROSE, find_nodes
from ..analysis.syntax.offsets import char_to_byte_offsets

#: Call node types and, per member-access node type, the field holding the called name.
_CALL_NODES = frozenset(
    {"call", "call_expression", "method_invocation", "invocation_expression", "method_call"}
)
_CALLEE_FIELDS = ("function", "name", "method")
_MEMBER_FIELDS = {
    "attribute": "attribute",  # Python a.b
    "member_expression": "property",  # JavaScript / TypeScript
    "selector_expression": "field",  # Go
    "field_expression": "field",  # Rust, C
    "scoped_identifier": "name",  # Rust a::b
    "member_access_expression": "name",  # C#
}
PYTHON_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))


#: Lines per file kept as candidates for the corpus's "lines to look at".
TOP_LINES_KEPT = 3


@dataclass
class FileRecord:
    """One scored file, reduced to what corpus tables need. Surprises in bits."""

    path: str
    language: str | None
    model: str
    text: list[str]  # token texts
    surprise: list[float | None]
    label: list[str | None]
    node_type: list[str | None]
    kind: list[str]  # code | prose | layout
    in_error: list[bool]
    callee: list[str | None]  # the called name when the token is part of it
    definitions: list[dict[str, Any]]
    defined_names: list[str]
    #: The file's most surprising lines by the causal verdict: {"line", "verdict"} (bits).
    top_lines: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRecord:
        return cls(**data)

    @property
    def scored(self) -> list[float]:
        return [s for s in self.surprise if s is not None]


def _callee_nodes(root: Any) -> list[tuple[Any, str]]:
    """(identifier node, name) of the called name of every call in the tree."""
    out = []
    for call in find_nodes(root, _CALL_NODES):
        target = None
        for name in _CALLEE_FIELDS:
            target = call.child_by_field_name(name)
            if target is not None:
                break
        while target is not None and target.type in _MEMBER_FIELDS:
            target = target.child_by_field_name(_MEMBER_FIELDS[target.type])
        if target is not None and target.child_count == 0 and target.text:
            out.append((target, target.text.decode("utf-8", errors="replace")))
    return out


def file_record(analysis: FileAnalysis, path: str) -> FileRecord:
    """Reduce one analysis to its corpus record."""
    tokens, syntax = analysis.tokens, analysis.syntax
    callee: list[str | None] = [None] * len(tokens)
    parsed = analysis.parsed
    if parsed is not None:
        text = analysis.scored.text
        cores = [t.core_span for t in tokens]
        byte_starts = char_to_byte_offsets(text, [s for s, _ in cores])
        order = sorted(range(len(tokens)), key=byte_starts.__getitem__)
        starts = [byte_starts[i] for i in order]
        for node, name in _callee_nodes(parsed.root):
            lo = bisect.bisect_left(starts, node.start_byte)
            hi = bisect.bisect_left(starts, node.end_byte)
            for k in range(lo, hi):
                i = order[k]
                if cores[i][1] > cores[i][0]:
                    callee[i] = name
    definitions = [
        {
            "name": d.name,
            "kind": d.kind,
            "start_line": d.start_line,
            "end_line": d.end_line,
            "tokens": d.token_count,
            "mean_surprise": d.mean_surprise,
            "perplexity": d.perplexity,
        }
        for d in analysis.definitions
    ]
    return FileRecord(
        path=path,
        language=analysis.language,
        model=analysis.scored.model,
        text=[t.text for t in tokens],
        surprise=[t.surprise for t in tokens],
        label=[s.label for s in syntax],
        node_type=[s.node_type for s in syntax],
        kind=[s.kind for s in syntax],
        in_error=[s.in_error for s in syntax],
        callee=callee,
        definitions=definitions,
        defined_names=sorted({d.name for d in analysis.definitions}),
        top_lines=[
            {"line": ln.line, "verdict": ln.verdict}
            for ln in analysis.causal_top_lines(TOP_LINES_KEPT)
        ],
    )


@dataclass
class Stats:
    """Count, mean and standard deviation by Welford's update; min and max."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)
        self.low, self.high = min(self.low, x), max(self.high, x)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def row(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "mean": round(self.mean, 4),
            "std": round(self.std, 4),
            "min": round(self.low, 4),
            "max": round(self.high, 4),
        }


@dataclass
class CorpusReport:
    """Aggregates over a corpus. Tables map a key to its :class:`Stats` (bits)."""

    files: list[dict[str, Any]]
    labels: dict[str, Stats]
    node_types: dict[str, Stats]
    bpe_tokens: dict[str, Stats]
    syntax_errors: dict[str, Stats]  # "inside ERROR" / "elsewhere"
    calls: dict[str, Stats]  # internal / builtin / external
    definitions: list[dict[str, Any]]  # every definition, most surprising (perplexity) first
    samples: dict[str, list[float]] = field(default_factory=dict)  # label -> surprises

    def ranked(self, table: str, min_count: int, best: bool, n: int = 10) -> list[tuple]:
        """The ``n`` best (lowest mean) or worst entries of ``table`` with enough tokens."""
        rows = [(k, s) for k, s in getattr(self, table).items() if s.count >= min_count]
        rows.sort(key=lambda ks: ks[1].mean, reverse=not best)
        return rows[:n]


def aggregate(records: list[FileRecord]) -> CorpusReport:
    """Fold file records into corpus tables (non-layout, scored tokens only)."""
    internal = {name for r in records for name in r.defined_names}
    labels: dict[str, Stats] = {}
    node_types: dict[str, Stats] = {}
    bpe: dict[str, Stats] = {}
    errors = {"inside ERROR": Stats(), "elsewhere": Stats()}
    calls = {"internal": Stats(), "builtin": Stats(), "external": Stats()}
    samples: dict[str, list[float]] = {}
    files, definitions = [], []
    for r in records:
        scored = r.scored
        mean = sum(scored) / len(scored) if scored else None
        files.append(
            {
                "path": r.path,
                "language": r.language,
                "tokens": len(r.text),
                "mean_surprise": mean,
                "perplexity": 2.0**mean if mean is not None else None,
            }
        )
        definitions += [{"path": r.path, **d} for d in r.definitions]
        for i, s in enumerate(r.surprise):
            if s is None or r.kind[i] == LAYOUT:
                continue
            if r.label[i] is not None:
                labels.setdefault(r.label[i], Stats()).add(s)
                samples.setdefault(r.label[i], []).append(s)
            if r.node_type[i] is not None:
                node_types.setdefault(r.node_type[i], Stats()).add(s)
            bpe.setdefault(r.text[i], Stats()).add(s)
            if r.language is not None:
                errors["inside ERROR" if r.in_error[i] else "elsewhere"].add(s)
            name = r.callee[i]
            if name is not None and r.kind[i] != PROSE:
                if name in internal:
                    kind = "internal"
                elif r.language == "python" and name in PYTHON_BUILTINS:
                    kind = "builtin"
                else:
                    kind = "external"
                calls[kind].add(s)
    definitions.sort(key=lambda d: -(d["perplexity"] or 0.0))
    return CorpusReport(files, labels, node_types, bpe, errors, calls, definitions, samples)

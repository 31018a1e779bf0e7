"""The server's request handlers on a 1 MB minified line, side by side with the old mapping.

A minified JavaScript file is one line of about 1 MB. Every request handler converts character
offsets to LSP positions on that line; the old ``PositionMapper`` re-encoded the line from its
start for every offset (quadratic: 20 s for ``lossmap/documentScores`` on such a file, during
which the server answered nothing). This script scores such a file with a tiny random model
(every token above the display threshold: the worst case for the handlers, whose cost does not
depend on the model), then times, in one run on the same analysis:

1. converting every token's range (as ``documentScores`` did before it was bounded) with the
   old per-offset mapping and with the current mapper: the ratio;
2. each handler's work as the server does it now: ``documentScores`` (bounded, built and
   serialised), semantic tokens (bounded), a hover in the middle of the line, and the
   diagnostics published after scoring.

Goal: every handler well under 100 ms. Usage:
python benchmarks/bench_long_lines.py [--kb 1000] [--encoding utf-16]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from lsprotocol import types

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from lossmap.analysis import load_model  # noqa: E402
from lossmap.analysis.analyze import analyze_text  # noqa: E402
from lossmap.analysis.syntax.offsets import LineIndex  # noqa: E402
from lossmap.server import features  # noqa: E402
from lossmap.server.config import ServerConfig  # noqa: E402
from lossmap.server.positions import PositionMapper  # noqa: E402
from lossmap.server.server import MAX_DOCUMENT_SCORES, MAX_SEMANTIC_TOKENS, server  # noqa: E402

from tiny_model import build_tiny_model  # noqa: E402


class OldMapper:
    """The mapping before issue 15: each offset re-encoded from its line start."""

    def __init__(self, text: str, encoding: str) -> None:
        self.text, self.encoding, self.lines = text, encoding, LineIndex(text)

    def _units(self, s: str) -> int:
        if self.encoding == "utf-8":
            return len(s.encode("utf-8"))
        if self.encoding == "utf-32":
            return len(s)
        return len(s.encode("utf-16-le")) // 2

    def position(self, offset: int) -> types.Position:
        line = self.lines.line_of(offset)
        start = self.lines.line_starts[line]
        return types.Position(line=line, character=self._units(self.text[start:offset]))

    def range(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position(start), end=self.position(end))


def minified(kb: int) -> str:
    """One line of JavaScript, non-ASCII, about ``kb`` kilobytes."""
    items, size = [], 0
    i = 0
    while size < kb * 1000:
        item = f"{{k{i}:'é{i % 97}',v:[{i},{i * 7 % 13}]}}"
        items.append(item)
        size += len(item.encode()) + 1
        i += 1
    return "var data=[" + ",".join(items) + "];\n"


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kb", type=int, default=1000)
    parser.add_argument("--encoding", default="utf-16", choices=["utf-8", "utf-16", "utf-32"])
    args = parser.parse_args()
    model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    loaded = load_model(str(model_dir), device="cpu")
    text = minified(args.kb)
    analysis, seconds = timed(lambda: analyze_text(loaded, text, "data.min.js", "javascript"))
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()}"
        f" threads; input: one line of {len(text.encode()):,} bytes, {len(analysis.tokens):,}"
        f" tokens (tiny random model, scored in {seconds:.0f} s); encoding {args.encoding}"
    )
    spans = [t.core_span for t in analysis.tokens]

    def convert(mapper) -> None:
        for start, end in spans:
            mapper.range(start, end)

    _, old = timed(lambda: convert(OldMapper(text, args.encoding)))
    _, new = timed(lambda: convert(PositionMapper(text, args.encoding)))
    print(f"\nall {len(spans):,} token ranges: old mapping {old:.2f} s, now {new:.3f} s")
    print(f"  ratio old / now: {old / new:.0f}x")

    threshold = ServerConfig().display_threshold
    pieces = features.surprising_pieces(analysis, threshold)

    def document_scores() -> str:
        tokens, _ = features.document_scores(
            analysis, PositionMapper(text, args.encoding), threshold, limit=MAX_DOCUMENT_SCORES
        )
        return json.dumps(server.protocol._converter.unstructure({"tokens": tokens}))

    def semantic_tokens() -> list[int]:
        return features.encode_semantic_tokens(
            pieces[:MAX_SEMANTIC_TOKENS], PositionMapper(text, args.encoding)
        )

    def hover() -> str:
        mapper = PositionMapper(text, args.encoding)
        position = mapper.position(len(text) // 2)
        assert mapper.inside(position)
        index = analysis.token_at(mapper.offset(position))
        return features.hover_markdown(analysis, index)

    def diagnostics(threshold: float) -> list:
        return features.diagnostics(
            analysis,
            PositionMapper(text, args.encoding),
            ServerConfig(diagnostic_threshold=threshold),
        )

    print(f"\nrequest handlers (best of 3; {len(pieces):,} surprising pieces)")
    for name, fn in [
        (f"documentScores (first {MAX_DOCUMENT_SCORES:,}, serialised)", document_scores),
        (f"semantic tokens full (first {MAX_SEMANTIC_TOKENS:,} pieces)", semantic_tokens),
        ("hover in the middle of the line", hover),
        (
            "diagnostics after scoring, threshold 0.5 bits (most tokens pass)",
            lambda: diagnostics(0.5),
        ),
        ("diagnostics after scoring, default threshold (10 bits)", lambda: diagnostics(10.0)),
    ]:
        best = min(timed(fn)[1] for _ in range(3))
        print(f"  {name}: {best * 1000:.1f} ms")


if __name__ == "__main__":
    main()

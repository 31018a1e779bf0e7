"""The server's pure pieces: diagnostics rules, semantic-token shape, positions, settings."""

from __future__ import annotations

from dataclasses import replace

from lsprotocol import types

from lossmap.analysis import analyze_text
from lossmap.analysis.verdicts.lines import counted_margin
from lossmap.server import features
from lossmap.server.config import ServerConfig, merge_config
from lossmap.server.positions import PositionMapper
from lossmap.server.text_shift import TextShift

from lsp_helpers import decode_tokens, units_slice

HALF_TYPED = "def ok(x):\n    return x + 1\n\ndef broken(y:\n    return y +\n"


def test_no_diagnostics_inside_syntax_errors_unless_asked(tiny):
    analysis = analyze_text(tiny, HALF_TYPED, "half.py")
    mapper = PositionMapper(HALF_TYPED)
    everything = replace(
        ServerConfig(), diagnostic_threshold=0.0, unconfirmed_extra_bits=0.0, max_diagnostics=1000
    )
    default = features.diagnostics(analysis, mapper, everything)
    in_error = [i for i, s in enumerate(analysis.syntax) if s.in_error and s.kind == "code"]
    assert in_error
    flagged = {d.data["token"] for d in default}
    assert not flagged & set(in_error)
    with_errors = features.diagnostics(
        analysis, mapper, replace(everything, diagnostics_in_error_regions=True)
    )
    assert len(with_errors) > len(default)
    # Layout never produces a diagnostic; at most max_diagnostics, worst first.
    layout = {i for i, s in enumerate(analysis.syntax) if s.kind == "layout"}
    assert not {d.data["token"] for d in with_errors} & layout
    two = features.diagnostics(analysis, mapper, replace(everything, max_diagnostics=2))
    assert [d.data["margin"] for d in two] == sorted(
        (d.data["margin"] for d in default), reverse=True
    )[:2]


def test_semantic_tokens_are_single_line_and_non_overlapping(tiny):
    text = 'x = """two\nlines"""\ny = "😀" + 中文\n'
    analysis = analyze_text(tiny, text, "t.py")
    pieces = features.surprising_pieces(analysis, threshold=0.0)
    assert all("\n" not in text[s:e] and text[s:e] == text[s:e].strip() for s, e, _, _ in pieces)
    assert all(a[1] <= b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    for encoding in ("utf-16", "utf-8", "utf-32"):
        data = features.encode_semantic_tokens(pieces, PositionMapper(text, encoding))
        decoded = decode_tokens(data)
        assert len(decoded) == len(pieces)
        lines = text.split("\n")
        for (line, col, length, _, _), (s, e, _, _) in zip(decoded, pieces, strict=True):
            assert units_slice(lines[line], col, length, encoding) == text[s:e]


def test_position_mapper_round_trips_in_every_encoding():
    text = "a😀b\n中文x\n"
    for encoding in ("utf-16", "utf-8", "utf-32"):
        mapper = PositionMapper(text, encoding)
        for offset in range(len(text) + 1):
            assert mapper.offset(mapper.position(offset)) == offset
    assert PositionMapper(text, "utf-16").position(2) == types.Position(line=0, character=3)
    assert PositionMapper(text, "utf-8").position(2) == types.Position(line=0, character=5)
    assert PositionMapper(text, "utf-32").position(2) == types.Position(line=0, character=2)


def test_text_shift_maps_around_the_edit():
    shift = TextShift("abc XYZ def", "abc Q def")
    assert shift.to_new(2) == 2 and shift.to_new(8) == 6 and shift.to_new(5) is None
    assert shift.to_old(6) == 8 and shift.to_old(4) == 4


def test_semantic_token_edits_turn_old_into_new():
    old, new = [0, 1, 2, 0, 0, 1, 3, 4, 1, 0], [0, 1, 2, 0, 0, 2, 5, 4, 1, 0]
    (edit,) = features.semantic_token_edits(old, new)
    patched = old[: edit.start] + edit.data + old[edit.start + edit.delete_count :]
    assert patched == new
    assert features.semantic_token_edits(new, new) == []


def test_settings_are_validated_and_bad_values_kept_out():
    cfg, problems = merge_config(
        ServerConfig(),
        {"displayThreshold": 6, "maxDiagnostics": -1, "colour": "red", "languages": ["python"]},
    )
    assert cfg.display_threshold == 6.0 and cfg.languages == ("python",)
    assert cfg.max_diagnostics == ServerConfig().max_diagnostics
    assert any("maxDiagnostics" in p for p in problems)
    assert any("unknown setting 'colour'" in p for p in problems)
    nested, _ = merge_config(ServerConfig(), {"lossmap": {"debounceMs": 10}})
    assert nested.debounce_ms == 10
    extra, problems = merge_config(ServerConfig(), {"unconfirmedExtraBits": 0})
    assert extra.unconfirmed_extra_bits == 0.0 and not problems
    kept, problems = merge_config(extra, {"unconfirmedExtraBits": -2})
    assert kept.unconfirmed_extra_bits == 0.0 and any("unconfirmedExtraBits" in p for p in problems)
    assert ServerConfig().confirmed_extra_bits == 4.0
    bar, problems = merge_config(ServerConfig(), {"confirmedExtraBits": 0})
    assert bar.confirmed_extra_bits == 0.0 and not problems
    kept, problems = merge_config(bar, {"confirmedExtraBits": "high"})
    assert kept.confirmed_extra_bits == 0.0 and any("confirmedExtraBits" in p for p in problems)
    for odd in (float("nan"), float("inf")):  # JSON parsers accept NaN and 1e999
        kept, problems = merge_config(bar, {"diagnosticThreshold": odd})
        assert kept.diagnostic_threshold == bar.diagnostic_threshold
        assert any("diagnosticThreshold" in p and "finite" in p for p in problems)
    runtime, problems = merge_config(ServerConfig(), {"runtime": " Float32 "})
    assert runtime.runtime == "float32" and not problems
    kept, problems = merge_config(runtime, {"runtime": "int4"})
    assert kept.runtime == "float32"
    assert any("runtime" in p and "bfloat16-matmuls" in p for p in problems)


def test_a_line_the_judge_has_not_confirmed_needs_the_extra_bits(tiny):
    text = "def mean(values):\n    total = sum(values)\n    return total / len(values)\n" * 3
    analysis = analyze_text(tiny, text, "m.py")
    mapper = PositionMapper(text)
    margins = sorted(
        m
        for t, s in zip(analysis.tokens, analysis.syntax, strict=True)
        if (m := counted_margin(t.code_margin, s, t.index)) is not None
    )
    low, high = margins[len(margins) // 2], margins[-1]
    extra = (high - low) / 2
    base = replace(
        ServerConfig(), diagnostic_threshold=low, unconfirmed_extra_bits=0.0, max_diagnostics=999
    )
    without = features.diagnostics(analysis, mapper, base)
    with_extra = features.diagnostics(analysis, mapper, replace(base, unconfirmed_extra_bits=extra))
    assert 0 < len(with_extra) < len(without)
    assert all(d.data["margin"] >= low + extra for d in with_extra)
    assert all("(causal only)" in d.message for d in with_extra)


def test_shown_asks_the_judge_for_the_threshold_and_the_causal_view_for_more():
    from lossmap.analysis.verdicts.ranking import shown

    assert shown(causal=18.0, combined=None, threshold=10.0, extra=8.0)
    assert not shown(causal=17.9, combined=None, threshold=10.0, extra=8.0)
    assert shown(causal=12.0, combined=10.0, threshold=10.0, extra=8.0)  # the judge agreed
    assert not shown(causal=30.0, combined=9.0, threshold=10.0, extra=8.0)  # it cleared it
    # Once confirmed, a line needs the confirmed extra bits above the threshold.
    assert not shown(causal=12.0, combined=13.9, threshold=10.0, extra=8.0, confirmed_extra=4.0)
    assert shown(causal=12.0, combined=14.0, threshold=10.0, extra=8.0, confirmed_extra=4.0)


def test_a_line_the_judge_confirmed_needs_the_confirmed_bar_and_one_it_cleared_is_hidden(tiny):
    from lossmap.analysis.verdicts.two_sided import TwoSidedLine

    text = "def mean(values):\n    total = sum(values)\n    return total / len(values)\n" * 3
    analysis = analyze_text(tiny, text, "m.py")
    mapper = PositionMapper(text)
    worst, m = max(
        (
            (t.index, c)
            for t, s in zip(analysis.tokens, analysis.syntax, strict=True)
            if (c := counted_margin(t.code_margin, s, t.index)) is not None
        ),
        key=lambda p: p[1],
    )
    cfg = replace(
        ServerConfig(),
        diagnostic_threshold=m - 1,
        unconfirmed_extra_bits=5.0,
        confirmed_extra_bits=0.0,
        max_diagnostics=999,
    )
    line = analysis.line_of_token[worst]

    def published() -> list:
        return [d for d in features.diagnostics(analysis, mapper, cfg) if d.data["token"] == worst]

    assert published() == []  # causal only: it needs 4 bits more than it has
    # A judge with its own tokenizer agreed (a line-level verdict): the threshold alone counts.
    analysis.two_sided[line] = TwoSidedLine(line, {}, m + 3, m, worst, None, line_level=True)
    (diag,) = published()
    assert diag.data["twoSided"] and "line confirmed two-sided" in diag.message
    # The confirmed bar: the combined verdict (m) must reach the threshold (m - 1) plus it.
    cfg = replace(cfg, confirmed_extra_bits=1.5)
    assert published() == []
    cfg = replace(cfg, confirmed_extra_bits=0.5)
    assert len(published()) == 1
    # The judge cleared it: hidden, whatever the causal margin.
    analysis.two_sided[line] = TwoSidedLine(line, {}, m - 2, m - 2, worst, None, line_level=True)
    assert published() == []


def test_a_documents_language_comes_from_its_id_name_or_shebang():
    from lossmap.server.documents import OpenDocument
    from lossmap.server.scheduling import language_of

    script = "#!/usr/bin/env python3\nprint(1)\n"
    assert language_of(OpenDocument("file:///w/deploy", script, 1, "plaintext")) == "python"
    assert language_of(OpenDocument("file:///w/deploy", script, 1, "shellscript")) == "bash"
    assert language_of(OpenDocument("file:///w/a.rs", script, 1, "plaintext")) == "rust"
    assert language_of(OpenDocument("file:///w/notes", "hello\n", 1, "plaintext")) is None

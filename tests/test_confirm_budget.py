"""How many lines the judge confirms: ``--confirm K|all`` and the server's rounds."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from lossmap.analysis import analyze_text
from lossmap.analysis.verdicts.confirm import candidate_lines, confirm_top_lines
from lossmap.cli import _confirm_budget
from lossmap.server.config import ServerConfig
from lossmap.server.scheduling import confirm_rounds, visible_first

SOURCE = "".join(f"def f{i}(x):\n    return x * {i} + len(str(x)) - {i % 3}\n\n" for i in range(12))


@pytest.fixture(scope="module")
def analysis(fim_models):
    return analyze_text(fim_models[0], SOURCE, "a.py")


def median_verdict(analysis) -> float:
    verdicts = sorted(ln.verdict for ln in analysis.lines if ln.verdict is not None)
    return verdicts[len(verdicts) // 2]


def test_confirm_all_confirms_exactly_the_lines_at_or_above_the_threshold(fim_models, analysis):
    live, twin, _ = fim_models
    threshold = median_verdict(analysis)  # the tiny model's bits: half the lines qualify
    expected = {
        ln.line for ln in analysis.lines if ln.verdict is not None and ln.verdict >= threshold
    }
    assert 2 <= len(expected) < len([ln for ln in analysis.lines if ln.verdict is not None])
    assert set(candidate_lines(analysis, threshold)) == expected
    fresh = analyze_text(live, SOURCE, "a.py")
    confirm_top_lines(twin, live, fresh, None, suggest=False, threshold=threshold)
    assert set(fresh.two_sided) == expected


def test_the_server_confirms_the_edit_then_the_top_then_every_other_candidate(analysis):
    threshold = median_verdict(analysis)
    cfg = ServerConfig(confirm_lines=2, confirm_around_edit=1, diagnostic_threshold=threshold)
    edited = {11}
    rounds = confirm_rounds(analysis, cfg, edited)
    with_code = {ln.line for ln in analysis.lines if ln.verdict is not None}
    assert set(rounds[0]) == {10, 11, 12} & with_code
    top = [ln.line for ln in analysis.causal_top_lines(2)]
    assert set(rounds[1]) == set(top) - set(rounds[0])
    rest = set(candidate_lines(analysis, threshold)) - set(rounds[0]) - set(rounds[1])
    assert rest and set(rounds[2]) == rest
    assert all(list(r) == sorted(r) for r in rounds)  # file order: one cache walk per round
    off = dataclasses.replace(cfg, confirm_candidates=False)
    assert confirm_rounds(analysis, off, edited) == rounds[:2]
    # Candidates the user sees come right after the edited lines, before the top.
    rest_line = min(set(rounds[2]))
    seen = confirm_rounds(analysis, cfg, edited, visible=[(rest_line, rest_line)])
    assert seen[0] == rounds[0] and seen[1] == (rest_line,)
    assert sorted(n for r in seen for n in r) == sorted(n for r in rounds for n in r)
    # No edit: the candidates on screen come first.
    assert confirm_rounds(analysis, cfg, set(), visible=[(rest_line, rest_line)])[0] == (rest_line,)


def test_visible_lines_move_ahead_of_the_pending_rounds():
    rounds = [(3, 40), (7, 55, 90)]
    assert visible_first(rounds, [(50, 60)]) == [(55,), (3, 40), (7, 90)]
    assert visible_first(rounds, [(1, 5), (88, 95)]) == [(3, 90), (40,), (7, 55)]
    assert visible_first(rounds, [(100, 120)]) == rounds  # nothing pending there
    assert visible_first(rounds, [(1, 100)], first=1) == [(3, 40), (7, 55, 90)]


def test_confirm_budget_is_a_count_or_all():
    assert _confirm_budget("all") is None and _confirm_budget("ALL") is None
    assert _confirm_budget("0") == 0 and _confirm_budget("12") == 12
    with pytest.raises(argparse.ArgumentTypeError):
        _confirm_budget("-1")
    with pytest.raises(argparse.ArgumentTypeError):
        _confirm_budget("some")

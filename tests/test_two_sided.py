"""Two-sided (fill-in-the-middle) confirmation of suspicious lines."""

from __future__ import annotations

import math

import pytest
import torch

from lossmap.analysis import analyze_text
from lossmap.analysis.verdicts.confirm import confirm_top_lines
from lossmap.analysis.verdicts.two_sided import (
    DEFAULT_CONFIRM,
    confirm_lines,
    fim_format,
    prefix_start,
)

# Five small functions, one planted single-token bug each (1-based bug line).
CASES = {
    "wrong comparison": (
        "def clamp_all(values, low, high):\n    out = []\n    for v in values:\n"
        "        if v > low:\n            out.append(low)\n        elif v > high:\n"
        "            out.append(high)\n        else:\n            out.append(v)\n    return out\n",
        4,
    ),
    "wrong variable returned": (
        "def find_max(items):\n    best = items[0]\n    for item in items[1:]:\n"
        "        if item > best:\n            best = item\n    return item\n",
        6,
    ),
    "mid + 1 for mid - 1": (
        "def binary_search(arr, target):\n    lo, hi = 0, len(arr) - 1\n    while lo <= hi:\n"
        "        mid = (lo + hi) // 2\n        if arr[mid] == target:\n            return mid\n"
        "        if arr[mid] < target:\n            lo = mid + 1\n        else:\n"
        "            hi = mid + 1\n    return -1\n",
        10,
    ),
    "flipped loop bound": (
        "def count_positive(xs):\n    n = 0\n    i = 0\n    while i > len(xs):\n"
        "        if xs[i] > 0:\n            n += 1\n        i += 1\n    return n\n",
        4,
    ),
    "wrong attribute": (
        "import os\n\n\ndef file_size(path):\n    if not os.path.exists(path):\n"
        "        return 0\n    return os.path.getsize(path)\n\n\ndef dir_exists(path):\n"
        "    return os.path.isfile(path)\n",
        11,
    ),
}


def rank_in_function(analysis, ranked, bug_line):
    (fn,) = [d for d in analysis.definitions if d.start_line <= bug_line <= d.end_line]
    lines = [ln.line for ln in ranked if fn.start_line <= ln.line <= fn.end_line]
    return lines.index(bug_line) + 1


def test_prefix_is_bounded_shared_on_a_grid_and_starts_on_a_line():
    line_starts = list(range(0, 10_000, 10))  # a line every 10 tokens
    for p in (16, 64, 512):
        for a in range(0, 5_000, 7):
            start = prefix_start(a, p, line_starts)
            assert start == 0 if a <= p else p <= a - start <= p + p // 4 + p // 8
    # Lines close together share one prefix start (one cache walk); far apart they do not.
    assert prefix_start(1030, 512, line_starts) == prefix_start(1150, 512, line_starts)
    assert prefix_start(1030, 512, line_starts) != prefix_start(1170, 512, line_starts)
    # Snapped back to the start of the line the grid point falls in ...
    assert prefix_start(1000, 512, [0, 350, 700]) == 350  # grid point 384
    # ... unless that line starts too far back (a long line): the grid point itself.
    assert prefix_start(1000, 512, [0, 300, 700]) == 384


@pytest.mark.model
def test_shared_kv_cache_gives_the_same_numbers_as_a_fresh_prompt(real_model):
    source = CASES["wrong variable returned"][0] * 3  # long enough for a bounded prefix
    analysis = analyze_text(real_model, source, "f.py")
    lines = [2, 4, 6, 11, 15, 17]
    results = confirm_lines(
        real_model, analysis, lines, suffix_tokens=16, prefix_tokens=24, suggest=False
    )
    fim = fim_format(real_model.tokenizer)
    ids = [t.token_id for t in analysis.tokens]
    line_starts = sorted(min(ln.token_indices) for ln in analysis.lines if ln.token_indices)
    bounded = 0
    for line in lines:
        summary = next(ln for ln in analysis.lines if ln.line == line)
        a, b = min(summary.token_indices), max(summary.token_indices) + 1
        start = prefix_start(a, 24, line_starts)
        bounded += start > 0
        prompt = [
            fim.prefix, *ids[start:a], fim.suffix, *ids[b : b + 16], fim.middle, *ids[a:b]
        ]  # fmt: skip
        with torch.no_grad():
            logits = real_model.model(torch.tensor([prompt])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        first = len(prompt) - (b - a) - 1  # the <fim_middle> position predicts ids[a]
        for j, i in enumerate(range(a, b)):
            direct = -logp[first + j, ids[i]].item() / math.log(2)
            assert abs(results[line].tokens[i].surprise - direct) < 1e-3
    assert bounded >= 3  # the later lines saw a bounded prefix
    # The GPU way, whole prompts side by side with padding, gives the same numbers; so does a
    # line confirmed on its own (its numbers never depend on the other lines confirmed).
    batched = confirm_lines(
        real_model, analysis, lines, suffix_tokens=16, prefix_tokens=24, suggest=False, batch=3
    )
    alone = confirm_lines(
        real_model, analysis, [15], suffix_tokens=16, prefix_tokens=24, suggest=False
    )
    for other, which in ((batched, lines), (alone, [15])):
        for line in which:
            for i, tok in results[line].tokens.items():
                assert abs(other[line].tokens[i].surprise - tok.surprise) < 1e-3
                assert abs(other[line].tokens[i].code_margin - tok.code_margin) < 1e-3


@pytest.mark.model
def test_two_sided_confirmation_ranks_planted_bugs_higher(real_model):
    causal_top1 = shipped_top1 = 0
    for name, (source, bug) in CASES.items():
        analysis = analyze_text(real_model, source, "case.py")
        causal = rank_in_function(analysis, analysis.causal_top_lines(), bug)
        confirm_top_lines(real_model, real_model, analysis, DEFAULT_CONFIRM, suggest=False)
        shipped = rank_in_function(analysis, analysis.top_lines(), bug)
        assert shipped <= 3, (name, causal, shipped)
        causal_top1 += causal == 1
        shipped_top1 += shipped == 1
    # The judge puts more bugs first than the causal verdict alone (which, since bound names
    # count less, already ranks one more first than it used to).
    assert shipped_top1 >= causal_top1 + 1, (causal_top1, shipped_top1)


@pytest.mark.model
def test_confirmed_line_says_what_the_model_would_write(real_model):
    source, bug = CASES["wrong variable returned"]
    analysis = analyze_text(real_model, source, "f.py", confirm=3)
    confirmed = analysis.two_sided[bug]
    assert confirmed.suggestion.strip() == "return best"
    assert analysis.tokens[confirmed.worst_token].text == " item"
    assert analysis.top_lines(1)[0].line == bug
    batched = confirm_lines(real_model, analysis, [2, bug], batch=2)
    assert batched[bug].suggestion.strip() == "return best"


def test_models_without_fim_fall_back_to_causal_with_a_note(tiny):
    source = CASES["wrong variable returned"][0]
    analysis = analyze_text(tiny, source, "f.py", confirm=3)
    assert analysis.two_sided == {}
    assert any("no fill-in-the-middle tokens" in n for n in analysis.notes)
    assert analysis.top_lines() == analysis.causal_top_lines()


def test_a_line_the_judge_cleared_sinks_below_lines_it_has_not_seen():
    from lossmap.analysis.verdicts.lines import LineSummary
    from lossmap.analysis.verdicts.ranking import rank_lines
    from lossmap.analysis.verdicts.two_sided import TwoSidedLine

    def line(n, verdict):
        return LineSummary(n, 0, 0, (n,), verdict, verdict, verdict, n)

    lines = [line(1, 12.0), line(2, 9.0), line(3, 5.0), line(4, 0.5)]
    confirmed = {
        2: TwoSidedLine(2, {}, 8.0, 8.0, 2, None),  # the code after it agrees it is odd
        1: TwoSidedLine(1, {}, 1.0, 1.0, 1, None),  # cleared: the code after explains it
        4: TwoSidedLine(4, {}, 0.2, 0.2, 4, None),
    }
    ranked = [ln.line for ln in rank_lines(lines, confirmed=confirmed)]
    assert ranked == [2, 3, 1, 4]


def test_lists_leave_out_the_lines_the_judge_cleared_and_count_them(tiny):
    from lossmap.analysis.verdicts.two_sided import TwoSidedLine

    source = CASES["wrong variable returned"][0] * 2
    analysis = analyze_text(tiny, source, "f.py")
    first, second = analysis.top_lines(2)
    threshold = second.verdict  # the tiny model's bits: the top two reach it
    analysis.two_sided = {first.line: TwoSidedLine(first.line, {}, 0.0, 0.0, None, None)}
    listed = analysis.listed_lines(3, threshold)
    assert listed.cleared == 1 and first not in listed.lines and listed.lines[0] == second
    assert analysis.listed_lines(3, 0.0).cleared == 0  # at or above the threshold: still listed

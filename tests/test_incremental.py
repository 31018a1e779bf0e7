"""Incremental re-scoring equals a full re-score, runs only the changed suffix, and keeps
memory bounded."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossmap.analysis import load_model
from lossmap.analysis.models.runtime import RUNTIMES
from lossmap.analysis.scoring.document_scorer import DocumentScorer, common_prefix, score_text
from lossmap.analysis.scoring.scorer_pool import ScorerPool
from lossmap.analysis.scoring.tokens import encode
from lossmap.analysis.scoring.windows import plan_windows

BASE = "def f(x):\n    return x + 1\ncafé = '😀 中文 naïve'\nfor i in range(10):\n    print(i)\n"
# Multi-byte characters whose byte tokens re-merge with their neighbours, a combining accent
# (it lands inside a user-perceived character), whitespace that joins or splits tokens.
PIECES = ["", " ", "\n", "x", "é", "è", "😀", "😁", "中", "\u0301", "ab(", "  ", "re", "1"]
WINDOW, MIN_CONTEXT = 48, 12  # small windows: edits land in, before and after window seams


def max_diff(a, b) -> float:
    assert [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
    assert [t.scored for t in a.tokens] == [t.scored for t in b.tokens]
    worst = 0.0
    for x, y in zip(a.tokens, b.tokens, strict=True):
        if x.scored:
            worst = max(worst, abs(x.surprise - y.surprise), abs(x.entropy - y.entropy))
            assert x.rank == y.rank or abs(x.surprise - y.surprise) < 1e-4
    return worst


def boundaries(loaded, text: str) -> list[int]:
    _, spans, _ = encode(loaded, text)
    return sorted({s for s, _ in spans} | {len(text)})


@st.composite
def edits(draw):
    """(position choice, at a token boundary?, delete length, inserted text) per edit."""
    return draw(
        st.lists(
            st.tuples(
                st.floats(0, 1),
                st.booleans(),
                st.integers(0, 4),
                st.lists(st.sampled_from(PIECES), max_size=3).map("".join),
            ),
            min_size=1,
            max_size=6,
        )
    )


def apply(loaded, text: str, edit) -> str:
    where, at_boundary, delete, insert = edit
    points = boundaries(loaded, text) if at_boundary else list(range(len(text) + 1))
    i = points[min(int(where * len(points)), len(points) - 1)]
    return text[:i] + insert + text[i + delete :]


@pytest.fixture(scope="module", params=RUNTIMES[1:])
def tiny_in_runtime(request, tiny_model_dir):
    """The tiny model in each runtime a CPU can choose."""
    return load_model(str(tiny_model_dir), device="cpu", runtime=request.param)


@given(sequence=edits(), repeat=st.integers(1, 3))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_edit_sequences_match_a_full_rescore(tiny_in_runtime, sequence, repeat):
    model = tiny_in_runtime
    scorer = DocumentScorer(model, top_k=3, window=WINDOW, min_context=MIN_CONTEXT)
    text = BASE * repeat
    scorer.score(text)
    for edit in sequence:
        text = apply(model, text, edit)
        got = scorer.score(text)
        full = score_text(model, text, top_k=3, window=WINDOW, min_context=MIN_CONTEXT)
        assert max_diff(got, full) <= 1e-4


def test_only_the_changed_suffix_is_run(tiny):
    scorer = DocumentScorer(tiny, top_k=3)
    text = BASE * 3
    first = scorer.score(text)
    n = len(first.tokens) + 1  # with the BOS
    assert scorer.last_run.run == n and scorer.last_run.reused == 0
    scorer.score(text[:-5] + "(i + 1)\n")
    run = scorer.last_run
    assert run.reused > n - 10
    assert run.run <= run.tokens - run.reused + 1  # one token of context re-run at most
    scorer.score(text[:-5] + "(i + 1)\n")  # unchanged: nothing runs
    assert scorer.last_run.run == 0


def test_stopped_work_is_kept_and_resumed(tiny):
    scorer = DocumentScorer(tiny, top_k=3, window=WINDOW, min_context=MIN_CONTEXT)
    text = BASE * 3
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) <= 2

    scorer.keep_cache = True
    assert scorer.score(text, keep_going=stop_after_two) is None
    kept = len(scorer.ids)
    assert 0 < kept < len(encode(tiny, text)[0])
    again = scorer.score(text)
    assert scorer.last_run.reused == kept
    assert (
        max_diff(again, score_text(tiny, text, top_k=3, window=WINDOW, min_context=MIN_CONTEXT))
        <= 1e-4
    )


def test_local_first_partial_result(tiny):
    scorer = DocumentScorer(tiny, top_k=3, window=64, min_context=16)
    text = BASE * 6
    before = scorer.score(text)
    edited = "import os\n" + text
    partials = []
    final = scorer.score(edited, on_partial=partials.append, local_first=16)
    assert len(partials) == 1
    part = partials[0]
    assert final.fresh_until is None and part.fresh_until is not None
    fresh = [t for t in part.tokens if t.end <= part.fresh_until]
    assert 16 <= len(fresh) < len(part.tokens) // 2
    for p, f in zip(fresh, final.tokens, strict=False):
        assert p.token_id == f.token_id and (p.surprise == f.surprise or not f.scored)
    # Past the fresh part, the unchanged tail shows its previous numbers, moved with the text.
    shift = len(edited) - len(text)
    old_by_start = {t.start + shift: t for t in before.tokens}
    tail = [t for t in part.tokens if t.start >= part.fresh_until and t.scored]
    assert tail and all(old_by_start[t.start].surprise == t.surprise for t in tail)
    # Small edits near the end produce no partial result: the whole update is local.
    partials.clear()
    scorer.score(edited + "x = 1\n", on_partial=partials.append, local_first=16)
    assert partials == []


def test_pool_budget_evicts_least_recently_used_and_release_forgets(tiny):
    pool = ScorerPool(budget_bytes=10**9)
    a = pool.get("a", tiny, 3)
    a.score(BASE * 4)
    b = pool.get("b", tiny, 3)
    b.score(BASE * 4)
    assert a.cache_bytes > 0 and b.cache_bytes > 0
    pool.budget_bytes = b.cache_bytes + 1
    pool.enforce()
    assert a.cache_bytes == 0 and b.cache_bytes > 0  # "a" was used least recently
    a.score(BASE * 4 + "y = 2\n")  # statistics survive eviction: the prefix is still reused
    assert a.last_run.reused > 0
    assert pool.get("b", tiny, 3) is b
    assert pool.get("b", tiny, 5) is not b  # another top_k: scores differ, start over
    pool.release("b")
    assert "b" not in pool and "a" in pool
    pool.budget_bytes = 0
    pool.enforce()
    assert pool.cache_bytes == 0


def test_a_document_over_budget_keeps_the_windows_near_its_edit(tiny):
    scorer = DocumentScorer(tiny, top_k=3, window=WINDOW, min_context=MIN_CONTEXT)
    text = BASE * 6
    scorer.score(text)
    whole = scorer.cache_bytes
    cut = len(text) - 10
    scorer.score(text[:cut] + "z" + text[cut + 1 :])
    scorer.trim(whole // 3)
    assert 0 < scorer.cache_bytes <= whole // 3
    last = plan_windows(len(scorer.ids), WINDOW, MIN_CONTEXT)[-1]
    assert last.start in scorer._caches  # the edited (last) window's cache stayed
    assert 0 not in scorer._caches  # the farthest went first


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2]) == 2


@pytest.mark.model
def test_real_model_random_edits_match_a_full_rescore(real_model):
    source = (
        "def mean(values: list[float]) -> float:\n"
        '    """Average of the values (naïve, but fine: π ≈ 3.14)."""\n'
        "    total = 0.0\n"
        "    for v in values:\n"
        "        total += v\n"
        "    return total / len(values)\n"
    )
    rng = random.Random(7)
    scorer = DocumentScorer(real_model, top_k=5, window=96, min_context=32)
    text = source
    scorer.score(text)
    worst = 0.0
    for _ in range(6):
        edit = (rng.random(), rng.random() < 0.5, rng.randrange(4), rng.choice(PIECES))
        text = apply(real_model, text, edit)
        got = scorer.score(text)
        worst = max(worst, max_diff(got, score_text(real_model, text, window=96, min_context=32)))
    assert worst <= 1e-4

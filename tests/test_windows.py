"""Sliding windows: every token scored exactly once, with the stated left context."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossmap.analysis.scoring.document_scorer import DocumentScorer, score_text
from lossmap.analysis.scoring.windows import plan_windows


@given(
    n=st.integers(0, 3000),
    window=st.integers(2, 600),  # min_context >= 1, so a window scores at least one token
    ctx_frac=st.floats(0, 0.99),
)
@settings(max_examples=300, deadline=None)
def test_windows_cover_every_token_once_with_min_context(n, window, ctx_frac):
    min_context = max(1, min(int(window * ctx_frac), window - 1))
    windows = plan_windows(n, window, min_context)
    scored = [t for w in windows for t in range(w.score_from, w.end)]
    assert scored == list(range(n))
    for k, w in enumerate(windows):
        assert w.end - w.start <= window
        assert w.start <= w.score_from < w.end
        if k > 0:
            assert w.score_from - w.start >= min_context


def test_windowed_scoring_covers_every_token_and_matches_full_pass_when_it_fits(tiny):
    text = "def f(x):\n    return x + 1\n" * 12
    full = score_text(tiny, text, window=256)
    ids = [tiny.tokenizer.bos_token_id] + [t.token_id for t in full.tokens]
    assert len(ids) > 100
    cut = DocumentScorer(tiny, top_k=3, window=32, min_context=8).score(text)
    assert [t.token_id for t in cut.tokens] == ids[1:]
    assert all(t.scored for t in cut.tokens)
    # A window that holds the whole text reproduces a direct forward pass.
    with torch.no_grad():
        logits = tiny.model(torch.tensor([ids])).logits[0].float()
    ref = -torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), ids[1:]] / torch.log(
        torch.tensor(2.0)
    )
    got = torch.tensor([t.surprise for t in full.tokens])
    assert torch.allclose(got, ref, atol=1e-4)


def test_windows_change_scores_only_where_context_was_cut(tiny):
    text = "for i in range(10):\n    print(i)\n" * 10
    full = score_text(tiny, text, window=256)
    cut = score_text(tiny, text, window=40, min_context=10)
    assert [t.token_id for t in full.tokens] == [t.token_id for t in cut.tokens]
    # Tokens inside the first window (position < 40 with the BOS) see the same context.
    for a, b in zip(full.tokens[:38], cut.tokens[:38], strict=True):
        assert abs(a.surprise - b.surprise) < 1e-4
    assert any(
        abs(a.surprise - b.surprise) > 1e-3 for a, b in zip(full.tokens, cut.tokens, strict=True)
    )

"""The first-token rule, the token partition, and the per-token statistics' invariants."""

from __future__ import annotations

import math

import pytest

from lossmap.analysis.scoring.document_scorer import score_text
from lossmap.analysis.scoring.tokens import token_spans

TEXT = "café = '😀 中文 naïve'\ndef f(x):\n    return x\n"


def test_first_token_is_scored_after_bos_when_the_tokenizer_defines_one(tiny):
    scored = score_text(tiny, TEXT)
    assert scored.bos_token == "<|endoftext|>"
    assert all(t.scored for t in scored.tokens)


def test_first_token_is_unscored_without_bos(tiny_no_bos):
    scored = score_text(tiny_no_bos, TEXT)
    assert scored.bos_token is None
    first, rest = scored.tokens[0], scored.tokens[1:]
    assert not first.scored
    assert first.surprise is None and first.rank is None and first.alternatives == ()
    assert all(t.scored for t in rest)


def test_spans_partition_the_text_even_for_split_characters(tiny):
    scored = score_text(tiny, TEXT)
    assert "".join(t.text for t in scored.tokens) == TEXT
    pos = 0
    for t in scored.tokens:
        assert t.start == pos and t.end >= t.start
        pos = t.end
    assert pos == len(TEXT)


def test_token_spans_repairs_overlapping_offsets():
    # A 4-byte emoji split over two byte tokens both reporting (1, 2), then a skipped space.
    assert token_spans("a😀 b", [(0, 1), (1, 2), (1, 2), (3, 4)]) == [
        (0, 1),
        (1, 2),
        (2, 2),
        (2, 4),
    ]


def test_statistics_are_consistent(tiny):
    scored = score_text(tiny, TEXT, top_k=4)
    for t in scored.tokens:
        assert t.probability == 2.0**-t.surprise
        assert t.rank >= 1 and t.entropy >= 0
        assert len(t.alternatives) == 4
        probs = [a.probability for a in t.alternatives]
        assert probs == sorted(probs, reverse=True)
        if t.rank == 1:
            assert t.alternatives[0].token_id == t.token_id
        # Whitespace-insensitive numbers never exceed the raw ones.
        assert t.code_surprise <= t.surprise + 1e-9
        assert 0 <= t.code_margin <= t.code_surprise + 1e-6 or math.isclose(t.code_margin, 0)


def test_ranks_and_entropy_match_a_direct_computation(tiny, monkeypatch):
    import torch

    from lossmap.analysis.scoring import head

    # The random model ranks most tokens far down; a wider shortcut covers both ways.
    monkeypatch.setattr(head, "RANK_SHORTCUT", 150)
    scored = score_text(tiny, TEXT * 3)
    ids = [tiny.tokenizer.bos_token_id] + [t.token_id for t in scored.tokens]
    with torch.no_grad():
        logp = torch.log_softmax(tiny.model(torch.tensor([ids])).logits[0].float(), -1)
    ranks = []
    for i, tok in enumerate(scored.tokens, start=1):
        ranks.append(int((logp[i - 1] > logp[i - 1, ids[i]]).sum()) + 1)
        entropy = -(logp[i - 1].exp() * logp[i - 1]).sum().item() / math.log(2)
        assert abs(tok.entropy - entropy) < 1e-4
    assert [t.rank for t in scored.tokens] == ranks
    # Both ways of finding a rank are exercised: near the top and far down the list.
    assert min(ranks) <= head.RANK_SHORTCUT < max(ranks)


def test_special_token_text_in_the_buffer_is_plain_text(tiny):
    scored = score_text(tiny, 'x = "<|endoftext|>"\n')
    eos = tiny.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert eos not in [t.token_id for t in scored.tokens]


def test_empty_text_has_no_tokens(tiny):
    assert score_text(tiny, "").tokens == []


@pytest.mark.parametrize("model", ["tiny", pytest.param("real_model", marks=pytest.mark.model)])
def test_whitespace_insensitive_numbers_match_a_dense_computation(model, request):
    import torch

    from lossmap.analysis.scoring.token_classes import whitespace_classes

    loaded = request.getfixturevalue(model)
    text = "def f(x):\n    return x + 1\n\n\nfor i in range(10):\n  print( i )\n" * 2
    scored = score_text(loaded, text)
    bos = [] if scored.bos_token is None else [loaded.tokenizer.bos_token_id]
    ids = bos + [t.token_id for t in scored.tokens]
    with torch.no_grad():
        probs = torch.softmax(loaded.model(torch.tensor([ids])).logits[0].float(), -1)
    classes = whitespace_classes(loaded.tokenizer, probs.shape[-1])
    class_p = torch.zeros(len(ids), int(classes.max()) + 1).index_add_(1, classes, probs)
    shared = 0
    for i, tok in enumerate(scored.tokens[1 - len(bos) :], start=1):
        p_class = class_p[i - 1, classes[ids[i]]].item()
        # float32 sums in another order (chunked head vs a dense softmax): 1.2e-4 bits seen
        # on an AVX2-only CPU.
        assert abs(tok.code_surprise - min(-math.log2(p_class), tok.surprise)) < 5e-4
        margin = max(0.0, math.log2(class_p[i - 1].max().item() / p_class))
        assert abs(tok.code_margin - margin) < 5e-4
        shared += tok.code_surprise < tok.surprise - 1e-3
    assert shared  # some tokens share a class with another spelling


def test_bound_names_count_less_and_the_first_tokens_not_at_all_in_line_verdicts():
    from lossmap.analysis.verdicts.lines import (
        MIN_CONTEXT_TOKENS,
        ROLE_DISCOUNT_BITS,
        summarize_lines,
    )

    header = "x = 0\n" * (MIN_CONTEXT_TOKENS // 4 + 1)  # 4 tokens a line: past the start
    text = f"import os\n{header}total = 1\nitems = count(total)\n"
    # Margins (bits) of the tokens spelled so; every other token was the model's first choice.
    tokens, syntax = _tokens_and_syntax(text, {"os": 15.0, "total": 12.0, "count": 9.0})
    verdict = {text[ln.start : ln.end]: ln.verdict for ln in summarize_lines(text, tokens, syntax)}
    assert verdict["import os"] is None  # 15 bits, but the model had seen no code yet
    # `total` bound: its 12 bits count less (or not at all); used: in full.
    bound = 0.0 if ROLE_DISCOUNT_BITS is None else max(12.0 - ROLE_DISCOUNT_BITS, 0.0)
    assert verdict["total = 1"] == bound
    assert verdict["items = count(total)"] == 12.0


def _tokens_and_syntax(text: str, surprising: dict[str, float]):
    import re

    from lossmap.analysis.scoring.tokens import TokenScore
    from lossmap.analysis.syntax.align import align, parse

    spans = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]+|\s+", text)]
    tokens = [
        TokenScore(i, 0, s, e, text[s:e], 1.0, 0.5, 1, 1.0, 1.0, surprising.get(text[s:e], 0.0))
        for i, (s, e) in enumerate(spans)
    ]
    return tokens, align(text, spans, parse(text, "python"))

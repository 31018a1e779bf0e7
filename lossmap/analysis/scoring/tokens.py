"""Token ids, character spans and the per-token scores of a text (all numbers in bits).

``encode`` turns text into ids and spans that partition it; ``scored_text`` dresses the LM
head's statistics rows (:mod:`head`) up as :class:`TokenScore` objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..models.loading import LoadedModel
from .head import TokenStats


@dataclass(frozen=True)
class Alternative:
    """A token the model considered, with its probability."""

    token_id: int
    text: str
    probability: float


@dataclass
class TokenScore:
    """One token of the text, with character offsets ``[start, end)`` into it.

    The spans of all tokens partition the text. A character that the tokenizer split into
    several byte tokens belongs to the first of them; the others have empty spans.
    Unscored tokens (the first one, when the tokenizer has no BOS) carry ``None``s.
    """

    index: int
    token_id: int
    start: int
    end: int
    text: str
    surprise: float | None = None  # -log2 p(actual token), bits
    probability: float | None = None
    rank: int | None = None  # 1 = the model's first choice
    entropy: float | None = None  # of the predicted distribution, bits
    code_surprise: float | None = None  # whitespace-insensitive: see token_classes
    code_margin: float | None = None  # log2 p(likeliest class) - log2 p(actual's class)
    alternatives: tuple[Alternative, ...] = ()

    @property
    def scored(self) -> bool:
        return self.surprise is not None

    @property
    def core_span(self) -> tuple[int, int]:
        """Character span without surrounding whitespace; ``(start, start)`` if all whitespace."""
        stripped = self.text.strip()
        if not stripped:
            return self.start, self.start
        lead = len(self.text) - len(self.text.lstrip())
        return self.start + lead, self.start + lead + len(stripped)

    @property
    def margin(self) -> float | None:
        """log2 p(first choice) - log2 p(actual): 0 when the model's first choice was taken."""
        if self.surprise is None or not self.alternatives:
            return None
        return max(0.0, self.surprise + math.log2(self.alternatives[0].probability))


@dataclass
class ScoredText:
    """Per-token scores of one text under one model."""

    text: str
    model: str
    tokens: list[TokenScore]
    bos_token: str | None
    window: int
    min_context: int
    top_k: int
    #: Set on a partial result: the character offset where re-scored statistics end. Past
    #: it, tokens of the unchanged tail carry their previous statistics; the rest none.
    fresh_until: int | None = None
    extra: dict = field(default_factory=dict)


def token_spans(text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Turn tokenizer offsets into a partition of ``text`` (contiguous, non-overlapping).

    Offsets of byte-level tokenizers overlap when a character is split over several tokens
    and may skip whitespace; each token is stretched back to where the previous one ended.
    """
    spans = []
    prev = 0
    for _, end in offsets:
        end = max(end, prev)
        spans.append((prev, end))
        prev = end
    if spans and prev < len(text):
        spans[-1] = (spans[-1][0], len(text))
    return spans


def encode(loaded: LoadedModel, text: str) -> tuple[list[int], list[tuple[int, int]], bool]:
    """Token ids and character spans of ``text``; a BOS id is prepended when defined.

    Text that spells a special token (``<|endoftext|>`` in a string literal) is tokenized as
    plain text: buffer contents never become control tokens.
    """
    tok = loaded.tokenizer
    enc = tok(
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        split_special_tokens=True,
    )
    ids = list(enc["input_ids"])
    spans = token_spans(text, [tuple(o) for o in enc["offset_mapping"]])
    bos = tok.bos_token_id
    if bos is not None:
        return [bos, *ids], [(0, 0), *spans], True
    return ids, spans, False


def decode_token(loaded: LoadedModel, token_id: int) -> str:
    """Text of one vocabulary entry, cached per model."""
    table = loaded.cache.setdefault("decoded", {})
    text = table.get(token_id)
    if text is None:
        text = loaded.tokenizer.decode([token_id])
        table[token_id] = text
    return text


def scored_text(
    loaded: LoadedModel,
    text: str,
    ids: list[int],
    spans: list[tuple[int, int]],
    has_bos: bool,
    rows: list[TokenStats | None],
    geometry: tuple[int, int, int],
    fresh_until: int | None = None,
) -> ScoredText:
    """Assemble a :class:`ScoredText` from ``encode``'s output and per-id statistics rows
    (``rows[i]`` for ``ids[i]``; None: not scored).

    ``geometry``: (window, min_context, top_k). ``fresh_until``: for a partial result, the
    token index where re-scored statistics end.
    """
    offset = 1 if has_bos else 0
    tokens = []
    for i in range(offset, len(ids)):
        start, end = spans[i]
        tok = TokenScore(i - offset, ids[i], start, end, text[start:end])
        s = rows[i] if i < len(rows) else None
        if s is not None:
            tok.surprise = s.surprise
            tok.probability = 2.0**-s.surprise
            tok.rank = s.rank
            tok.entropy = s.entropy
            tok.code_surprise = s.code_surprise
            tok.code_margin = s.code_margin
            tok.alternatives = tuple(
                Alternative(t, decode_token(loaded, t), p)
                for t, p in zip(s.top_ids, s.top_probabilities, strict=True)
            )
        tokens.append(tok)
    window, min_context, top_k = geometry
    fresh = None
    if fresh_until is not None and fresh_until < len(ids):
        fresh = spans[fresh_until][0]
    return ScoredText(
        text=text,
        model=loaded.name,
        tokens=tokens,
        bos_token=loaded.tokenizer.bos_token if has_bos else None,
        window=window,
        min_context=min_context,
        top_k=top_k,
        fresh_until=fresh,
    )

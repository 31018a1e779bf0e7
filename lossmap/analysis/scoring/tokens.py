"""Per-token surprise, probability, rank, entropy and top-k alternatives from a causal LM.

All quantities are in bits. The full-vocabulary log-softmax is never materialised for a whole
window: hidden states come from one forward pass, and the LM head and softmax run over
chunks of positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..models.loading import LoadedModel
from ..progress import ProgressFn
from .token_classes import whitespace_classes

LN2 = math.log(2.0)

#: Default sliding-window geometry (tokens). Past the first window, every scored token sees
#: at least ``DEFAULT_MIN_CONTEXT`` tokens of code before it.
DEFAULT_WINDOW = 2048
DEFAULT_MIN_CONTEXT = 512
#: Ranks up to this are read off a top-k instead of a full-vocabulary comparison.
RANK_SHORTCUT = 32
#: Positions per LM-head chunk: 256 x 152k vocabulary x 4 bytes is about 156 MB. Larger
#: chunks stream the head's weights fewer times; two such buffers are kept per model.
DEFAULT_CHUNK = 256


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


@dataclass(frozen=True)
class _SharedClasses:
    """Vocabulary ids whose whitespace-insensitive class has other members.

    Most classes hold one id, whose class probability is its own; only the ``tokens`` of
    shared classes need summing. ``of_token[v]`` is the shared class of id ``v`` or -1.
    """

    tokens: torch.Tensor  # (M,) vocabulary ids in shared classes
    classes: torch.Tensor  # (M,) their shared-class index, 0 ... n - 1
    of_token: torch.Tensor  # (V,) shared-class index per vocabulary id, or -1
    n: int


def _shared_classes(loaded: LoadedModel, vocab: int) -> _SharedClasses:
    shared = loaded.cache.get("ws_shared")
    if shared is None or shared.of_token.shape[0] != vocab:
        classes = whitespace_classes(loaded.tokenizer, vocab)
        counts = torch.bincount(classes)
        tokens = (counts[classes] > 1).nonzero()[:, 0]
        _, remapped = torch.unique(classes[tokens], return_inverse=True)
        of_token = torch.full((vocab,), -1, dtype=torch.long)
        of_token[tokens] = remapped
        n = int(remapped.max()) + 1 if len(tokens) else 0
        dev = loaded.device
        shared = _SharedClasses(tokens.to(dev), remapped.to(dev), of_token.to(dev), n)
        loaded.cache["ws_shared"] = shared
    return shared


def _buffers(loaded: LoadedModel, rows: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float32 (rows, vocab) work buffers, kept on the model between calls.

    Fresh 100 MB allocations cost about four times the arithmetic done in them on CPUs (the
    pages are faulted in and zeroed each time), so the logits and exp buffers are reused.
    """
    bufs = loaded.cache.get("stat_buffers")
    if bufs is None or bufs[0].shape[0] < rows or bufs[0].shape[1] != vocab:
        shape = (max(rows, DEFAULT_CHUNK), vocab)
        dev = loaded.device
        bufs = (torch.empty(shape, device=dev), torch.empty(shape, device=dev))
        loaded.cache["stat_buffers"] = bufs
    return bufs[0][:rows], bufs[1][:rows]


def _head(loaded: LoadedModel, hidden: torch.Tensor, out: torch.Tensor | None = None):
    """Logits (float32) of ``hidden``; written into ``out`` (rows, vocab) when given."""
    head = loaded.model.get_output_embeddings()
    weight, bias = head.weight, getattr(head, "bias", None)
    if out is None or out.shape[1] != weight.shape[0]:
        logits = head(hidden).float()
    elif weight.dtype == torch.float32 and hidden.dtype == torch.float32:
        logits = torch.mm(hidden, weight.t(), out=out)
        if bias is not None:
            logits.add_(bias)
    else:
        logits = out.copy_(head(hidden))
    cap = getattr(loaded.model.config, "final_logit_softcapping", None)
    if cap:
        logits = logits.div_(cap).tanh_().mul_(cap)
    return logits


def token_stats(
    loaded: LoadedModel, hidden: torch.Tensor, actual: torch.Tensor, top_k: int
) -> list[tuple]:
    """Statistics of ``actual[i]`` given final hidden states ``hidden[i]`` (one row each).

    Returns one tuple per row: (surprise, rank, entropy, code_surprise, code_margin,
    top-k probabilities, top-k ids); surprises in bits.

    Works on shifted logits ``z = logits - max`` and one buffer ``e = exp(z)``: with
    ``S = sum(e)``, log p = z - log S and the entropy is log S - sum(e * z) / S. The full
    log-softmax and probability matrices are never built.
    """
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    z_buf, e_buf = _buffers(loaded, len(actual), vocab)
    z = _head(loaded, hidden, z_buf)
    rows = torch.arange(len(actual), device=z.device)
    k = min(max(top_k, RANK_SHORTCUT), z.shape[-1])
    top_z, top_id = z.topk(k, dim=-1)
    z.sub_(top_z[:, :1])  # in place: the head's output is ours
    top_z = top_z - top_z[:, :1]
    e = torch.exp(z, out=e_buf)
    total = e.sum(-1)
    log_total = total.log()
    z_actual = z[rows, actual]
    rank = (top_z > z_actual[:, None]).sum(-1) + 1
    far = (z_actual < top_z[:, -1]).nonzero()[:, 0]
    if far.numel():  # ranks past the top-k: a full-vocabulary comparison for those rows only
        rank[far] = (z[far] > z_actual[far, None]).sum(-1) + 1
    # Whitespace-insensitive classes: sums over the shared ones only (see _SharedClasses).
    shared = _shared_classes(loaded, z.shape[-1])
    class_e = torch.zeros(len(actual), max(shared.n, 1), device=z.device)
    if shared.n:
        class_e.scatter_add_(1, shared.classes.expand(len(actual), -1), e[:, shared.tokens])
    actual_class = shared.of_token[actual]
    e_actual = e[rows, actual]
    in_shared = actual_class >= 0
    e_class = torch.where(in_shared, class_e[rows, actual_class.clamp_min(0)], e_actual)
    # The likeliest class: a shared class's sum, or else the likeliest single id (e = 1).
    e_top_class = class_e.max(-1).values.clamp_min(1.0)
    tiny = torch.finfo(torch.float32).tiny
    e_class = e_class.clamp_min(tiny)
    entropy = log_total - e.mul_(z).sum(-1) / total  # e is spent here
    lp_actual = z_actual - log_total
    top_p = torch.exp(top_z[:, :top_k] - log_total[:, None])
    out = zip(
        (-lp_actual / LN2).tolist(),
        rank.tolist(),
        (entropy / LN2).tolist(),
        ((log_total - torch.log(e_class)) / LN2).tolist(),
        ((torch.log(e_top_class) - torch.log(e_class)) / LN2).clamp_min(0).tolist(),
        top_p.tolist(),
        top_id[:, :top_k].tolist(),
        strict=True,
    )
    return [(s, r, h, min(code, s), m, tp, ti) for s, r, h, code, m, tp, ti in out]


def scored_text(
    loaded: LoadedModel,
    text: str,
    ids: list[int],
    spans: list[tuple[int, int]],
    has_bos: bool,
    rows: list[tuple | None],
    geometry: tuple[int, int, int],
    fresh_until: int | None = None,
) -> ScoredText:
    """Assemble a :class:`ScoredText` from ``encode``'s output and per-id statistics rows.

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
            surprise, rank, entropy, code, margin, top_p, top_ids = s
            tok.surprise = surprise
            tok.probability = 2.0**-surprise
            tok.rank = rank
            tok.entropy = entropy
            tok.code_surprise = code
            tok.code_margin = margin
            tok.alternatives = tuple(
                Alternative(t, decode_token(loaded, t), p)
                for t, p in zip(top_ids, top_p, strict=True)
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


@torch.inference_mode()
def score_text(
    loaded: LoadedModel,
    text: str,
    top_k: int = 5,
    window: int | None = None,
    min_context: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress: ProgressFn | None = None,
) -> ScoredText:
    """Score every token of ``text`` from scratch.

    The first token is scored after the tokenizer's BOS when it defines one; otherwise it is
    left unscored. Texts longer than ``window`` tokens are scored in sliding windows (see
    :mod:`lossmap.analysis.windows`). To re-score edited versions of a text, keep a
    :class:`~lossmap.analysis.document_scorer.DocumentScorer` instead.
    """
    from .document_scorer import DocumentScorer  # it builds on this module

    scorer = DocumentScorer(loaded, top_k, window, min_context, chunk, keep_cache=False)
    return scorer.score(text, progress=progress)

"""Whitespace-insensitive token classes, for the tokenizer-artifact policy.

BPE merges whitespace into code tokens (``)\\n\\n\\n``, ``\\n    return``). A token can then be
surprising only because of how much whitespace it carries. Two vocabulary entries fall in
the same class when their bytes are equal after stripping ASCII whitespace; the probability
of the actual token's class is what lossmap calls its *code* probability.
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """Inverse of the GPT-2 byte-to-unicode table used by byte-level BPE vocabularies."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {chr(b): b for b in printable}
    n = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + n)] = b
            n += 1
    return table


def token_bytes(piece: str) -> bytes:
    """Raw bytes of one vocabulary entry (byte-level BPE or SentencePiece spelling)."""
    table = _byte_level_decoder()
    if all(ch in table for ch in piece):
        return bytes(table[ch] for ch in piece)
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
        return bytes([int(piece[3:5], 16)])  # SentencePiece byte fallback
    return piece.replace("\u2581", " ").encode("utf-8")


_WHITESPACE = b" \t\n\r\x0b\x0c"


def whitespace_classes(tokenizer, vocab_size: int) -> torch.Tensor:
    """Class id per vocabulary id: equal ids mean equal text once whitespace is stripped.

    Special and added tokens, and ids the tokenizer does not know (padding rows of the
    embedding matrix), each get a class of their own. Ids are 0 ... n_classes - 1.
    """
    n_tok = min(len(tokenizer), vocab_size)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n_tok)))
    special = set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    special.update(tokenizer.all_special_ids)
    classes = [0] * vocab_size
    by_text: dict[bytes, int] = {}
    unique: list[int] = []
    for i in range(vocab_size):
        piece = pieces[i] if i < n_tok else None
        if piece is None or i in special:
            unique.append(i)
            continue
        key = token_bytes(piece).strip(_WHITESPACE)
        classes[i] = by_text.setdefault(key, len(by_text))
    for n, i in enumerate(unique):
        classes[i] = len(by_text) + n
    return torch.tensor(classes, dtype=torch.long)

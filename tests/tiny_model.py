"""A tiny randomly initialised causal LM with a real byte-level BPE tokenizer, built offline.

For tests of pure logic (windows, first-token rule, JSON shape, CLI errors) where the real
model adds nothing but time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CORPUS = [
    "def f(x):\n    return x + 1\n",
    "for i in range(10):\n    print(i)\n",
    "café = '😀 中文 naïve'\nclass Point:\n    pass\n",
] * 20


def build_tiny_model(
    out_dir: Path, with_bos: bool = True, seed: int = 0, fim: bool = False, vocab: int = 400
) -> Path:
    """Write a tiny model + fast tokenizer to ``out_dir`` (a transformers directory).

    ``fim``: add Qwen's fill-in-the-middle markers; ``vocab``: BPE vocabulary size (another
    size gives another tokenizer).
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>"]
    if fim:
        specials += ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>" if with_bos else None,
        eos_token="<|endoftext|>",
    )
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast) + 8,  # padding rows, as real checkpoints have
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir

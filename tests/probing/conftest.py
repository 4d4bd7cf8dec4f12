"""A tiny randomly initialised Llama with a byte-level tokenizer: the mechanics of probing and steering in milliseconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def byte_tokenizer():
    """A byte-level BPE tokenizer without merges (256 byte tokens + <pad> + <eos>), built in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab["<pad>"] = len(vocab)
    vocab["<eos>"] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")


def tiny_llama(seed: int = 0, layers: int = 4, d: int = 32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=258, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, pad_token_id=256, eos_token_id=257, bos_token_id=257,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny() -> tuple[torch.nn.Module, object]:
    return tiny_llama(), byte_tokenizer()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, tiny) -> Path:
    """The tiny model saved in HF format (what `--model PATH` loads)."""
    path = tmp_path_factory.mktemp("tiny_llama")
    model, tokenizer = tiny
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path

"""A tiny randomly initialised Llama with SmolLM2's tokenizer: the editors' mechanics and algebra, in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interpgym.editing.facts import Fact
from interpgym.editing.seeds import RELATIONS
from interpgym.subjects.lm_loader import LanguageModel, load_language_model, packaged_tokenizer


def save_tiny_llama(directory: Path, seed: int = 0, layers: int = 4) -> Path:
    """Write a 4-block, d_model 64 Llama (random weights, SmolLM2's vocabulary) as an HF directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = packaged_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_dir: Path) -> LanguageModel:
    return load_language_model(str(tiny_dir))


def make_facts(n: int = 3) -> list[Fact]:
    """`n` continent facts (unfiltered: a random model knows none) with five neighbours each."""
    relation = RELATIONS[0]
    pairs = relation.pairs
    return [Fact(relation.name, s, relation.prompt, o, "Oceania" if o != "Oceania" else "Asia", relation.paraphrases,
                 tuple(relation.prompt.format(x) for x, _ in pairs[20:25]), relation.generation) for s, o in pairs[:n]]

"""Shared helpers for proof tests: small models, per-input ground truth from the float32 forward."""

from __future__ import annotations

import torch
from torch import Tensor

from interpgym.proofs.inputs import tokens_at
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, correct_mask, last_logits, train_maxk

# Small trained configs (v, K, d_model, steps, seed) where brute force is instant.
SMALL_CONFIGS = [
    (8, 2, 8, 600, 0),
    (10, 3, 8, 800, 1),
    (12, 4, 16, 1000, 2),
    (16, 3, 16, 1000, 3),
    (8, 5, 8, 1000, 4),
]


def small_model(vocab: int, k: int, d_model: int, steps: int, seed: int) -> MaxKWeights:
    config = MaxKConfig(vocab=vocab, k=k, d_model=d_model, d_head=d_model, steps=steps, seed=seed, checkpoint_every=max(1, steps))
    return train_maxk(config, progress=False).weights


def all_tokens(w: MaxKWeights) -> Tensor:
    return tokens_at(w.vocab, w.k, 0, w.vocab**w.k)


def forward_correct(w: MaxKWeights) -> Tensor:
    """The ground truth: the float32 model's own verdict on every input, one forward pass."""
    tokens = all_tokens(w)
    return correct_mask(last_logits(w, tokens), tokens)


def random_weights(vocab: int, k: int, d_model: int, seed: int, scale: float | None = None) -> MaxKWeights:
    return MaxKWeights.random(vocab, k, d_model, d_model, torch.Generator().manual_seed(seed), scale=scale)


def tied_model(w: MaxKWeights) -> MaxKWeights:
    """`w` with exact ties: the last two unembedding columns equal (every input whose max is
    either of those tokens is a tie, i.e. wrong) and embeddings 2 and 3 equal (attention
    cannot tell them apart)."""
    W_U, W_E = w.W_U.clone(), w.W_E.clone()
    W_U[:, -1] = W_U[:, -2]
    W_E[3] = W_E[2]
    return MaxKWeights(**{**w.as_dict(), "W_U": W_U, "W_E": W_E})


def zero_model(w: MaxKWeights) -> MaxKWeights:
    """All-zero weights of `w`'s shape: every logit ties, so every input is wrong."""
    return MaxKWeights(**{name: torch.zeros_like(t) for name, t in w.as_dict().items()})

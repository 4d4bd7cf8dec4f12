"""Indexing the input space [0, v)^K in a fixed (lexicographic) order."""

from __future__ import annotations

import torch
from jaxtyping import Int
from torch import Tensor

# Exhaustive enumeration beyond this many inputs is refused (hours of work, GBs of masks).
MAX_ENUMERABLE = 2**31


def input_count(vocab: int, k: int) -> int:
    """v^K, the number of inputs the theorem quantifies over."""
    return vocab**k


def tokens_of(index: Int[Tensor, " n"], vocab: int, k: int) -> Int[Tensor, "n k"]:
    """The inputs with the given indices: index i holds the base-v digits of i (position 0 most significant).

    This is lexicographic order, the order of `itertools.product`.
    """
    powers = vocab ** torch.arange(k - 1, -1, -1, device=index.device)
    return torch.div(index[:, None], powers, rounding_mode="floor") % vocab


def tokens_at(vocab: int, k: int, start: int, stop: int, device: torch.device | str = "cpu") -> Int[Tensor, "n k"]:
    """Inputs with indices [start, stop) in lexicographic order (see `tokens_of`)."""
    return tokens_of(torch.arange(start, stop, device=device), vocab, k)


__all__ = ["input_count", "tokens_of", "tokens_at", "MAX_ENUMERABLE"]

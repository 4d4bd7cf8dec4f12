"""Enumerating the input space [0, v)^K in a fixed order, in bounded chunks."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from jaxtyping import Int
from torch import Tensor

from interpgym.core.errors import require

# Exhaustive enumeration beyond this many inputs is refused (hours of work, GBs of masks).
MAX_ENUMERABLE = 2**31


def input_count(vocab: int, k: int) -> int:
    """v^K, the number of inputs the theorem quantifies over."""
    return vocab**k


def tokens_at(vocab: int, k: int, start: int, stop: int, device: torch.device | str = "cpu") -> Int[Tensor, "n k"]:
    """Inputs with indices [start, stop) in lexicographic order (position 0 most significant).

    Index i holds the base-v digits of i, so the order matches `itertools.product`.
    """
    index = torch.arange(start, stop, device=device)
    powers = vocab ** torch.arange(k - 1, -1, -1, device=device)
    return torch.div(index[:, None], powers, rounding_mode="floor") % vocab


def chunks(vocab: int, k: int, chunk_size: int, device: torch.device | str = "cpu") -> Iterator[tuple[int, Tensor]]:
    """(start index, tokens) for consecutive chunks of at most `chunk_size` inputs covering [0, v)^K."""
    total = input_count(vocab, k)
    require(total <= MAX_ENUMERABLE, f"v^K = {vocab}^{k} = {total} inputs is too many to enumerate; use a smaller config or a non-exhaustive strategy")
    for start in range(0, total, chunk_size):
        yield start, tokens_at(vocab, k, start, min(start + chunk_size, total), device)


__all__ = ["input_count", "tokens_at", "chunks", "MAX_ENUMERABLE"]

"""Seeding. Everything random in interpgym takes an explicit seed or generator."""

from __future__ import annotations

import torch

# Multiplier that separates the streams derived from neighbouring seeds (a prime).
_STREAM_STRIDE = 1_000_003


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on `device` seeded with `seed` (no global state touched)."""
    return torch.Generator(device=device).manual_seed(seed)


def derived_seed(seed: int, stream: int) -> int:
    """The seed of sub-stream `stream` (an epoch, a split) of a run seeded with `seed`.

    `seed * 1_000_003 + stream`: distinct for every (seed, stream) with
    0 <= stream < 1_000_003, and a pure function, so the same run gets the same numbers.
    """
    return seed * _STREAM_STRIDE + stream

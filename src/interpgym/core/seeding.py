"""Seeding. Everything random in interpgym takes an explicit seed or generator."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch global RNGs; return a fresh CPU generator seeded with `seed`.

    Prefer passing the returned generator explicitly over relying on global state.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on `device` seeded with `seed` (no global state touched)."""
    return torch.Generator(device=device).manual_seed(seed)

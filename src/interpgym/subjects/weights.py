"""Checks shared by the toy transformers' weight sets (max-of-K, its multi-head variant, modular addition):
a name -> tensor dict is accepted only with every expected name, the expected shape and finite values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from interpgym.core.errors import require


def require_names(tensors: Mapping[str, Tensor], names: Sequence[str], source: str) -> None:
    """`UserError` naming the missing tensors unless every one of `names` is in `tensors`."""
    missing = [n for n in names if n not in tensors]
    require(not missing, f"{source}: missing tensors {missing}; expected {list(names)}")


def require_shapes_and_finite(tensors: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]], source: str) -> None:
    """`UserError` for the first tensor whose shape differs from `expected[name]` or that holds NaN or inf."""
    for name, shape in expected.items():
        got = tuple(tensors[name].shape)
        require(got == shape, f"{source}: {name} has shape {got}, expected {shape}")
        require(bool(torch.isfinite(tensors[name]).all()), f"{source}: {name} contains NaN or inf")

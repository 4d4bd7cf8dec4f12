"""Weight-delta files: an edit as low-rank factors per parameter, in safetensors, checked before use.

Format: for every edited parameter `P` (a 2-D weight inside `model.layers`), two float
tensors `P::left` (out x r) and `P::right` (r x in) with Delta W = left @ right. The
rank budget is thus visible in the header shapes, so `checked_deltas` enforces the
size (number of parameters) and rank budgets and the shapes *before* multiplying
anything out; values must be finite. `factorise` turns a dense delta into factors
(exact when its rank fits, else the best rank-r approximation by SVD).
"""

from __future__ import annotations

import re

import torch
from jaxtyping import Float
from torch import Tensor

EDITABLE = re.compile(r"^model\.layers\.(\d+)\.(mlp\.(down|up|gate)_proj|self_attn\.(q|k|v|o)_proj)\.weight$")


class DeltaError(ValueError):
    """A delta file breaks the format or a budget (the message says which)."""


def factorise(delta: Float[Tensor, "out inp"], max_rank: int) -> tuple[Float[Tensor, "out r"], Float[Tensor, "r inp"]]:
    """left @ right = the best rank-<=max_rank approximation of `delta` (exact if its rank fits). Cost: one SVD."""
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    keep = int(min(max_rank, int((s > s.max() * 1e-7).sum()) if s.numel() and s.max() > 0 else 0, len(s)))
    keep = max(keep, 1)
    return (u[:, :keep] * s[:keep]).float().contiguous(), vh[:keep].float().contiguous()


def to_factors(deltas: dict[str, Tensor], max_rank: int) -> dict[str, Tensor]:
    """The safetensors dict for dense `deltas` (see the module docs)."""
    out = {}
    for name, delta in deltas.items():
        left, right = factorise(delta.detach().cpu(), max_rank)
        out[f"{name}::left"], out[f"{name}::right"] = left, right
    return out


def checked_deltas(
    tensors: dict[str, Tensor], shapes: dict[str, tuple[int, int]], max_params: int, max_rank: int
) -> dict[str, Float[Tensor, "out inp"]]:
    """Dense deltas from factor tensors, after checking names, shapes, budgets and finiteness.

    `shapes`: the model's parameter name -> (out, in). Raises `DeltaError` on any breach;
    nothing of size out x in is allocated before every check has passed.
    """
    names = set()
    for key in tensors:
        name, sep, part = key.rpartition("::")
        if not sep or part not in ("left", "right"):
            raise DeltaError(f"tensor {key!r} is not named '<parameter>::left' or '<parameter>::right'")
        if not EDITABLE.match(name) or name not in shapes:
            raise DeltaError(f"{name!r} is not an editable parameter (a q/k/v/o or MLP projection weight of a block)")
        names.add(name)
    if len(names) > max_params:
        raise DeltaError(f"{len(names)} parameters edited; the budget is {max_params}")
    for name in sorted(names):
        if f"{name}::left" not in tensors or f"{name}::right" not in tensors:
            raise DeltaError(f"{name} needs both ::left and ::right")
        left, right = tensors[f"{name}::left"], tensors[f"{name}::right"]
        out_dim, in_dim = shapes[name]
        if left.dim() != 2 or right.dim() != 2 or left.shape[0] != out_dim or right.shape[1] != in_dim or left.shape[1] != right.shape[0]:
            raise DeltaError(f"{name}: factors {tuple(left.shape)} and {tuple(right.shape)} do not make a {out_dim} x {in_dim} delta")
        if left.shape[1] > max_rank:
            raise DeltaError(f"{name}: rank {left.shape[1]} exceeds the budget {max_rank}")
        for t in (left, right):
            if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
                raise DeltaError(f"{name}: factors must be finite float tensors")
    return {name: tensors[f"{name}::left"].double() @ tensors[f"{name}::right"].double() for name in sorted(names)}

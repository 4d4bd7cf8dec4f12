"""The functional pieces several architectures share: top-k, JumpReLU, batch top-k, AuxK.

Architectures import these from here, never from one another, so each architecture
file stays one readable class and a shared formula lives in one place.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interpgym.sae.architectures.sparse_ops import Coordinates, gather_pre, row_topk_indices, sparse_decode


def topk_relu(pre: Float[Tensor, "b s"], k: int) -> Float[Tensor, "b s"]:
    """Zero all but the k largest entries of each row, then ReLU (SAELens' `TopK`)."""
    values, indices = torch.topk(pre, k=k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, values.relu())


def jumprelu(pre: Float[Tensor, "b s"], threshold: Tensor) -> Float[Tensor, "b s"]:
    """ReLU(pre) * (pre > threshold), exactly as SAELens' JumpReLU inference computes it."""
    return pre.relu() * (pre > threshold).to(pre.dtype)


@torch.no_grad()
def batch_topk_coordinates(pre: Float[Tensor, "b s"], k: int) -> Coordinates:
    """The k * rows largest positive entries of `pre` over the whole batch. No gradient."""
    flat = pre.relu().flatten()
    top = torch.topk(flat, k=min(k * pre.shape[0], flat.numel()), sorted=False)
    flat_index = top.indices[top.values > 0].sort().values
    return Coordinates.from_sorted(flat_index // pre.shape[1], flat_index % pre.shape[1], pre.shape[0], pre.shape[1])


@torch.no_grad()
def dead_topk_indices(pre: Float[Tensor, "b s"], dead: Bool[Tensor, " s"], k: int) -> Tensor:
    """Per row, the indices (into all s latents) of the k largest pre-activations among the dead latents.

    Requires 1 <= k <= dead.sum(). Only the dead columns are searched: cost O(b * n_dead)
    for the gather plus a row top-k over n_dead columns, instead of a top-k over the
    whole b x s matrix. Equals `where(dead, pre, -inf).topk(k)` up to the order of ties.
    """
    dead_columns = dead.nonzero().squeeze(1)
    return dead_columns[row_topk_indices(pre.index_select(1, dead_columns), k)]


def aux_k_loss(
    x: Float[Tensor, "b d_in"],
    x_hat: Float[Tensor, "b d_in"],
    centered: Float[Tensor, "b d_in"],
    pre: Float[Tensor, "b s"],
    W_enc: Float[Tensor, "d_in s"],
    b_enc: Float[Tensor, " s"],
    W_dec: Float[Tensor, "s d_in"],
    dead: Bool[Tensor, " s"] | None,
    aux_coeff: float,
) -> dict[str, Tensor]:
    """The AuxK loss of Gao et al. (2024); {} when no latent is dead or `aux_coeff` is 0.

    The dead latents reconstruct the residual x - x_hat (detached) of the live ones with
    their own top-k_aux, k_aux = min(d_in / 2, n_dead), without the decoder bias; the
    squared error is weighted by `aux_coeff` and min(1, n_dead / (d_in / 2)). `pre` is
    centered @ W_enc + b_enc computed without gradient. Gradients reach W_enc, b_enc and
    W_dec through the sparse kernels only: cost O(b * n_dead) to choose, O(b * k_aux * d_in)
    for the loss and its backward.
    """
    if dead is None or aux_coeff == 0:
        return {}
    n_dead = int(dead.sum())
    if n_dead == 0:
        return {}
    d_in, width = W_dec.shape[1], W_dec.shape[0]
    k_aux = max(1, min(d_in // 2, n_dead))
    scale = min(1.0, n_dead / max(1, d_in // 2))
    coords = Coordinates.from_row_topk(dead_topk_indices(pre, dead, k_aux), width)
    values = gather_pre(centered, W_enc, b_enc, pre, coords).relu()
    residual = (x - x_hat).detach()
    loss = (sparse_decode(values, coords, W_dec) - residual).pow(2).sum(-1).mean()
    return {"aux_k": aux_coeff * scale * loss}

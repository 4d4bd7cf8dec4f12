"""Sparse decoding for top-k style SAEs, in plain torch ops.

When only k of d_sae latents are active per input, the decoder and its gradients
only need the active entries. The encoder stays one dense matmul (its result is
needed to choose the active latents); the kept values are gathered from it, and the
reconstruction is an `embedding_bag` over the active decoder rows. Per step this
costs three dense B x d_in x d_sae matmuls (encoder forward and backward) plus
O(B k d_in), instead of six, with identical gradients (selection has no gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


class _SparseDecode(torch.autograd.Function):
    """out[b] = sum_j values[b, j] W_dec[indices[b, j]]; backward by gather and index_add.

    (`embedding_bag`'s own backward sorts the indices first, which costs more than the
    whole product on CPU.)
    """

    @staticmethod
    def forward(ctx, values: Tensor, indices: Tensor, W_dec: Tensor) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(values, indices, W_dec)
        return F.embedding_bag(indices, W_dec, per_sample_weights=values, mode="sum")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:  # noqa: ANN001
        values, indices, W_dec = ctx.saved_tensors
        grad_values = grad_W_dec = None
        if ctx.needs_input_grad[0]:
            grad_values = (W_dec[indices] * grad.unsqueeze(1)).sum(-1)
        if ctx.needs_input_grad[2]:
            rows = (values.unsqueeze(-1) * grad.unsqueeze(1)).reshape(-1, grad.shape[-1])
            grad_W_dec = torch.zeros_like(W_dec).index_add_(0, indices.reshape(-1), rows)
        return grad_values, None, grad_W_dec


def sparse_decode(values: Float[Tensor, "b m"], indices: Int[Tensor, "b m"], W_dec: Float[Tensor, "s d_in"]) -> Float[Tensor, "b d_in"]:
    """sum_j values[b, j] * W_dec[indices[b, j]] (no bias), differentiable. O(b m d_in)."""
    return _SparseDecode.apply(values, indices, W_dec)


def coordinate_decode(
    values: Float[Tensor, " n"], rows: Int[Tensor, " n"], cols: Int[Tensor, " n"], W_dec: Float[Tensor, "s d_in"], batch: int
) -> Float[Tensor, "b d_in"]:
    """x_hat[b] = sum over pairs (b, col) of value * W_dec[col] (no bias); `rows` must be sorted. O(n d_in)."""
    counts = torch.bincount(rows, minlength=batch)
    offsets = torch.cumsum(counts, 0) - counts
    return F.embedding_bag(cols, W_dec, offsets, per_sample_weights=values, mode="sum")


# Above this k, torch.topk is faster than k rounds of (max, mask) on CPU.
ITERATIVE_TOPK_MAX_K = 8


@torch.no_grad()
def row_topk_indices(pre: Float[Tensor, "b s"], k: int) -> Int[Tensor, "b k"]:
    """Indices of the k largest entries of each row (any order within a row; no gradient).

    For small k on CPU, k rounds of a vectorised row max and masking are several times
    faster than `torch.topk`; exact ties (which would select more than k) fall back to
    `torch.topk`, so the result always equals a valid top-k (NaN or -inf entries change
    the count of masked entries and so also fall back).
    """
    if k > ITERATIVE_TOPK_MAX_K or pre.device.type != "cpu":
        return pre.topk(k, dim=-1, sorted=False).indices
    remaining = pre.clone()
    for _ in range(k):
        remaining.masked_fill_(remaining >= remaining.amax(-1, keepdim=True), float("-inf"))
    chosen = torch.isneginf(remaining).nonzero()[:, 1]
    if chosen.numel() != pre.shape[0] * k:
        return pre.topk(k, dim=-1, sorted=False).indices
    return chosen.view(pre.shape[0], k)

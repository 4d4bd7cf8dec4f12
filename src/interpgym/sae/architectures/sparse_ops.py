"""Sparse training kernels for top-k style SAEs (CPU and CUDA), in stock torch ops.

When only k of d_sae latents are active per input, everything but *choosing* them
needs only the active entries. The dense pre-activations are one matmul without
autograd (needed to choose). The chosen entries are `Coordinates` — (row, latent)
pairs sorted by row, i.e. a CSR pattern — and

* `gather_pre` returns their pre-activations with a backward that computes
  d(W_enc) = (G^T @ centered)^T (sparse @ dense), d(centered) = G @ W_enc^T (embedding_bag)
  and d(b_enc) (bincount) from the sparse gradient G only;
* `sparse_decode` reconstructs with an `embedding_bag` over the active decoder rows,
  with d(values) by `sampled_addmm` and d(W_dec) = F^T @ g (sparse @ dense).

A step thus costs one dense B x d_in x d_sae matmul plus O(B k d_in) work, instead of
the six dense matmuls of a dense SAE step, with the same gradients up to rounding
(`tests/sae/test_sparse_ops.py` checks them against the dense computation).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


@dataclass(frozen=True)
class Coordinates:
    """Active (row, latent) pairs sorted by row (latents ascending within a row): a CSR pattern."""

    rows: Int[Tensor, " n"]
    cols: Int[Tensor, " n"]
    crow: Int[Tensor, " b_plus_1"]
    batch: int
    width: int

    @staticmethod
    def from_sorted(rows: Tensor, cols: Tensor, batch: int, width: int) -> Coordinates:
        """From pairs already sorted by (row, col)."""
        crow = torch.zeros(batch + 1, dtype=torch.long, device=rows.device)
        crow[1:] = torch.bincount(rows, minlength=batch).cumsum(0)
        return Coordinates(rows, cols, crow, batch, width)

    @staticmethod
    def from_row_topk(indices: Int[Tensor, "b k"], width: int) -> Coordinates:
        """From per-row top-k indices (any order within a row)."""
        batch, k = indices.shape
        cols = indices.sort(dim=1).values.reshape(-1)
        rows = torch.arange(batch, device=indices.device).repeat_interleave(k)
        crow = torch.arange(0, batch * k + 1, k, device=indices.device)
        return Coordinates(rows, cols, crow, batch, width)

    def subset(self, keep: Tensor) -> Coordinates:
        """The pairs where `keep` is true (order preserved)."""
        return Coordinates.from_sorted(self.rows[keep], self.cols[keep], self.batch, self.width)

    def matrix(self, values: Float[Tensor, " n"]) -> Tensor:
        """The batch x width CSR matrix with `values` at these coordinates."""
        with warnings.catch_warnings():  # torch warns that CSR is "beta"; the ops used here are tested
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.cols, values, (self.batch, self.width))


class _GatherPre(torch.autograd.Function):
    @staticmethod
    def forward(ctx, centered: Tensor, W_enc: Tensor, b_enc: Tensor, pre: Tensor, coords: Coordinates) -> Tensor:
        ctx.save_for_backward(centered, W_enc)
        ctx.coords = coords
        return pre[coords.rows, coords.cols]

    @staticmethod
    def backward(ctx, grad: Tensor):
        centered, W_enc = ctx.saved_tensors
        coords: Coordinates = ctx.coords
        grad = grad.contiguous()
        grad_centered = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            grad_centered = F.embedding_bag(coords.cols, W_enc.t().contiguous(), coords.crow[:-1], per_sample_weights=grad, mode="sum")
        if ctx.needs_input_grad[1]:
            grad_W_enc = (coords.matrix(grad).t() @ centered).t().contiguous()
        if ctx.needs_input_grad[2]:
            grad_b_enc = torch.bincount(coords.cols, weights=grad, minlength=coords.width).to(grad.dtype)
        return grad_centered, grad_W_enc, grad_b_enc, None, None


def gather_pre(
    centered: Float[Tensor, "b d_in"],
    W_enc: Float[Tensor, "d_in s"],
    b_enc: Float[Tensor, " s"],
    pre: Float[Tensor, "b s"],
    coords: Coordinates,
) -> Float[Tensor, " n"]:
    """pre at `coords`, differentiable w.r.t. (centered, W_enc, b_enc); `pre` must equal
    centered @ W_enc + b_enc computed under no_grad. Backward: O(n d_in) sparse products."""
    return _GatherPre.apply(centered, W_enc, b_enc, pre, coords)


class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: Tensor, W_dec: Tensor, coords: Coordinates) -> Tensor:
        ctx.save_for_backward(values, W_dec)
        ctx.coords = coords
        return F.embedding_bag(coords.cols, W_dec, coords.crow[:-1], per_sample_weights=values, mode="sum")

    @staticmethod
    def backward(ctx, grad: Tensor):
        values, W_dec = ctx.saved_tensors
        coords: Coordinates = ctx.coords
        grad = grad.contiguous()
        grad_values = grad_W_dec = None
        if ctx.needs_input_grad[0]:
            grad_values = torch.sparse.sampled_addmm(coords.matrix(torch.zeros_like(values)), grad, W_dec.t(), beta=0.0).values()
        if ctx.needs_input_grad[1]:
            grad_W_dec = coords.matrix(values).t() @ grad
        return grad_values, grad_W_dec, None


def sparse_decode(values: Float[Tensor, " n"], coords: Coordinates, W_dec: Float[Tensor, "s d_in"]) -> Float[Tensor, "b d_in"]:
    """x_hat[b] = sum over pairs (b, i) of value * W_dec[i] (no bias), differentiable. O(n d_in)."""
    return _SparseDecode.apply(values, W_dec, coords)


# Above this k, numpy's introselect beats `torch.topk` on CPU; at or below it, `torch.topk` wins.
TORCH_TOPK_MAX_K = 8
_NUMPY_FLOATS = (torch.float32, torch.float64)


@torch.no_grad()
def row_topk_indices(pre: Float[Tensor, "b s"], k: int) -> Int[Tensor, "b k"]:
    """Indices of the k largest entries of each row (any order within a row; no gradient).

    `torch.topk` except on CPU for k > `TORCH_TOPK_MAX_K` with float32/64 input, where
    numpy's introselect (`argpartition`, O(s) per row) replaces it: `torch.topk`'s CPU
    kernel slows with k (AuxK's k = d_in / 2). Which is faster where is measured by
    `benchmarks/sae_topk.py` (CPU time, one thread): torch.topk for small k at every
    width, argpartition for k of 16 to 128 at widths up to a few thousand.
    """
    if pre.device.type != "cpu" or k <= TORCH_TOPK_MAX_K or pre.dtype not in _NUMPY_FLOATS:
        return pre.topk(k, dim=-1, sorted=False).indices
    return torch.from_numpy(np.argpartition(pre.numpy(), -k, axis=-1)[:, -k:])

"""The sparse top-k training kernels give the gradients of the dense computation."""

from __future__ import annotations

import torch

from interpgym.sae.architectures.functional import batch_topk_coordinates
from interpgym.sae.architectures.sparse_ops import Coordinates, gather_pre, row_topk_indices, sparse_decode


def _dense_reference(centered, W_enc, b_enc, W_dec, coords: Coordinates):
    pre = centered @ W_enc + b_enc
    mask = torch.zeros_like(pre, dtype=torch.bool)
    mask[coords.rows, coords.cols] = True
    acts = torch.where(mask, pre, torch.zeros_like(pre)).relu()
    return acts @ W_dec


def _check(coords_from_pre) -> None:
    gen = torch.Generator().manual_seed(0)
    B, D, S = 12, 5, 20
    leaves = [torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True) for shape in ((B, D), (D, S), (S,), (S, D))]
    centered, W_enc, b_enc, W_dec = leaves
    weights = torch.randn(B, D, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        pre = centered @ W_enc + b_enc
    coords = coords_from_pre(pre)
    values = gather_pre(centered, W_enc, b_enc, pre, coords).relu()
    sparse_grads = torch.autograd.grad((sparse_decode(values, coords, W_dec) * weights).sum(), leaves)
    dense_grads = torch.autograd.grad((_dense_reference(centered, W_enc, b_enc, W_dec, coords) * weights).sum(), leaves)
    for sparse, dense in zip(sparse_grads, dense_grads, strict=True):
        torch.testing.assert_close(sparse.to_dense() if sparse.is_sparse else sparse, dense)


def test_row_topk_kernels_match_dense_gradients() -> None:
    _check(lambda pre: Coordinates.from_row_topk(row_topk_indices(pre, 3), pre.shape[1]))


def test_batch_topk_kernels_match_dense_gradients() -> None:
    _check(lambda pre: batch_topk_coordinates(pre, 3))


def test_row_topk_indices_equals_torch_topk() -> None:
    gen = torch.Generator().manual_seed(1)
    for k in (1, 4, 8, 12):
        pre = torch.randn(50, 40, generator=gen)
        ours = row_topk_indices(pre, k).sort(dim=1).values
        assert torch.equal(ours, pre.topk(k, dim=1).indices.sort(dim=1).values)
    tied = torch.zeros(3, 6)
    assert row_topk_indices(tied, 2).shape == (3, 2)  # ties fall back to torch.topk

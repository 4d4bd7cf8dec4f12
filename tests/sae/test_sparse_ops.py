"""The sparse top-k training kernels give the gradients of the dense computation."""

from __future__ import annotations

import pytest
import torch

from interpgym.sae.architectures.functional import aux_k_loss, batch_topk_coordinates, dead_topk_indices
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


def _dense_aux_k(x, x_hat, centered, W_enc, b_enc, W_dec, dead, aux_coeff):
    """AuxK as first written: a dense top-k over the whole batch x width matrix, dense decode."""
    n_dead, d_in = int(dead.sum()), W_dec.shape[1]
    k_aux = max(1, min(d_in // 2, n_dead))
    scale = min(1.0, n_dead / max(1, d_in // 2))
    pre = centered @ W_enc + b_enc
    chosen = torch.where(dead, pre.detach(), torch.finfo(pre.dtype).min).topk(k_aux, dim=-1).indices
    mask = torch.zeros_like(pre, dtype=torch.bool).scatter_(1, chosen, True)
    acts = torch.where(mask, pre, torch.zeros_like(pre)).relu()
    return aux_coeff * scale * (acts @ W_dec - (x - x_hat).detach()).pow(2).sum(-1).mean()


@pytest.mark.parametrize("dead_frac", [0.1, 0.5, 0.9])
def test_cheap_aux_k_matches_the_dense_reference(dead_frac: float) -> None:
    gen = torch.Generator().manual_seed(1)
    B, D, S = 16, 12, 40
    leaves = [torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True) for shape in ((B, D), (D, S), (S,), (S, D))]
    centered, W_enc, b_enc, W_dec = leaves
    x, x_hat = torch.randn(B, D, generator=gen, dtype=torch.float64), torch.randn(B, D, generator=gen, dtype=torch.float64)
    dead = torch.rand(S, generator=gen) < dead_frac
    with torch.no_grad():
        pre = centered @ W_enc + b_enc
    ours = aux_k_loss(x, x_hat, centered, pre, W_enc, b_enc, W_dec, dead, 0.5)["aux_k"]
    reference = _dense_aux_k(x, x_hat, centered, W_enc, b_enc, W_dec, dead, 0.5)
    torch.testing.assert_close(ours, reference)
    for sparse, dense in zip(torch.autograd.grad(ours, leaves), torch.autograd.grad(reference, leaves), strict=True):
        torch.testing.assert_close(sparse.to_dense() if sparse.is_sparse else sparse, dense)


def test_dead_topk_indices_pick_only_dead_latents() -> None:
    pre = torch.randn(64, 100, generator=torch.Generator().manual_seed(2))
    dead = torch.zeros(100, dtype=torch.bool)
    dead[torch.arange(0, 100, 3)] = True
    chosen = dead_topk_indices(pre, dead, 6)
    assert dead[chosen].all()
    expected = torch.where(dead, pre, float("-inf")).topk(6, dim=-1).indices
    assert torch.equal(chosen.sort(1).values, expected.sort(1).values)


def test_aux_k_is_empty_without_dead_latents() -> None:
    W = torch.randn(4, 8)
    assert (
        aux_k_loss(
            torch.zeros(2, 4),
            torch.zeros(2, 4),
            torch.zeros(2, 4),
            torch.zeros(2, 8),
            W,
            torch.zeros(8),
            W.T,
            torch.zeros(8, dtype=torch.bool),
            1.0,
        )
        == {}
    )


@pytest.mark.parametrize("k", [1, 5, 9, 40, 100])
def test_row_topk_indices_is_an_exact_top_k(k: int) -> None:
    pre = torch.randn(33, 100, generator=torch.Generator().manual_seed(k))
    chosen = row_topk_indices(pre, k).sort(dim=1).values
    assert torch.equal(chosen, pre.topk(k, dim=-1).indices.sort(dim=1).values)
    assert torch.equal(row_topk_indices(pre.double(), k).sort(dim=1).values, chosen)

"""The closed-form updates satisfy their defining identities (pure algebra, float64)."""

from __future__ import annotations

import torch

from interpgym.editing.updates import alphaedit_update, memit_update, null_space_projector, rome_update


def _spd(f: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(4 * f, f, generator=gen, dtype=torch.float64)
    return a.T @ a / (4 * f)


def test_rome_update_writes_the_value_and_is_rank_one() -> None:
    gen = torch.Generator().manual_seed(0)
    d, f = 12, 20
    cov, key, weight = (
        _spd(f, gen),
        torch.randn(f, generator=gen, dtype=torch.float64),
        torch.randn(d, f, generator=gen, dtype=torch.float64),
    )
    value = torch.randn(d, generator=gen, dtype=torch.float64)
    delta = rome_update(cov, key, value - weight @ key)
    torch.testing.assert_close((weight + delta) @ key, value, rtol=1e-12, atol=1e-12)
    assert torch.linalg.matrix_rank(delta) == 1


def test_rome_update_has_least_covariance_weighted_norm() -> None:
    gen = torch.Generator().manual_seed(1)
    d, f = 6, 10
    cov, key, residual = (
        _spd(f, gen),
        torch.randn(f, generator=gen, dtype=torch.float64),
        torch.randn(d, generator=gen, dtype=torch.float64),
    )
    best = rome_update(cov, key, residual)
    cost = torch.trace(best @ cov @ best.T)
    for _ in range(20):  # any other update with the same effect on k costs more
        other = best + torch.outer(torch.randn(d, generator=gen, dtype=torch.float64), _orthogonal_to(key, gen))
        torch.testing.assert_close(other @ key, residual, rtol=1e-10, atol=1e-10)
        assert torch.trace(other @ cov @ other.T) >= cost - 1e-9


def _orthogonal_to(key: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(len(key), generator=gen, dtype=torch.float64)
    return x - (x @ key) / (key @ key) * key


def test_memit_update_equals_a_direct_least_squares_solve() -> None:
    gen = torch.Generator().manual_seed(2)
    d, f, n, weight = 8, 16, 5, 3.0
    cov = _spd(f, gen)
    keys, residuals = torch.randn(f, n, generator=gen, dtype=torch.float64), torch.randn(d, n, generator=gen, dtype=torch.float64)
    delta = memit_update(cov, keys, residuals, weight)
    # argmin ||X K - R||^2 + weight tr(X C X^T) as one stacked least-squares problem: [K^T; sqrt(w) C^1/2] X^T = [R^T; 0]
    values, vectors = torch.linalg.eigh(cov)
    root = vectors @ torch.diag(values.sqrt()) @ vectors.T
    a = torch.cat([keys.T, weight**0.5 * root])
    b = torch.cat([residuals.T, torch.zeros(f, d, dtype=torch.float64)])
    direct = torch.linalg.lstsq(a, b).solution.T
    torch.testing.assert_close(delta, direct, rtol=1e-9, atol=1e-10)


def test_memit_with_one_key_and_vanishing_weight_matches_rome() -> None:
    gen = torch.Generator().manual_seed(3)
    d, f = 5, 9
    cov, key, residual = (
        _spd(f, gen),
        torch.randn(f, 1, generator=gen, dtype=torch.float64),
        torch.randn(d, 1, generator=gen, dtype=torch.float64),
    )
    memit = memit_update(cov, key, residual, 1e-9)
    torch.testing.assert_close(memit @ key, residual, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(memit, rome_update(cov, key[:, 0], residual[:, 0]), rtol=1e-5, atol=1e-6)


def test_alphaedit_leaves_preserved_keys_outputs_unchanged() -> None:
    gen = torch.Generator().manual_seed(4)
    d, f, n_preserved = 10, 24, 15  # preserved keys span 15 of 24 dimensions
    preserved = torch.randn(f, n_preserved, generator=gen, dtype=torch.float64)
    cov = preserved @ preserved.T / n_preserved
    projector, null_dim = null_space_projector(cov, 1e-8)
    assert null_dim == f - n_preserved
    keys, residuals = torch.randn(f, 3, generator=gen, dtype=torch.float64), torch.randn(d, 3, generator=gen, dtype=torch.float64)
    earlier = torch.randn(f, 2, generator=gen, dtype=torch.float64)
    delta = alphaedit_update(projector, keys, residuals, earlier, ridge=0.1)
    scale = delta.abs().max()
    assert scale > 1e-3  # a real update ...
    torch.testing.assert_close(delta @ preserved, torch.zeros(d, n_preserved, dtype=torch.float64), rtol=0, atol=1e-10 * float(scale))
    torch.testing.assert_close(delta @ projector, delta, rtol=1e-10, atol=1e-12)  # ... living in the null space


def test_alphaedit_fits_new_keys_that_have_a_null_space_component() -> None:
    gen = torch.Generator().manual_seed(5)
    d, f = 6, 12
    preserved = torch.randn(f, 4, generator=gen, dtype=torch.float64)
    projector, _ = null_space_projector(preserved @ preserved.T, 1e-8)
    keys, residuals = torch.randn(f, 2, generator=gen, dtype=torch.float64), torch.randn(d, 2, generator=gen, dtype=torch.float64)
    delta = alphaedit_update(projector, keys, residuals, ridge=1e-8)
    torch.testing.assert_close(delta @ keys, residuals, rtol=1e-5, atol=1e-5)

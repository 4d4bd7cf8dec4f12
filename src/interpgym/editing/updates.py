"""The closed-form weight updates of ROME, MEMIT and AlphaEdit (pure linear algebra, float64).

Shapes: W is d x f (out x in, as `nn.Linear.weight`), keys are columns k in R^f,
residuals r in R^d, C = E[k k^T] is f x f. Each function states what its result
satisfies; `tests/editing/test_updates.py` checks those identities.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def rome_update(
    cov: Float[Tensor, "f f"], key: Float[Tensor, " f"], residual: Float[Tensor, " d"]
) -> Float[Tensor, "d f"]:
    """ROME's rank-one update: Delta = r u^T / (u^T k) with u = C^{-1} k.

    Guarantees Delta k = r exactly (so W' k = W k + r = v*), and among all updates doing
    so it has the least C-weighted norm tr(Delta C Delta^T). r-ROME's fix is on the
    caller's side: pass the same averaged key k* that `residual` was computed for.
    Cost: one f x f solve.
    """
    u = torch.linalg.solve(cov.double(), key.double())
    return torch.outer(residual.double(), u) / (u @ key.double())


def memit_update(
    cov: Float[Tensor, "f f"], keys: Float[Tensor, "f n"], residuals: Float[Tensor, "d n"], weight: float
) -> Float[Tensor, "d f"]:
    """MEMIT's batch update: Delta = R K^T (lambda C + K K^T)^{-1}.

    It minimises ||Delta K - R||_F^2 + lambda tr(Delta C Delta^T): fit the new memories,
    disturb the old ones (whose second moment is C) as little as possible. Cost: one f x f solve.
    """
    keys, residuals = keys.double(), residuals.double()
    system = weight * cov.double() + keys @ keys.T
    return torch.linalg.solve(system, keys @ residuals.T).T


def null_space_projector(cov: Float[Tensor, "f f"], relative_threshold: float) -> tuple[Float[Tensor, "f f"], int]:
    """P = U0 U0^T over the eigenvectors of C whose eigenvalue is < `relative_threshold` x the largest.

    Keys whose second moment is C lie (up to that threshold) in the span of the other
    eigenvectors, so P k ~ 0 for them and an update of the form Delta = M P leaves their
    outputs unchanged. Returns P and the null space's dimension. Cost: one f x f eigendecomposition.
    """
    values, vectors = torch.linalg.eigh(cov.double())
    null = vectors[:, values < relative_threshold * values.max()]
    return null @ null.T, int(null.shape[1])


def alphaedit_update(
    projector: Float[Tensor, "f f"], keys: Float[Tensor, "f n"], residuals: Float[Tensor, "d n"],
    previous_keys: Float[Tensor, "f m"] | None = None, ridge: float = 10.0,
) -> Float[Tensor, "d f"]:
    """AlphaEdit's update: Delta^T = (P (K_p K_p^T + K K^T) + ridge I)^{-1} P K R^T.

    Delta = Delta P (its rows lie in P's range), so Delta k = 0 for every key with P k = 0:
    preserved knowledge is untouched by construction. K_p are the keys of earlier edits
    (sequential editing), which the update also tries not to disturb. Cost: one f x f solve.
    """
    keys, residuals, projector = keys.double(), residuals.double(), projector.double()
    gram = keys @ keys.T
    if previous_keys is not None and previous_keys.numel():
        gram = gram + previous_keys.double() @ previous_keys.double().T
    system = projector @ gram + ridge * torch.eye(len(projector), dtype=torch.float64, device=projector.device)
    return torch.linalg.solve(system, projector @ keys @ residuals.T).T

"""The loss theorem for max-of-K: what a loss proof certifies, and the shared arithmetic.

**Theorem.** The expected cross-entropy of the float32 model over the uniform
distribution on all v^K inputs,

    loss = v^-K sum_t log(1 + sum_{j != m(t)} exp(l_j(t) - l_m(t))),   m(t) = max(t),

(l = the float32 forward's last-position logits, the cross-entropy evaluated exactly
from them) is at most b.

Every loss proof bounds, per input, the *log excess* X(t) = log sum_{j != m} exp(l_j - l_m)
from above by a number x(t) (float32 rounding included through the margin slack S of
`roundoff.margin_slack`: l_j - l_m <= (exact-arithmetic difference) + S), so the
input's loss is at most softplus(x(t)) = log(1 + e^x(t)), which is increasing in x.
The bound b is the average of softplus(x(t)), computed exactly by combinatorics over
cases (never by enumerating inputs, except brute force), then multiplied by
1 + `ROUNDING_PAD` to cover the float64 rounding of that sum (at most about
n 2^-53 relative for n terms, n <= 2^31 here).

A result carries `log_excess(tokens)`, the per-input bound x(t), so tests can check the
bound against the float32 forward input by input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

ROUNDING_PAD = 1e-9

LogExcess = Callable[[Int[Tensor, "batch k"]], Float[Tensor, " batch"]]


def loss_from_log_excess(x: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """softplus(x) = log(1 + e^x), stable for any x (-inf gives 0)."""
    return torch.logaddexp(torch.zeros_like(x), x)


def padded_average(total: float, count: int) -> float:
    """total / count, rounded up by the float64 summation pad."""
    return total / count * (1.0 + ROUNDING_PAD)


def float32_log_excess(logits: Float[Tensor, "batch v"], tokens: Int[Tensor, "batch k"]) -> Float[Tensor, " batch"]:
    """X(t) of the given (float32) logits, evaluated in float64: the truth loss proofs are tested against."""
    logits = logits.double()
    target = tokens.max(dim=-1).values[:, None]
    others = logits.scatter(1, target, float("-inf"))
    return (others - logits.gather(1, target)).logsumexp(dim=1)


@dataclass
class LossResult:
    """A certified upper bound on the expected loss over all v^K inputs, with its cost.

    `flops` counts the verification only (as for accuracy proofs). `log_excess` maps
    inputs to this proof's per-input bound x(t) (bookkeeping for tests, not costed).
    """

    strategy: str
    bound: float
    flops: int
    wall_s: float
    unexplained_dim: float
    complexity: str
    log_excess: LogExcess | None = field(default=None, repr=False)
    exact_loss: float | None = None  # set by brute force only: the exact mean loss the others are audited against
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, exact_loss: float) -> dict[str, Any]:
        """The JSON row: `normalized` = exact loss / bound (1 is tight, higher is better)."""
        return {
            "strategy": self.strategy,
            "bound": self.bound,
            "normalized": exact_loss / self.bound if self.bound > 0 else 1.0,
            "flops": int(self.flops),
            "wall_s": float(self.wall_s),
            "unexplained_dim": float(self.unexplained_dim),
            "complexity": self.complexity,
        }


__all__ = ["LossResult", "LogExcess", "loss_from_log_excess", "padded_average", "float32_log_excess", "ROUNDING_PAD"]

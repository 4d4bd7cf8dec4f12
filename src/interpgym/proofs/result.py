"""The result of running one proof strategy on one model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jaxtyping import Bool
from torch import Tensor

from interpgym.proofs.certificates import count_certified


@dataclass
class ProofResult:
    """A certified lower bound on accuracy over all v^K inputs, with its cost.

    `certified` inputs / v^K = `bound`. `flops` counts the verification only (proof
    search is excluded), measured by `interpgym.core.flops.FlopCounter`.
    `unexplained_dim` is the paper's unexplained dimensionality of the proof.
    `ok` / `ok_pure` (see `certificates`) let tests check soundness per input.
    `correct` is set by the brute-force strategies only: the exact per-input verdict (flat
    index over v^K inputs, `tokens_of` order) that audits compare other certificates against.
    """

    strategy: str
    certified: int
    total: int
    flops: int
    wall_s: float
    unexplained_dim: float
    complexity: str
    ok: Bool[Tensor, "m q c n"] | None = field(default=None, repr=False)
    ok_pure: Bool[Tensor, "m q"] | None = field(default=None, repr=False)
    correct: Bool[Tensor, " inputs"] | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_certificate(
        cls, strategy: str, ok: Bool[Tensor, "m q c n"], ok_pure: Bool[Tensor, "m q"], *, flops: int, wall_s: float,
        unexplained_dim: float, complexity: str, extra: dict[str, Any] | None = None,
    ) -> ProofResult:
        """The result of a certificate (`certificates`): its inputs counted exactly, out of all v^K."""
        vocab, k = ok.shape[0], ok.shape[3]
        return cls(strategy=strategy, certified=count_certified(ok, ok_pure), total=vocab**k, flops=flops, wall_s=wall_s,
                   unexplained_dim=unexplained_dim, complexity=complexity, ok=ok, ok_pure=ok_pure, extra=extra or {})

    @property
    def bound(self) -> float:
        return self.certified / self.total

    def row(self, exact_accuracy: float) -> dict[str, Any]:
        """The JSON row of the CLI contract."""
        return {
            "strategy": self.strategy,
            "bound": self.bound,
            "normalized": self.bound / exact_accuracy if exact_accuracy > 0 else 0.0,
            "flops": int(self.flops),
            "wall_s": float(self.wall_s),
            "unexplained_dim": float(self.unexplained_dim),
            "complexity": self.complexity,
        }


__all__ = ["ProofResult"]

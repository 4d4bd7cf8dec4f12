"""Proof strategies by name: `brute-force`, `cubic`, and the `subcubic/<variant>` family.

Each strategy is a function `(MaxKWeights) -> ProofResult` that measures its own FLOPs
(verification only) and wall time. `complexity` is the asymptotic cost of its
verification; `unexplained_dim` (set by the strategy on its result) is the paper's
*unexplained dimensionality*: the number of free real parameters the proof consumes
as arbitrary, structureless data, i.e. the size of the tables it must examine entry
by entry instead of explaining them. Definitions used here:

* brute-force: v^K, one margin per input (the model is a black box over its inputs);
* cubic: 3 v^2 + 2 v K, the tables EQKE, EVOU, EU (v x v) and EQKP, PVOU (v x K)
  examined without further structure;
* subcubic variants: defined by `interpgym.proofs.subcubic` per variant (the tables
  it still treats as arbitrary plus the parameters of its low-rank descriptions).
"""

from __future__ import annotations

from collections.abc import Callable

from interpgym.core.selection import parse_selection
from interpgym.proofs import brute_force as brute_force_module
from interpgym.proofs import cubic as cubic_module
from interpgym.proofs import subcubic
from interpgym.proofs.result import ProofResult
from interpgym.subjects.maxk import MaxKWeights

Strategy = Callable[[MaxKWeights], ProofResult]

BRUTE_FORCE = brute_force_module.NAME


def strategies() -> dict[str, Strategy]:
    """Every registered strategy, brute force first, then cubic, then the subcubic family (sorted)."""
    table: dict[str, Strategy] = {
        BRUTE_FORCE: brute_force_module.brute_force,
        cubic_module.NAME: cubic_module.cubic,
    }
    for name in sorted(subcubic.STRATEGIES):
        table[name] = subcubic.STRATEGIES[name]
    return table


def resolve(selection: str) -> list[str]:
    """Strategy names for `all` or a comma-separated list; `UserError` naming any unknown one."""
    return parse_selection(selection, list(strategies()), flag="--strategies", what="strategy")


__all__ = ["strategies", "resolve", "Strategy", "BRUTE_FORCE"]

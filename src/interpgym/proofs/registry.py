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

from interpgym.core.errors import UserError
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
    known = strategies()
    if selection.strip() == "all":
        return list(known)
    names = [part.strip() for part in selection.split(",") if part.strip()]
    if not names:
        raise UserError("--strategies is empty: pass 'all' or a comma-separated list of " + ", ".join(known))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown strategy {unknown[0]!r}: choose 'all' or from {', '.join(known)}")
    return list(dict.fromkeys(names))


def get(name: str) -> Strategy:
    """The strategy called `name` (`UserError` if unknown)."""
    return strategies()[resolve(name)[0]]


__all__ = ["strategies", "resolve", "get", "Strategy", "BRUTE_FORCE"]

"""Subcubic proof strategies for max-of-K (being written; no variants registered yet).

Contract with the strategy registry: `STRATEGIES` maps a strategy name
`"subcubic/<variant>"` to a function `(MaxKWeights) -> ProofResult`.
"""

from __future__ import annotations

from collections.abc import Callable

from interpgym.proofs.result import ProofResult
from interpgym.subjects.maxk import MaxKWeights

STRATEGIES: dict[str, Callable[[MaxKWeights], ProofResult]] = {}

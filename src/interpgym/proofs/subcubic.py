"""Subcubic proof strategies for max-of-K (Gross, Agrawal, Chan et al., NeurIPS 2024, sec. 4.3).

Contract with the strategy registry: `STRATEGIES` maps a strategy name
`"subcubic/eqke=<E>/direct=<D>/attn=<A>"` to a function `(MaxKWeights) -> ProofResult`:

* E, how the query-key matrix EQKE is handled (`subcubic_tables`): `exact` (formed in
  full, O(v^2 d)), or a rank-1 SVD split whose residual is bounded without forming it:
  `svd`, `max_diff`, `mean+max_diff`;
* D, the direct path (E[q] + P[K-1]) W_U: `exact` (formed, O(v^2 d)) or
  `mean_query+max_diff` (mean query row plus a per-query bound, O(v d));
* A, attention handling (`subcubic_cases`): `mean+diff` (per-(m, n) average attention
  plus a sound two-sided per-query correction) or `drop_average` (average 0).

Each run: proof search (directions, gaps, average attention; not costed), then the
verification under `FlopCounter`: the O(v^2)-sized tables and the O(v^2 K) per-case
check. The result carries `ok` / `ok_pure` (see `certificates`) so soundness can be
tested per input. Wall time is the verification's, timed in a separate run without the
FLOP counter's interception overhead.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from interpgym.core.flops import FlopCounter
from interpgym.proofs.certificates import count_certified
from interpgym.proofs.result import ProofResult
from interpgym.proofs.roundoff import margin_slack, value_logit_bound
from interpgym.proofs.subcubic_cases import CaseTables, case_tables, certificate_tables, certified_cases
from interpgym.proofs.subcubic_search import leading_directions, search_certificate
from interpgym.proofs.subcubic_tables import DIRECT_METHODS, EQKE_METHODS, direct_tables, eqke_tables, query_key_factors
from interpgym.proofs.tables import ov_tables
from interpgym.subjects.maxk import MaxKWeights

ATTENTION_METHODS = ("mean+diff", "drop_average")


@dataclass(frozen=True)
class SubcubicVariant:
    """One combination of EQKE, direct-path and attention handling."""

    eqke: str
    direct: str
    attention: str

    @property
    def name(self) -> str:
        return f"subcubic/eqke={self.eqke}/direct={self.direct}/attn={self.attention}"

    def unexplained_dim(self, vocab: int, k: int) -> float:
        """Free parameters of the model summaries the proof uses without explaining them.

        EQKE: v^2 exact; rank-1 split: 2v (the two singular vectors) plus the residual
        bound (1 number for `svd`, v per-query numbers for the max-diff bounds).
        EQKP: v K. EVOU: v^2, PVOU: K v. Direct path: v^2 exact, 2v for mean + per-query bound.
        """
        eqke = {"exact": vocab**2, "svd": 2 * vocab + 1}.get(self.eqke, 3 * vocab)
        direct = vocab**2 if self.direct == "exact" else 2 * vocab
        return float(eqke + vocab * k + vocab**2 + k * vocab + direct)

    @property
    def complexity(self) -> str:
        """Asymptotic verification cost. EVOU (v^2 d) is always formed, so the direct-path
        choice does not change it; a low-rank EQKE replaces a v^2 d term by v d^2."""
        if self.eqke == "exact":
            return "O(v^2·d + v^2·K + d^3)"
        return "O(v^2·d + v·d^2 + v^2·K)"


VARIANTS = tuple(
    SubcubicVariant(eqke, direct, attention)
    for eqke, direct, attention in itertools.product(EQKE_METHODS, DIRECT_METHODS, ATTENTION_METHODS)
)


def verification_tables(w: MaxKWeights, variant: SubcubicVariant, directions: tuple[torch.Tensor, torch.Tensor]) -> CaseTables:
    """The costed first half of the verification: every table the per-case check reads."""
    factors = query_key_factors(w)
    att = eqke_tables(factors, variant.eqke, *directions)
    evou, pvou = ov_tables(w)
    direct = direct_tables(w, factors.query, variant.direct)
    logit_scale = evou.abs().amax() + pvou.abs().amax() + direct.mean_logits.abs().amax() + direct.query_err.abs().amax()
    # per-coordinate magnitudes: the pairwise score bound would cost a full EQKE
    slack = margin_slack(w, value_logit_bound(evou, pvou), "coordinate", table_scale=float(logit_scale))
    return case_tables(att, evou, pvou, direct, slack)


def run_subcubic(weights: MaxKWeights, variant: SubcubicVariant) -> ProofResult:
    """Search, then verify (costed), one subcubic variant on `weights` (float32 weights, any device)."""
    w = weights.to(dtype=torch.float64)
    directions = leading_directions(query_key_factors(w))  # search
    with torch.no_grad():
        with FlopCounter() as table_counter:
            tables = verification_tables(w, variant, directions)
        gaps, mean_attn = search_certificate(tables, variant.attention)  # search
        with FlopCounter() as check_counter:
            certified = certified_cases(tables, gaps, mean_attn)
        start = time.perf_counter()
        timed = certified_cases(verification_tables(w, variant, directions), gaps, mean_attn)
        wall_s = time.perf_counter() - start
    if not torch.equal(timed, certified):  # same computation twice; a mismatch is a bug
        raise RuntimeError("subcubic verification is not deterministic")
    ok, ok_pure = certificate_tables(certified.cpu(), gaps.cpu())
    return ProofResult(
        strategy=variant.name,
        certified=count_certified(ok, ok_pure),
        total=weights.vocab**weights.k,
        flops=table_counter.total + check_counter.total,
        wall_s=wall_s,
        unexplained_dim=variant.unexplained_dim(weights.vocab, weights.k),
        complexity=variant.complexity,
        ok=ok,
        ok_pure=ok_pure,
        extra={
            "slack": float(tables.slack),
            "eqke_row_err_mean": float(tables.row_err.mean()),
            "certified_cases": int(certified.sum()),
        },
    )


def _strategy(variant: SubcubicVariant) -> Callable[[MaxKWeights], ProofResult]:
    def run(weights: MaxKWeights) -> ProofResult:
        return run_subcubic(weights, variant)

    run.__doc__ = f"Subcubic proof {variant.name}."
    return run


STRATEGIES: dict[str, Callable[[MaxKWeights], ProofResult]] = {v.name: _strategy(v) for v in VARIANTS}

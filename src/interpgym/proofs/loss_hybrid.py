"""The hybrid loss proof: the cubic case bounds where they are tight, brute force where they are loose.

The cubic loss proof (`loss_cubic`) bounds every mixed input's log excess by
x_cubic(t) = max over its non-max tokens c of lam[m, q, c, n]. Given a threshold tau on
that per-case value, a token c of case (m, q, n) is *flagged* when lam[m, q, c, n] > tau
(or NaN). Per input:

* unflagged mixed inputs (every token's lam <= tau, so x_cubic(t) <= tau) and pure
  inputs keep the cubic bound, summed by the cubic proof's counting (`expected_softplus`
  with `at_most=tau`: exactly the ranks whose value is <= tau);
* flagged inputs (`flagged_inputs`: enumerated exactly once each, nothing else) get the
  brute-force bound, the exact-arithmetic log excess through the float64 tables
  (`tables.logits_from_tables`) plus the same float32 slack S as brute force
  (`loss_brute_force`), which bounds the float32 model's log excess.

Both parts are sound per input, so the total (padded like every loss bound) is an upper
bound on the float32 model's expected loss. The threshold is a fixed headroom h below
zero, tau = -h (registered: `HEADROOMS`), and the flags are read from the cubic tables
alone, so every input the cubic part keeps is charged at most softplus(-h); the rule
never looks at the exact loss.

Cost: the cubic proof O(v^3 K log v) plus about (3K + 6) v FLOPs per flagged input
(`loss_brute_force.table_log_excess`) and O(K) for enumerating it, all counted with `FlopCounter`. Unexplained dimensionality: the cubic
proof's 3 v^2 + 2 v K plus one per brute-forced input.

When the flags are so many that evaluating them one by one would cost more than brute force
itself (N (3K + 6) > v^K (2K + 6): early in training, where the cubic bound is vacuous), the
proof decides that from the tables (`flagged_inputs.flagged_count`, exact and cheap) and
runs brute force's prefix-table enumeration of every input instead
(`loss_brute_force.exact_loss`): the same certificate as brute force, at brute force's cost
plus the cubic tables, never more.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.proofs.flagged_inputs import flagged_count, flagged_inputs, is_flagged
from interpgym.proofs.inputs import input_count
from interpgym.proofs.loss_bounds import LossResult, loss_from_log_excess, padded_average
from interpgym.proofs.loss_brute_force import exact_loss, table_log_excess
from interpgym.proofs.loss_cubic import cubic_case_bounds, expected_softplus, per_input_bound
from interpgym.subjects.maxk import MaxKWeights

NAME_PREFIX = "hybrid/cubic+brute"
COMPLEXITY = "O(v^3 K log v + N K v), N = brute-forced inputs"
HEADROOMS = (3.0, 6.0)  # registered thresholds tau = -headroom (nats of log excess)


def strategy_name(headroom: float) -> str:
    return f"{NAME_PREFIX}/x>-{headroom:g}"


def brute_force_is_cheaper(flagged_inputs_count: int, vocab: int, k: int) -> bool:
    """Whether evaluating the flagged inputs one by one ((3K + 6) v FLOPs each) would cost more than brute force's
    prefix-table enumeration of all v^K inputs ((2K + 6) v each): then the hybrid runs brute force instead."""
    return flagged_inputs_count * (3 * k + 6) > input_count(vocab, k) * (2 * k + 6)


def hybrid_loss(w: MaxKWeights, headroom: float, *, allow_fallback: bool = True) -> LossResult:
    """Run the hybrid proof (module docstring) with threshold tau = -headroom: bound, FLOPs, wall time.
    `allow_fallback=False` always evaluates the flagged inputs one by one (for tests of that path)."""
    started = time.perf_counter()
    tau = -headroom
    total = input_count(w.vocab, w.k)
    with FlopCounter() as counter:
        tables, slack, lam, lam_pure = cubic_case_bounds(w)
        flagged = ~(lam <= tau)
        fallback = allow_fallback and brute_force_is_cheaper(flagged_count(flagged), w.vocab, w.k)
        if fallback:
            exact = exact_loss(w)
            bound, brute_inputs = exact.bound, total
            slack = exact.slack
        else:
            cubic_part = expected_softplus(lam, lam_pure, w.k, at_most=tau)
            brute_part = torch.zeros((), dtype=torch.float64, device=lam.device)
            brute_inputs = 0
            for tokens in flagged_inputs(flagged):  # batches of at most flagged_inputs.BLOCK inputs
                brute_part += loss_from_log_excess(table_log_excess(tables, tokens) + slack).sum()
                brute_inputs += tokens.shape[0]
            bound = padded_average(cubic_part + float(brute_part), total)
    wall = time.perf_counter() - started

    def log_excess(tokens: Int[Tensor, "batch k"]) -> Float[Tensor, " batch"]:
        brute = table_log_excess(tables, tokens) + slack
        if fallback:
            return brute
        return torch.where(is_flagged(flagged, tokens), brute, per_input_bound(lam, lam_pure, tokens))

    return LossResult(
        strategy=strategy_name(headroom),
        bound=bound,
        flops=counter.total,
        wall_s=wall,
        unexplained_dim=float(3 * w.vocab**2 + 2 * w.vocab * w.k + brute_inputs),
        complexity=COMPLEXITY,
        log_excess=log_excess,
        extra={"slack": slack, "threshold": tau, "brute_forced_inputs": brute_inputs, "brute_forced_fraction": brute_inputs / total,
               "fell_back_to_brute_force": fallback},
    )


def _strategy(headroom: float) -> Callable[[MaxKWeights], LossResult]:
    return lambda w: hybrid_loss(w, headroom)


HYBRID_LOSS_STRATEGIES = {strategy_name(h): _strategy(h) for h in HEADROOMS}

__all__ = ["hybrid_loss", "brute_force_is_cheaper", "strategy_name", "HYBRID_LOSS_STRATEGIES", "HEADROOMS", "NAME_PREFIX"]

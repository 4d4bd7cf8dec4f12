"""Subcubic proofs of the loss theorem (`loss_bounds`), one per accuracy variant of `subcubic`.

The per-case argument of `subcubic_cases` bounds, for every input of case (m, q, n)
whose non-max tokens among the first K-1 positions are <= m - g and every output y != m,

    l_y - l_m <= B_m[y] + A R_m[y] + (1 - A) W + query_err[q, m]

(B_m[y] = mean direct-path difference + worst positional value difference, R_m[y] =
EVOU[m, y] - EVOU[m, m], W = `nonmax_value_gain`, A the attention on the max copies, in
[A_lo, A_hi] by `attention_extremes`). Only W, A and query_err depend on anything but
(m, y), so

    X = log sum_{y != m} exp(l_y - l_m) <= H(A) + (1 - A) W + query_err[q, m],
    H(A) = log sum_{y != m} exp(B_m[y] + A R_m[y]) <= (1 - A) L0[m] + A L1[m]   (convexity, A in [0, 1])

with L0 = H(0), L1 = H(1): O(v^2) for all m. The right side is affine in A, so its
maximum over [A_lo, A_hi] is at an endpoint; adding the slack S gives a float32 bound.

Gap levels: the bound at gap g holds for every input whose largest first-K-1 non-max
token is <= m - g. The proof evaluates it at the levels {1, 2, 4, ...} plus the gap proof
search chose for accuracy, O(log v) levels, and charges each input the best level it
lies in (a running minimum over smaller gaps, which cover it too). Inputs of case
(m, q, n) whose largest non-max token is exactly c number C(K-1, n)((c+1)^r - c^r),
r = K-1-n, so the expected bound is summed exactly per band of c.

Cost O(v^2 d + v d^2 + v^2 K log v): the accuracy variant's tables plus O(log v) per-case checks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.proofs.certificates import case_mask, input_cases
from interpgym.proofs.inputs import input_count
from interpgym.proofs.loss_bounds import LossResult, loss_from_log_excess, padded_average
from interpgym.proofs.subcubic import VARIANTS, SubcubicVariant, verification_tables
from interpgym.proofs.subcubic_cases import CaseTables, attention_extremes, case_indices, nonmax_value_gain
from interpgym.proofs.subcubic_search import leading_directions, search_certificate
from interpgym.proofs.subcubic_tables import query_key_factors
from interpgym.subjects.maxk import MaxKWeights


def gap_levels(vocab: int, k: int, searched: Int[Tensor, "m q n"]) -> Int[Tensor, "levels m q n"]:
    """Sorted gap levels per case: 1, 2, 4, ... < vocab, and the searched gap."""
    powers = [2**i for i in range(max(1, math.ceil(math.log2(max(vocab, 2)))))]
    fixed = torch.tensor(powers, dtype=torch.long, device=searched.device)[:, None, None, None].expand(-1, *searched.shape)
    return torch.cat([fixed, searched[None]], dim=0).sort(dim=0).values


def level_log_excess(t: CaseTables, gaps: Int[Tensor, "levels m q n"]) -> Float[Tensor, "levels m q n"]:
    """Upper bound on X_float32 for every input of each case covered at each gap (module docstring). O(v^2 K) per level."""
    wrong = ~t.is_max_output
    l0 = t.max_logit_gain.masked_fill(~wrong, float("-inf")).logsumexp(dim=1)  # [m]
    l1 = (t.max_logit_gain + t.max_value_gain).masked_fill(~wrong, float("-inf")).logsumexp(dim=1)
    attn_low, attn_high = attention_extremes(t, gaps)
    gain = nonmax_value_gain(t, gaps)
    query_err = t.query_err.T[:, :, None]  # [m, q, 1]

    def at(attn: Tensor) -> Tensor:
        return (1 - attn) * (l0[:, None, None] + gain) + attn * l1[:, None, None] + query_err

    return torch.maximum(at(attn_low), at(attn_high)) + t.slack


def band_counts(vocab: int, k: int, gaps: Int[Tensor, "levels m q n"]) -> Float[Tensor, "levels m q n"]:
    """Inputs of each case whose best covering level is each level (exact; float64 counts)."""
    m, _, n = case_indices(vocab, k, gaps.device)
    free = (k - 1 - n).to(torch.float64)
    combos = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.float64, device=gaps.device)[n]
    covered = (m - gaps + 1).clamp(min=0).to(torch.float64).pow(free)  # inputs with largest non-max <= m - g
    beyond = torch.cat([covered[1:], torch.zeros_like(covered[:1])], dim=0)
    counts = combos * (covered - beyond)
    first = torch.zeros_like(counts)
    first[0] = 1.0
    counts = torch.where(free == 0, first, counts)  # no non-max first tokens: one input, first level
    return counts * case_mask(vocab, k).to(gaps.device)


def per_input_bound(bands: Tensor, gaps: Tensor, tokens: Int[Tensor, "batch k"]) -> Float[Tensor, " batch"]:
    """The bound x(t) the proof assigns to each input (bookkeeping, agrees with the sum)."""
    k = tokens.shape[1]
    m, q, first, is_max, n = input_cases(tokens)
    largest = first.masked_fill(is_max, -1).amax(dim=1) if k > 1 else torch.full_like(m, -1)
    case_gaps = gaps[:, m, q, n]  # [levels, batch]
    fits = case_gaps <= (m - largest)[None, :]
    level = torch.where(largest < 0, 0, fits.long().sum(dim=0) - 1)  # gaps ascend: fits is a prefix
    return bands[level, m, q, n]


def run_subcubic_loss(weights: MaxKWeights, variant: SubcubicVariant) -> LossResult:
    """Search (the accuracy variant's, not costed), then the costed loss verification."""
    w = weights.to(dtype=torch.float64)
    directions = leading_directions(query_key_factors(w))
    with torch.no_grad():
        started = time.perf_counter()
        with FlopCounter() as table_counter:
            tables = verification_tables(w, variant, directions)
        wall = time.perf_counter() - started
        searched, _ = search_certificate(tables, variant.attention)
        gaps = gap_levels(w.vocab, w.k, searched)
        started = time.perf_counter()
        with FlopCounter() as check_counter:
            bands = level_log_excess(tables, gaps).cummin(dim=0).values
            total = (band_counts(w.vocab, w.k, gaps) * loss_from_log_excess(bands)).sum()
        wall += time.perf_counter() - started
    complexity = variant.complexity.replace("v^2·K", "v^2·K·log v")
    return LossResult(
        strategy=variant.name,
        bound=padded_average(float(total), input_count(w.vocab, w.k)),
        flops=table_counter.total + check_counter.total,
        wall_s=wall,
        unexplained_dim=variant.unexplained_dim(w.vocab, w.k),
        complexity=complexity,
        log_excess=lambda tokens: per_input_bound(bands, gaps, tokens),
        extra={"slack": float(tables.slack)},
    )


def _strategy(variant: SubcubicVariant) -> Callable[[MaxKWeights], LossResult]:
    def run(weights: MaxKWeights) -> LossResult:
        return run_subcubic_loss(weights, variant)

    run.__doc__ = f"Subcubic loss proof {variant.name}."
    return run


LOSS_STRATEGIES: dict[str, Callable[[MaxKWeights], LossResult]] = {v.name: _strategy(v) for v in VARIANTS}

__all__ = ["LOSS_STRATEGIES", "run_subcubic_loss", "gap_levels", "level_log_excess", "band_counts", "per_input_bound"]

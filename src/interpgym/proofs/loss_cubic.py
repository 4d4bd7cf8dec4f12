"""The cubic proof of the loss theorem (`loss_bounds`): per case, a bound on the log excess.

Notation of `cubic` and `tables`. Fix max m and query q. For an input with attention
a (a probability vector over the K positions) and every output j != m, exact arithmetic
gives

    l_j - l_m = D_j + sum_i a_i (PVOU[i, j] - PVOU[i, m]) + sum_i a_i C_{t_i, j}
             <= sum_i a_i u_j(t_i),      u_j(t) = D_j + P*_j + C_{t, j}

with D_j = EU[q, j] - EU[q, m], P*_j = max_i PVOU[i, j] - PVOU[i, m], C_{t, j} =
EVOU[t, j] - EVOU[t, m] (the a_i sum to 1). The log-sum-exp is convex (Hoelder's
inequality), so with S the margin slack (float32 rounding)

    X_float32 = log sum_{j != m} exp(l_j - l_m) <= sum_i a_i U'(t_i),   U'(t) = log sum_{j != m} exp(u_j(t)) + S,

an attention-weighted average of a per-token value. U'(m) and U'(q) (the query's own
token) cost O(v) per (m, q): exact, O(v^3) in all. For the other keys t the exact value
is indexed by (m, q, t, j), O(v^4), so the proof uses the smallest of three cubic upper
bounds on it (log sum exp(x + y) <= log sum exp(x) + max y):

    F0[m, q] + V'[m, t]                                 F0 = log sum_{j != m} exp(D_j + P*_j), V' = max_{j != m} C_{t, j}
    log sum_{j != m} exp(ref_j + P*_j + C_{t, j}) + max_{j != m} (D_j - ref_j)    ref_j = max, mean or min over q of D_j

(the first is this proof's earlier form: it pessimises the wrong output of each key on
its own; the second keeps the joint log-sum-exp over j of the key's copying and the
positional term and pays only the query's deviation from a reference direct path).
Measured on the default model (seed 0): the loss bound 0.190 -> 0.108.

This is exactly the structure of the accuracy proof's numerator, so the same two steps apply to the threshold form
"average <= lam": for a case (m, q, c, n) the average is a linear-fractional function
of x (the max positions' positional weight), monotone, so its maximum lam[m, q, c, n]
over every ordering is at one of the two extreme subset sums; and an input mixing
non-max tokens c_p (case (m, q, n)) has average <= max_p lam[m, q, c_p, n] (for lam =
that maximum, each non-max term of sum_i a_i (U'(t_i) - lam) is at most that of the
pure input whose tokens are the c* maximising e^{EQKE[q,c]} (U'(c) - lam), whose sum
is <= 0). The pure inputs (m, ..., m, q) are evaluated exactly (`pure_inputs`).

The bound sums softplus over all inputs by combinatorics: in case (m, q, n) with
r = K-1-n non-max positions, the inputs whose largest lam value is the i-th smallest
of lam[m, q, :m, n] number C(K-1, n) (i^r - (i-1)^r).

Cost O(v^3 K) (tables, F0/F1 and V' O(v^3), the case averages ~30 v^3 K, a sort over c
O(v^3 K log v)). Unexplained dimensionality 3 v^2 + 2 v K, as for the accuracy proof.
"""

from __future__ import annotations

import math
import time

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.proofs.certificates import case_mask, input_cases
from interpgym.proofs.cubic import extreme_position_log_sums
from interpgym.proofs.inputs import input_count
from interpgym.proofs.loss_bounds import LossResult, loss_from_log_excess, padded_average
from interpgym.proofs.pure_inputs import pure_log_excess
from interpgym.proofs.roundoff import margin_slack, value_logit_bound
from interpgym.proofs.tables import MaxKTables, against_max, compute_tables
from interpgym.subjects.maxk import MaxKWeights

NAME = "cubic"
COMPLEXITY = "O(v^3 K log v)"


def log_excess_values(tables: MaxKTables, slack: float) -> Float[Tensor, "m q t"]:
    """U'[m, q, t] of the module docstring (slack included): an upper bound on
    log sum_{j != m} exp(D_j + P*_j + C_{t, j}), exact for t = m and t = q. Cost O(v^3 + v^2 K)."""
    vocab = tables.vocab
    wrong = ~torch.eye(vocab, dtype=torch.bool, device=tables.EU.device)[:, None, :]  # [m, 1, j]
    direct = against_max(tables.EU)  # [m, q, j]: D_j
    position_worst = against_max(tables.PVOU).amax(dim=1)  # [m, j]: P*_j
    centred = against_max(tables.EVOU)  # [m, t, j]: C_{t, j}
    index = torch.arange(vocab, device=tables.EU.device)
    base = (direct + position_worst[:, None, :]).masked_fill(~wrong, float("-inf"))  # [m, q, j]
    f0 = base.logsumexp(dim=2)  # [m, q]
    other_gain = centred.masked_fill(~wrong, float("-inf")).amax(dim=2)  # [m, t]: V'
    values = f0[:, :, None] + other_gain[:, None, :]  # [m, q, t]
    for reference in (direct.amax(dim=1), direct.mean(dim=1), direct.amin(dim=1)):  # [m, j]
        deviation = (direct - reference[:, None, :]).masked_fill(~wrong, float("-inf")).amax(dim=2)  # [m, q]
        key_part = ((reference + position_worst)[:, None, :] + centred).masked_fill(~wrong, float("-inf")).logsumexp(dim=2)  # [m, t]
        values = torch.minimum(values, deviation[:, :, None] + key_part[:, None, :])
    query_own = (base + centred).logsumexp(dim=2)  # [m, q]: t = q, exact
    values[:, index, index] = torch.minimum(values[:, index, index], query_own)
    values[index, :, index] = (base + centred[index, index][:, None, :]).logsumexp(dim=2)  # t = m: exact (F1)
    return values + slack


def case_average_bounds(tables: MaxKTables, values: Float[Tensor, "m q t"]) -> Float[Tensor, "m q c n"]:
    """lam[m, q, c, n]: the largest attention-weighted average of values[m, q, t_i] over every
    ordering of case (m, q, c, n) (n copies of m, K-1-n of c in the first K-1 positions, query q).

    The attention splits into three groups (max copies, c copies, the query), each weight
    a log-sum-exp of key scores; evaluated relative to the largest of the three, so no score
    range overflows (the denominator is at least 1). Meaningful for c < m, q <= m, n < K-1. Cost about 30 v^3 K.
    """
    k = tables.k
    query_lw = tables.EQKE.diagonal() + tables.EQKP[:, -1]  # [q]
    log_smallest, log_largest = extreme_position_log_sums(tables)  # [q, n]
    complement = k - 1 - torch.arange(k, device=values.device)
    max_positions = torch.stack([log_smallest, log_largest], dim=-1)  # [q, n, e]
    nonmax_positions = torch.stack([log_largest[:, complement], log_smallest[:, complement]], dim=-1)
    max_lw = tables.EQKE.T[:, :, None, None, None] + max_positions[None, :, None]  # [m, q, 1, n, e]
    nonmax_lw = tables.EQKE[None, :, :, None, None] + nonmax_positions[None, :, None]  # [1, q, c, n, e]
    query_lw = query_lw[None, :, None, None, None]
    top = torch.maximum(torch.maximum(max_lw, nonmax_lw), query_lw)  # finite: the query's weight is
    max_w, nonmax_w, query_w = ((lw - top).exp() for lw in (max_lw, nonmax_lw, query_lw))  # each in [0, 1]
    index = torch.arange(tables.vocab, device=values.device)
    max_value = values[index, :, index][:, :, None, None, None]  # [m, q, 1, 1, 1]: U'(m)
    query_value = values.diagonal(dim1=1, dim2=2)[:, :, None, None, None]  # U'(q)
    numerator = max_w * max_value + nonmax_w * values[:, :, :, None, None] + query_w * query_value
    average = numerator / (max_w + nonmax_w + query_w)  # [m, q, c, n, e]
    return average.amax(dim=-1)


def expected_softplus(lam: Float[Tensor, "m q c n"], lam_pure: Float[Tensor, "m q"], k: int, at_most: float | None = None) -> float:
    """sum over all v^K inputs of softplus(per-input bound), by counting (module docstring). Cost O(v^3 K log v).

    With `at_most`, the mixed inputs whose per-input bound is above it (or NaN) are left out of the
    sum (a hybrid proof bounds them another way); the pure inputs are always counted.
    """
    vocab = lam.shape[0]
    device = lam.device
    m = torch.arange(vocab, device=device)
    below = (m[None, :] < m[:, None])[:, None, :, None]  # [m, 1, c, 1]
    ordered = lam.masked_fill(~below, float("-inf")).sort(dim=2).values  # valid entries last
    rank = torch.arange(vocab, device=device)[None, :] - (vocab - m[:, None]) + 1  # [m, c]: 1-based rank among c < m
    rank = rank.clamp(min=0).to(torch.float64)[:, None, :, None]
    free = (k - 1 - torch.arange(k, device=device)).to(torch.float64)  # [n]
    weight = torch.where(rank > 0, rank.pow(free) - (rank - 1).pow(free), torch.zeros_like(rank))  # [m, 1, c, n]
    counted = weight > 0
    if at_most is not None:
        counted = counted & (ordered <= at_most)  # the left-out tokens are the largest values: a suffix of the sort
    terms = torch.where(counted, weight * loss_from_log_excess(ordered), torch.zeros_like(ordered))
    per_case = terms.sum(dim=2)  # [m, q, n]
    combos = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.float64, device=device)
    valid = case_mask(vocab, k).to(device)
    mixed = valid.clone()
    mixed[:, :, k - 1] = False
    total = (per_case * combos).masked_fill(~mixed, 0.0).sum()
    pure = loss_from_log_excess(lam_pure).masked_fill(~valid[:, :, k - 1], 0.0).sum()
    return float(total + pure)


def per_input_bound(lam: Tensor, lam_pure: Tensor, tokens: Int[Tensor, "batch k"]) -> Float[Tensor, " batch"]:
    """The bound x(t) this proof assigns to each input (bookkeeping, agrees with `expected_softplus`)."""
    k = tokens.shape[1]
    m, q, first, is_max, n = input_cases(tokens)
    pure = lam_pure[m, q]
    if k == 1:
        return pure
    per_position = lam[m[:, None], q[:, None], first, n[:, None]].masked_fill(is_max, float("-inf"))
    return torch.where(n == k - 1, pure, per_position.amax(dim=1))


def cubic_case_bounds(w: MaxKWeights) -> tuple[MaxKTables, float, Float[Tensor, "m q c n"], Float[Tensor, "m q"]]:
    """(tables, slack S, lam, lam_pure): this proof's per-case log-excess bounds (module docstring). Cost O(v^3 K)."""
    tables = compute_tables(w)
    slack = margin_slack(w, value_logit_bound(tables.EVOU, tables.PVOU))
    lam = case_average_bounds(tables, log_excess_values(tables, slack))
    return tables, slack, lam, pure_log_excess(tables) + slack


def cubic_loss(w: MaxKWeights) -> LossResult:
    """Run the cubic loss proof on `w` (module docstring): bound, FLOPs (tables included), wall time."""
    started = time.perf_counter()
    with FlopCounter() as counter:
        tables, slack, lam, lam_pure = cubic_case_bounds(w)
        total = expected_softplus(lam, lam_pure, w.k)
    wall = time.perf_counter() - started
    return LossResult(
        strategy=NAME,
        bound=padded_average(total, input_count(w.vocab, w.k)),
        flops=counter.total,
        wall_s=wall,
        unexplained_dim=float(3 * w.vocab**2 + 2 * w.vocab * w.k),
        complexity=COMPLEXITY,
        log_excess=lambda tokens: per_input_bound(lam, lam_pure, tokens),
        extra={"slack": slack},
    )


__all__ = ["cubic_loss", "cubic_case_bounds", "case_average_bounds", "log_excess_values", "expected_softplus", "per_input_bound",
           "NAME", "COMPLEXITY"]

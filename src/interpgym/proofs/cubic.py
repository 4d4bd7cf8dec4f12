"""The cubic proof: certify whole families of inputs at once by pessimising over positions.

Notation from `tables` (float64, exact up to float64 rounding): the logits of an input
with query (last) token q are EU[q] + sum_i a_i (EVOU[t_i] + PVOU[i]) with attention
a_i proportional to exp(EQKE[q, t_i] + EQKP[q, i]). Let m be the max token.

Step 1, the output side (pessimise over the wrong logit and the position):
for every wrong output j != m, because the a_i are a probability vector,

    logit_j - logit_m <= D[m, q] + sum_{i < K-1} a_i V[m, t_i] + a_{K-1} V_Q[m, q]      where
    D[m, q] = max_{j != m} EU[q, j] - EU[q, m]                                 (direct path)
    P*[m, j] = max_{i < K-1} PVOU[i, j] - PVOU[i, m]                           (worst key position)
    V[m, t] = max_{j != m} EVOU[t, j] - EVOU[t, m] + P*[m, j]                  (worst output per key)
    V_Q[m, q] = max_{j != m} EVOU[q, j] - EVOU[q, m] + PVOU[K-1, j] - PVOU[K-1, m]  (the query position)

The float32 model (`float32_value_tables`): each term also carries its per-entry
float32 error (`roundoff_tables`: per (m, q) in D, per key in V and V_Q), the float64
term is added, and with U(t) = V[m, t] + D[m, q] + errors (U_Q likewise) each value is
scaled by exp(+-exponent), the largest amount the float32 scores, max subtraction and
exp can move that key's log-weight, with the sign that makes it larger. Then the input
is correct under the float32 model if the numerator N = sum_i exp(score_i) U(t_i) < 0
(U_Q at the query position). `cubic_certificate(tables, S)` is the earlier form with one
global slack S (`roundoff.margin_slack`) added to every key and no scaling; at S = 0 it
is the exact-arithmetic statement (and certifies what gbmi's cubic proof certifies, up
to the pure inputs and the query position, which it pessimises like any key).

Step 2, the attention side, for a case (m, q, c, n): query q, n copies of m and
r = K-1-n copies of a non-max token c among the first K-1 positions. With
x = sum over the max positions of exp(EQKP[q, p]) and T the same sum over all K-1
positions,

    N(x) = e^{EQKE[q,m]} U(m) x + e^{EQKE[q,c]} U(c) (T - x) + e^{EQKE[q,q] + EQKP[q,K-1]} U_Q(q)

is affine in x, so over every ordering of the positions it is largest at one of the
two extreme subset sums x_min(n) (the n smallest positional weights) or x_max(n) (the
n largest), found by sorting EQKP[q, :K-1]. `ok[m, q, c, n]` = N(x_min) < 0 and
N(x_max) < 0.

Step 3, mixing non-max tokens (the convexity argument): an input of case (m, q, n) whose
non-max tokens c_p (at the set R of non-max positions) all have ok[m, q, c_p, n] has
N = A + sum_{p in R} exp(EQKP[q, p]) y(c_p) with y(c) = e^{EQKE[q,c]} U(c) and A the
max and query positions' part. Each term is at most exp(EQKP[q, p]) y(c*) for the
c* maximising y over those tokens, so N <= the numerator of the *pure* input with
every non-max token c* in the same positions, which is negative because ok[m, q, c*, n]
covers every x. Hence the certificate of `certificates` (every non-max token in
G(m, q, n)) is sound. n = K-1 (all first K-1 tokens are m) is `ok_pure[m, q]`: x = T,
or the pure input decided whole (`pure_inputs.pure_float32_certified`: the maximum over
j of the entire sum, positions exact, under the same float32 error terms).

Numerics: every weight is scaled per query by the largest term any case can hold, so
all exponentials are <= 1 and cannot overflow; terms that underflow are below e^-745
while the query position's weight is at least e^-600, far inside the float64 term.
For models whose scores span more than ~600 nats a log-space path scales each case by
its own largest term instead (`_certificate_log_space`).

Cost: tables O(v^2 d + v d^2), float32 error tables O(v K d (d + dh + v) + v^2 K dh),
D, V and V_Q O(v^3), the case table and the pure inputs O(v^3 K). No Python loop runs
over the vocabulary.
Unexplained dimensionality: the proof treats EQKE, EVOU and EU as arbitrary v x v
tables and EQKP, PVOU as arbitrary v x K and K x v tables: 3 v^2 + 2 v K.
"""

from __future__ import annotations

import time

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.proofs.certificates import count_certified
from interpgym.proofs.inputs import input_count
from interpgym.proofs.pure_inputs import pure_float32_certified
from interpgym.proofs.result import ProofResult
from interpgym.proofs.roundoff_tables import ErrorTables, error_tables, worst_perturbation
from interpgym.proofs.tables import MaxKTables, against_max, compute_tables, plus_max
from interpgym.subjects.maxk import MaxKWeights

NAME = "cubic"
COMPLEXITY = "O(v^3 K)"


def pessimized_value_tables(tables: MaxKTables, slack: float) -> Float[Tensor, "v_max v_query v_key"]:
    """U[m, q, t] = V[m, t] + D[m, q] + slack (module docstring, step 1). Cost O(v^3 + v^2 K)."""
    vocab = tables.vocab
    wrong = ~torch.eye(vocab, dtype=torch.bool, device=tables.EU.device)  # [m, j]: j != m
    minus_inf = torch.tensor(float("-inf"), dtype=tables.EU.dtype, device=tables.EU.device)
    # centred[m, x, j] = table[x, j] - table[x, m]
    direct = against_max(tables.EU)  # [m, q, j]
    direct_worst = torch.where(wrong[:, None, :], direct, minus_inf).amax(dim=2)  # [m, q]
    position_worst = against_max(tables.PVOU).amax(dim=1)  # [m, j]
    value = against_max(tables.EVOU) + position_worst[:, None, :]  # [m, t, j]
    value_worst = torch.where(wrong[:, None, :], value, minus_inf).amax(dim=2)  # [m, t]
    return value_worst[:, None, :] + direct_worst[:, :, None] + slack


def extreme_position_log_sums(tables: MaxKTables) -> tuple[Float[Tensor, "q n"], Float[Tensor, "q n"]]:
    """(log_smallest, log_largest)[q, n]: log of the sum of the n smallest / n largest exp(EQKP[q, p]), p < K-1.

    n runs over 0..K-1 (n = 0 gives -inf). Sorting EQKP[q, :K-1] finds the extreme
    subset sums over all orderings of the positions. Cost O(v K log K).
    """
    ascending = tables.EQKP[:, :-1].sort(dim=1).values  # [q, K-1]
    empty = ascending.new_full((ascending.shape[0], 1), float("-inf"))
    log_smallest = torch.cat([empty, ascending.logcumsumexp(dim=1)], dim=1)
    log_largest = torch.cat([empty, ascending.flip(dims=[1]).logcumsumexp(dim=1)], dim=1)
    return log_smallest, log_largest


def _signed_sum(log_weights: list[Tensor], values: list[Tensor]) -> Tensor:
    """sum_i exp(log_weights[i] - M) values[i] with M = max(log_weights, 0): same sign as the unscaled sum.

    Scaling by exp(-M) keeps every exponential in [0, 1], so nothing overflows however
    large the attention scores are (terms below e^-745 of the largest underflow to 0).
    """
    top = log_weights[0].clamp(min=0.0)
    for lw in log_weights[1:]:
        top = torch.maximum(top, lw)
    terms = [(lw - top).exp() * value for lw, value in zip(log_weights, values, strict=True)]
    return torch.stack(torch.broadcast_tensors(*terms)).sum(dim=0)


# Below this log-weight (relative to the largest possible term) the query position's
# weight would leave too little headroom over float64 underflow; use the log-space path.
_MIN_QUERY_LOG_WEIGHT = -600.0


def _validity_masks(vocab: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """([m, c]: c < m, [m, q]: q <= m)."""
    index = torch.arange(vocab, device=device)
    return index[None, :] < index[:, None], index[None, :] <= index[:, None]


def _certificate_scaled(tables: MaxKTables, U: Tensor, U_query: Tensor | None = None) -> tuple[Tensor, Tensor] | None:
    """Fast path: weights scaled per query by the largest possible term, so all are <= 1.

    `U_query[m, q]` is the query position's own value (default U[m, q, q]).
    Returns None when some query position's own weight falls below e^-600 (scores
    spanning hundreds of nats); the log-space path handles that. Cost about 4 v^3 K.
    """
    k = tables.k
    query_score = tables.EQKE.diagonal() + tables.EQKP[:, -1]  # [q]
    position_shift = tables.EQKP[:, :-1].amax(dim=1) if k > 1 else torch.zeros_like(query_score)
    scale = torch.maximum(tables.EQKE.amax(dim=1) + position_shift, query_score)  # [q]
    query_log_weight = query_score - scale
    if float(query_log_weight.min()) < _MIN_QUERY_LOG_WEIGHT:
        return None
    query_weight = query_log_weight.exp()  # [q], the query position (weight <= 1)
    token_weight = (tables.EQKE + (position_shift - scale)[:, None]).exp()  # [q, t] (<= 1)
    ascending = (tables.EQKP[:, :-1] - position_shift[:, None]).exp().sort(dim=1).values  # [q, K-1] (<= 1)
    zero = ascending.new_zeros(ascending.shape[0], 1)
    smallest = torch.cat([zero, ascending.cumsum(dim=1)], dim=1)  # [q, n]: n smallest weights
    largest = torch.cat([zero, ascending.flip(dims=[1]).cumsum(dim=1)], dim=1)  # [q, n]: n largest
    complement = k - 1 - torch.arange(k, device=U.device)  # K-1-n
    max_positions = torch.stack([smallest, largest], dim=-1)  # [q, n, 2]: the two extreme orderings
    nonmax_positions = torch.stack([largest[:, complement], smallest[:, complement]], dim=-1)

    vocab = tables.vocab
    m_index = torch.arange(vocab, device=U.device)
    U_max = U[m_index, :, m_index]  # [m, q]: U(m)
    U_query = U.diagonal(dim1=1, dim2=2) if U_query is None else U_query  # [m, q]: U(q) at the query position
    max_term = token_weight.T * U_max  # [m, q]: e^{EQKE[q, m]} U(m), per unit of max-position weight
    query_term = query_weight * U_query  # [m, q]
    nonmax_term = token_weight[None, :, :] * U  # [m, q, c]: y(c)
    fixed = max_term[:, :, None, None] * max_positions[None] + query_term[:, :, None, None]  # [m, q, n, 2]
    numerator = torch.addcmul(fixed[:, :, None], nonmax_term[:, :, :, None, None], nonmax_positions[None, :, None])
    ok = (numerator < 0).all(dim=-1)  # [m, q, c, n]
    pure = max_term * smallest[None, :, -1] + query_term  # [m, q]: x = T
    return ok, pure < 0


def _certificate_log_space(tables: MaxKTables, U: Tensor, U_query: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Robust path: every term as a log-weight, each case scaled by its own largest term. Cost about 12 v^3 K."""
    k = tables.k
    query_score = tables.EQKE.diagonal() + tables.EQKP[:, -1]  # [q]
    token_log_weight = tables.EQKE - query_score[:, None]  # [q, t], relative to the query position
    log_smallest, log_largest = extreme_position_log_sums(tables)  # [q, n]
    complement = k - 1 - torch.arange(k, device=U.device)
    log_max_positions = torch.stack([log_smallest, log_largest], dim=-1)  # [q, n, 2]
    log_nonmax_positions = torch.stack([log_largest[:, complement], log_smallest[:, complement]], dim=-1)

    m_index = torch.arange(tables.vocab, device=U.device)
    U_max = U[m_index, :, m_index]
    U_query = U.diagonal(dim1=1, dim2=2) if U_query is None else U_query
    max_log_weight = token_log_weight.T[:, :, None, None, None] + log_max_positions[None, :, None]  # [m, q, 1, n, 2]
    nonmax_log_weight = token_log_weight[None, :, :, None, None] + log_nonmax_positions[None, :, None]  # [1, q, c, n, 2]
    query_log_weight = torch.zeros((), dtype=U.dtype, device=U.device)
    numerator = _signed_sum(
        [max_log_weight, nonmax_log_weight, query_log_weight],
        [U_max[:, :, None, None, None], U[:, :, :, None, None], U_query[:, :, None, None, None]],
    )  # [m, q, c, n, 2]
    pure = _signed_sum([token_log_weight.T + log_smallest[None, :, -1], query_log_weight], [U_max, U_query])
    return (numerator < 0).all(dim=-1), pure < 0


def certificate_from_values(
    tables: MaxKTables, U: Float[Tensor, "v_max v_query v_key"], U_query: Float[Tensor, "v_max v_query"] | None = None,
    *, log_space: bool = False,
) -> tuple[Bool[Tensor, "m q c n"], Bool[Tensor, "m q"]]:
    """(ok, ok_pure) of steps 2 and 3 for a per-key value table U[m, q, t] (step 1 or `float32_value_tables`).

    U covers a key at any of the first K-1 positions; `U_query[m, q]` the query token at
    position K-1 (default U[m, q, q], which covers every position).
    Evaluates the numerators with weights scaled per query (fast) unless the scores
    span so many nats that the log-space path is needed (or `log_space` forces it);
    both decide the same inequalities. Entries outside the meaningful range
    (c >= m, q > m, n = K-1 in `ok`) are False. Cost O(v^3 K).
    """
    scaled = None if log_space else _certificate_scaled(tables, U, U_query)
    ok, ok_pure = scaled if scaled is not None else _certificate_log_space(tables, U, U_query)
    below, query_ok = _validity_masks(tables.vocab, U.device)
    ok = ok & below[:, None, :, None] & query_ok[:, :, None, None]
    ok[:, :, :, tables.k - 1] = False
    return ok, ok_pure & query_ok


def cubic_certificate(
    tables: MaxKTables, slack: float, *, log_space: bool = False
) -> tuple[Bool[Tensor, "m q c n"], Bool[Tensor, "m q"]]:
    """(ok, ok_pure) with one global slack S added to every key (step 1 as written; S = 0 is the
    exact-arithmetic statement gbmi's code makes). Cost O(v^3 K)."""
    return certificate_from_values(tables, pessimized_value_tables(tables, slack), log_space=log_space)


def float32_value_tables(
    tables: MaxKTables, errors: ErrorTables
) -> tuple[Float[Tensor, "v_max v_query v_key"], Float[Tensor, "v_max v_query"]]:
    """(U[m, q, t], U_query[m, q]) for the float32 forward, charged per entry (`roundoff_tables`).

    Step 1 with every error term of `roundoff_tables` bounded per key and per (max, query)
    pair, the float64 term added, and each key's value scaled by exp(+-exponent) (the
    worst attention perturbation for its sign), so that sum_i exp(s_i) U_i < 0 implies
    every float32 wrong logit is below the max's. U is a key at one of the first K-1
    positions (positional terms pessimised over those positions only); U_query is the
    query token at position K-1, whose position is known exactly. Steps 2 and 3 apply
    unchanged. Cost O(v^3 + v^2 K).
    """
    vocab, k, eps = tables.vocab, tables.k, errors.weight_relative
    wrong = ~torch.eye(vocab, dtype=torch.bool, device=tables.EU.device)  # [m, j]: j != m
    minus_inf = torch.tensor(float("-inf"), dtype=tables.EU.dtype, device=tables.EU.device)

    def worst_output(table: Tensor) -> Tensor:  # max over j != m of table[m, x, j]
        return torch.where(wrong[:, None, :], table, minus_inf).amax(dim=2)

    direct = against_max(tables.EU) + errors.direct[None, :, :] + errors.direct.T[:, :, None]  # [m, q, j]
    direct_worst = worst_output(direct)  # [m, q]
    first = slice(0, k - 1) if k > 1 else slice(0, 1)  # the key positions (K = 1: only the query's, never read)
    position = against_max(tables.PVOU[first])  # [m, i, j]: PVOU[i, j] - PVOU[i, m]
    position_worst, position_abs = position.amax(dim=1), position.abs().amax(dim=1)  # [m, j]
    key_error = errors.key[:, first].amax(dim=1)  # [t, y]: worst key position
    token = against_max(tables.EVOU)  # [m, t, j]
    value = (token + position_worst[:, None, :] + eps * (token.abs() + position_abs[:, None, :])
             + (1 + eps) * plus_max(key_error))  # [m, t, j]
    U = worst_output(value)[:, None, :] + direct_worst[:, :, None] + errors.float64  # [m, q, t]
    # the query token at position K-1: its value logits relative to m, exactly positioned
    query_logits = tables.EVOU + tables.PVOU[-1]  # [q, y]
    query_relative = against_max(query_logits)  # [m, q, j]
    query_error = errors.key[:, -1]  # [q, y]
    query_value = (query_relative + eps * query_relative.abs()
                   + (1 + eps) * plus_max(query_error))  # [m, q, j]
    U_query = worst_output(query_value) + direct_worst + errors.float64  # [m, q]
    index = torch.arange(vocab, device=U.device)
    query_exponent = errors.exponent[index, index, -1]  # [q]
    return (worst_perturbation(U, errors.exponent[:, :, first].amax(dim=2)[None]),
            worst_perturbation(U_query, query_exponent[None, :]))


def float32_certificate(w: MaxKWeights, tables: MaxKTables) -> tuple[Bool[Tensor, "m q c n"], Bool[Tensor, "m q"]]:
    """(ok, ok_pure) sound for the float32 forward: per-entry error tables, steps 2-3, and the pure
    inputs decided whole (`pure_inputs.pure_float32_certified`). Cost O(v^3 K + v^2 K d)."""
    errors = error_tables(w, tables)
    ok, ok_pure = certificate_from_values(tables, *float32_value_tables(tables, errors))
    return ok, ok_pure | pure_float32_certified(tables, errors)


def cubic(w: MaxKWeights) -> ProofResult:
    """Run the cubic proof on `w`: certificate, certified count, FLOPs (tables included), wall time."""
    started = time.perf_counter()
    with FlopCounter() as counter:
        tables = compute_tables(w)
        ok, ok_pure = float32_certificate(w, tables)
    wall = time.perf_counter() - started
    vocab, k = w.vocab, w.k
    return ProofResult(
        strategy=NAME,
        certified=count_certified(ok, ok_pure),
        total=input_count(vocab, k),
        flops=counter.total,
        wall_s=wall,
        unexplained_dim=float(3 * vocab**2 + 2 * vocab * k),
        complexity=COMPLEXITY,
        ok=ok,
        ok_pure=ok_pure,
    )


__all__ = ["cubic", "cubic_certificate", "certificate_from_values", "float32_certificate", "float32_value_tables",
           "pessimized_value_tables", "extreme_position_log_sums", "NAME", "COMPLEXITY"]

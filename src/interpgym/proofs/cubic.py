"""The cubic proof: certify whole families of inputs at once by pessimising over positions.

Notation from `tables` (float64, exact up to float64 rounding): the logits of an input
with query (last) token q are EU[q] + sum_i a_i (EVOU[t_i] + PVOU[i]) with attention
a_i proportional to exp(EQKE[q, t_i] + EQKP[q, i]). Let m be the max token.

Step 1, the output side (pessimise over the wrong logit and the position):
for every wrong output j != m, because the a_i are a probability vector,

    logit_j - logit_m <= D[m, q] + sum_i a_i V[m, t_i]          where
    D[m, q] = max_{j != m} EU[q, j] - EU[q, m]                                 (direct path)
    P*[m, j] = max_i PVOU[i, j] - PVOU[i, m]                                   (worst position)
    V[m, t] = max_{j != m} EVOU[t, j] - EVOU[t, m] + P*[m, j]                  (worst output per key)

So the input is correct under the float32 model if sum_i a_i U(t_i) < 0 with
U(t) = V[m, t] + D[m, q] + S, S = `roundoff.margin_slack` (float32 forward error plus
float64 evaluation error), i.e. iff the numerator  N = sum_i exp(score_i) U(t_i) < 0.

Step 2, the attention side, for a case (m, q, c, n): query q, n copies of m and
r = K-1-n copies of a non-max token c among the first K-1 positions. With
x = sum over the max positions of exp(EQKP[q, p]) and T the same sum over all K-1
positions,

    N(x) = e^{EQKE[q,m]} U(m) x + e^{EQKE[q,c]} U(c) (T - x) + e^{EQKE[q,q] + EQKP[q,K-1]} U(q)

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
G(m, q, n)) is sound. n = K-1 (all first K-1 tokens are m) is `ok_pure[m, q]`: x = T.

Cost: tables O(v^2 d + v d^2), slack O(v^2 K d_head), D and V O(v^3), the case table
O(v^3 K). No Python loop runs over the vocabulary.
Unexplained dimensionality: the proof treats EQKE, EVOU and EU as arbitrary v x v
tables and EQKP, PVOU as arbitrary v x K and K x v tables: 3 v^2 + 2 v K.
"""

from __future__ import annotations

import time

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.core.flops import FlopCounter
from interpgym.proofs.certificates import count_certified
from interpgym.proofs.inputs import input_count
from interpgym.proofs.result import ProofResult
from interpgym.proofs.roundoff import margin_slack
from interpgym.proofs.tables import MaxKTables, compute_tables
from interpgym.subjects.maxk import MaxKWeights

NAME = "cubic"
COMPLEXITY = "O(v^3 K)"
# exp() of a float64 above this overflows; scores spanning more nats than this are refused.
MAX_EXPONENT = 700.0


def pessimized_value_tables(tables: MaxKTables, slack: float) -> Float[Tensor, "v_max v_query v_key"]:
    """U[m, q, t] = V[m, t] + D[m, q] + slack (module docstring, step 1). Cost O(v^3 + v^2 K)."""
    vocab = tables.vocab
    wrong = ~torch.eye(vocab, dtype=torch.bool, device=tables.EU.device)  # [m, j]: j != m
    minus_inf = torch.tensor(float("-inf"), dtype=tables.EU.dtype, device=tables.EU.device)
    # centred[m, x, j] = table[x, j] - table[x, m]
    direct = tables.EU[None, :, :] - tables.EU.T[:, :, None]  # [m, q, j]
    direct_worst = torch.where(wrong[:, None, :], direct, minus_inf).amax(dim=2)  # [m, q]
    position_worst = (tables.PVOU[None, :, :] - tables.PVOU.T[:, :, None]).amax(dim=1)  # [m, j]
    value = tables.EVOU[None, :, :] - tables.EVOU.T[:, :, None] + position_worst[:, None, :]  # [m, t, j]
    value_worst = torch.where(wrong[:, None, :], value, minus_inf).amax(dim=2)  # [m, t]
    return value_worst[:, None, :] + direct_worst[:, :, None] + slack


def extreme_position_sums(tables: MaxKTables, shift: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(x_min, x_max [q, n], total [q]) of exp(EQKP[q, p] - shift[q]) over n of the first K-1 positions.

    x_min(n) sums the n smallest weights, x_max(n) the n largest. Cost O(v K log K).
    """
    weights = (tables.EQKP[:, :-1] - shift[:, None]).exp().sort(dim=1).values  # ascending [q, K-1]
    zero = torch.zeros_like(weights[:, :1])
    smallest = torch.cat([zero, weights.cumsum(dim=1)], dim=1)  # [q, n] for n = 0..K-1
    total = smallest[:, -1]
    largest = total[:, None] - smallest.flip(dims=[1])
    return smallest, largest, total


def cubic_certificate(tables: MaxKTables, slack: float) -> tuple[Bool[Tensor, "m q c n"], Bool[Tensor, "m q"]]:
    """(ok, ok_pure) as specified in `certificates`, proved as in the module docstring.

    Entries outside the meaningful range (c >= m, q > m, n = K-1 in `ok`) are False.
    Cost O(v^3 K).
    """
    vocab, k = tables.vocab, tables.k
    U = pessimized_value_tables(tables, slack)  # [m, q, t]
    query_score = tables.EQKE.diagonal() + tables.EQKP[:, -1]  # [q]
    # Measure every exponent from the query position's score: its weight is exactly 1,
    # and anything far below it underflows harmlessly (it is < e^-700 of the total).
    token_exponent = tables.EQKE - query_score[:, None]  # [q, t]
    position_shift = tables.EQKP[:, :-1].amax(dim=1) if k > 1 else torch.zeros_like(query_score)
    top = float((token_exponent.amax(dim=1) + position_shift).max())
    if top > MAX_EXPONENT:
        raise UserError(f"attention scores span {top:.0f} nats (> {MAX_EXPONENT:.0f}); the cubic proof's float64 exponentials would overflow")
    token_weight = (token_exponent + position_shift[:, None]).exp()  # [q, t]
    x_min, x_max, total = extreme_position_sums(tables, position_shift)  # [q, n], [q]

    m_index = torch.arange(vocab, device=U.device)
    U_max = U[m_index, :, m_index]  # [m, q]: U(m)
    U_query = U.diagonal(dim1=1, dim2=2)  # [m, q]: U(q)
    max_term = token_weight.T[:, :, None] * U_max[:, :, None]  # [m, q, 1] per unit x: e^{E[q,m]} U(m)
    query_term = U_query[:, :, None, None]  # weight 1
    nonmax_term = token_weight[None, :, :] * U  # [m, q, c]: y(c)
    extremes = torch.stack([x_min, x_max], dim=-1)  # [q, n, 2]
    numerator = (
        max_term[:, :, :, None, None] * extremes[None, :, None, :, :]  # [m, q, 1, n, 2]
        + nonmax_term[:, :, :, None, None] * (total[:, None, None] - extremes)[None, :, None, :, :]
        + query_term[:, :, :, :, None]
    )  # [m, q, c, n, 2]
    ok = (numerator < 0).all(dim=-1)
    below = m_index[None, :] < m_index[:, None]  # [m, c]: c < m
    query_ok = m_index[None, :] <= m_index[:, None]  # [m, q]: q <= m
    ok = ok & below[:, None, :, None] & query_ok[:, :, None, None]
    ok[:, :, :, k - 1] = False
    pure = max_term[:, :, 0] * total[None, :] + U_query  # [m, q]: x = T, no non-max token
    ok_pure = (pure < 0) & query_ok
    return ok, ok_pure


def cubic(w: MaxKWeights) -> ProofResult:
    """Run the cubic proof on `w`: certificate, certified count, FLOPs (tables included), wall time."""
    started = time.perf_counter()
    with FlopCounter() as counter:
        tables = compute_tables(w)
        slack = margin_slack(w, tables)
        ok, ok_pure = cubic_certificate(tables, slack)
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
        extra={"slack": slack},
    )


__all__ = ["cubic", "cubic_certificate", "pessimized_value_tables", "extreme_position_sums", "NAME", "COMPLEXITY"]

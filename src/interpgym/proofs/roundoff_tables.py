"""Per-entry float32 error bounds for the table proofs: what each key, query and score can suffer.

`roundoff.margin_slack` charges every input one global worst case. This module instead
bounds the float32 forward's error *per table entry*, in a form the cubic proof can fold
into its own per-key tables, so each case is charged what its own tokens can suffer.

The float32 forward (`subjects.maxk.last_logits`) computes, for an input t with query q:

    x^_i = fl(E[t_i] + P[i])                         one rounding:      |x^_i - x_i| <= u |x_i|
    q^, k^_i, v^_i = fl(x^ W_Q), fl(x^_i W_K), fl(x^_i W_V)     length-d dot products
    s^_i = fl(fl(k^_i . q^) / sqrt(dh))              length-dh dot product, then 3u relative
    a~ = softmax(s^): max, d^_i = fl(s^_i - max), E~_i = fl(exp d^_i), S^ = fl(sum E~), a~_i = fl(E~_i / S^)
    z^ = fl(sum_i a~_i v^_i)                         length-K dot product (a bmm)
    o^ = fl(z^ W_O), r^ = fl(x^_q + o^), logit^ = fl(r^ W_U)   length dh and d dot products

Assumptions: IEEE float32 arithmetic with round-to-nearest (no TF32 or reduced-precision
matmuls: torch's default on CPU; on CUDA keep `allow_tf32` off), every dot product of
length n computed in *any* order, blocked or with FMA, so that
|fl(x.y) - x.y| <= gamma_n |x|.|y| (Higham, ch. 3; gamma_n = n u / (1 - n u), u = 2^-24),
a float32 exp within 4 ulp (at most 8u relative; torch uses Sleef's 1-ulp exp on CPU,
CUDA's expf is within 2 ulp), and a softmax computed as above: exp(s - max), one sum, one
division or multiplication by the reciprocal (torch's CPU and CUDA kernels for a short last
dimension; an online softmax that rescales partial sums would need more terms). Underflow adds absolute errors of at most 2^-149 per
operation; with weights of moderate size (|w| < 2^30) these stay below 1e-30 and are
covered by the float64 term below, as is the float64 evaluation of every table.

Derivation. With VO_i = x_i W_V W_O W_U (the exact OV logits, EVOU[t_i] + PVOU[i]) and
EU[q] = x_q W_U, expanding the rounding errors of each step above gives, per output y,

    logit^_y = EU[q, y] + sum_i a~_i VO_i[y] + err_y,   |err_y| <= direct[q, y] + sum_i a~_i key[t_i, i, y]

where (all products of absolute values, `|.|` elementwise; g_n = gamma_n):
    direct[q, y] = (u + (u + g_d (1 + u)) (1 + u)) |x_q| |W_U|[:, y]             (x_q's rounding, r^'s add and W_U's dot)
    key[t, i, y] = (u + g_d (1 + u)) (|x| |W_V|) |W_O W_U|                       (x_i's rounding, v^'s dot)
                 + g_K |v^| |W_O W_U| + [g_dh (1 + g_K) + (u + g_d (1 + u)) (1 + g_dh)(1 + g_K)] (|v^| |W_O|) |W_U|
                                                                              (z^'s sum, o^'s dot, r^'s add and W_U's dot)
with |v^| <= |x W_V| + g_d (1 + u) |x| |W_V| + u |x| |W_V| per coordinate (x = x_{t, i}).

The attention: write b = E~ / sum E~ (exactly). Then b = softmax(s + e) for exact scores s
and a perturbation |e_i| <= exponent[q, t_i, i] = delta[q, t_i, i] (the score error,
`roundoff.score_error_bound`) + 2u max_i |s^_i| (the max subtraction) + 8u / (1 - 8u)
(exp), and a~_i = b_i (1 + eps_i) with |eps_i| <= weight_relative = (1 + u)^2 / (1 - g_{K-1}) - 1
(the sum and the division). Since sum_i b_i = 1 exactly, for j != m

    logit^_j - logit^_m <= sum_i b_i [ (EU[q,j] - EU[q,m] + direct[q,j] + direct[q,m])
                                       + w_i + eps |w_i| + (1 + eps)(key[t_i,i,j] + key[t_i,i,m]) ]

with w_i = VO_i[j] - VO_i[m]: a convex combination of per-key terms, under weights b that
are the exact softmax of scores each off by at most exponent[q, t_i, i]. The cubic proof
bounds the bracket per key (`cubic.float32_value_tables`) and then takes the worst
perturbation per key: sum_i exp(s_i + e_i) U_i <= sum_i exp(s_i) U_i exp(sign(U_i) exponent_i).

Cost: O(v K d (d + dh + v) + v^2 K dh), about one EQKE plus one EVOU; counted with the proof.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.proofs.roundoff import FLOAT32_UNIT_ROUNDOFF, FLOAT64_SLACK, gamma, score_error_bound
from interpgym.proofs.tables import MaxKTables
from interpgym.subjects.maxk import MaxKWeights

EXP_RELATIVE_ERROR = 8 * FLOAT32_UNIT_ROUNDOFF  # 4 ulp


@dataclass(frozen=True)
class ErrorTables:
    """Per-entry bounds on the float32 forward's errors (module docstring).

    direct[q, y]: logit error through the query's own residual; key[t, i, y]: logit error
    per unit of attention on key (t, i); exponent[q, t, i]: bound on the perturbation of
    that key's log-attention weight; weight_relative: relative error of the normalisation;
    float64: an additive bound on the float64 evaluation error of the proof's tables.
    """

    direct: Float[Tensor, "v_query v_out"]
    key: Float[Tensor, "v_key k v_out"]
    exponent: Float[Tensor, "v_query v_key k"]
    weight_relative: float
    float64: float


def error_tables(w: MaxKWeights, tables: MaxKTables) -> ErrorTables:
    """The per-entry bounds of the module docstring for `w` (whose exact tables are `tables`).

    Sound for the float32 forward under the module docstring's assumptions. Cost
    O(v K d (d + dh + v) + v^2 K dh).
    """
    u = FLOAT32_UNIT_ROUNDOFF
    vocab, k, d, dh = w.vocab, w.k, w.d_model, w.d_head
    g_d, g_dh, g_k = gamma(d), gamma(dh), gamma(k)
    E, P, W_V, W_O, W_U = (t.double() for t in (w.W_E, w.W_pos, w.W_V, w.W_O, w.W_U))
    x = E[:, None, :] + P[None, :, :]  # [v, K, d]: exact residuals of every key (t, i)
    x_abs = x.abs()
    W_OU = W_O @ W_U  # [dh, v]
    x_WV = x_abs @ W_V.abs()  # [v, K, dh]
    value_abs = (x @ W_V).abs() + (g_d * (1 + u) + u) * x_WV  # bound on |v^| per coordinate
    through_out = u + g_d * (1 + u)  # r^'s add and W_U's dot product, per unit of |x_q| + |o^|
    # |xi W_V W_O W_U| <= u (|x| |W_V|) |W_O W_U|: x's rounding shares v^'s matmul with |W_O W_U|
    through_ou = (u + g_d * (1 + u)) * x_WV + g_k * value_abs  # [v, K, dh]
    through_o_u = (g_dh * (1 + g_k) + through_out * (1 + g_dh) * (1 + g_k)) * (value_abs @ W_O.abs())  # [v, K, d]
    key = through_ou @ W_OU.abs() + through_o_u @ W_U.abs()  # [v, K, v_out]
    query_abs = (E + P[-1]).abs()  # [v, d]
    direct = (u + through_out * (1 + u)) * (query_abs @ W_U.abs())  # [v, v_out]

    delta, _ = score_error_bound(w, "pairwise")  # [q, v K]
    delta = delta.reshape(vocab, vocab, k)  # [q, t, i]
    scores = tables.EQKE[:, :, None] + tables.EQKP[:, None, :]  # [q, t, i]
    largest_score = (scores.abs() + delta).amax(dim=(1, 2))  # [q]: bound on max_i |s^_i|
    exponent = delta + (2 * u * largest_score)[:, None, None] + EXP_RELATIVE_ERROR / (1 - EXP_RELATIVE_ERROR)
    weight_relative = (1 + u) ** 2 / (1 - gamma(k - 1)) - 1 if k > 1 else (1 + u) ** 2 - 1
    logit_bound = float(tables.EU.abs().max() + tables.EVOU.abs().max() + tables.PVOU.abs().max())
    return ErrorTables(direct=direct, key=key, exponent=exponent, weight_relative=weight_relative,
                       float64=FLOAT64_SLACK * (1 + logit_bound))


def worst_perturbation(values: Tensor, exponent: Tensor) -> Tensor:
    """values * exp(+exponent) where values > 0, values * exp(-exponent) elsewhere: the largest
    value * exp(e) over |e| <= exponent, elementwise (broadcasting). Cost 4 per element."""
    return torch.where(values > 0, values * exponent.exp(), values * (-exponent).exp())


__all__ = ["ErrorTables", "error_tables", "worst_perturbation", "EXP_RELATIVE_ERROR"]

"""How far the model's float32 forward pass can be from exact arithmetic: the margin slack.

Proofs reason about the model in exact arithmetic (evaluated in float64 from the
float32 weights), but the theorem is about the model as it runs: `last_logits` in
float32. `margin_slack(w, value_logits, magnitudes)` returns one number S such that,
for **every** input,

    | margin_float32(t) - margin_exact(t) | + (float64 error of a proof's bound) <= S

where margin = logit[max token] - logit[j] for any j. So a proof that shows
margin_exact > S (computed in float64) proves the float32 model classifies t correctly.

Derivation (standard forward error analysis, Higham ch. 3): u = 2^-24 is float32's unit
roundoff, gamma_n = n u / (1 - n u) bounds the relative error of a length-n dot
product computed in *any* order (blocked, pairwise or with FMA, as BLAS does), in
absolute-value terms: |fl(x.y) - x.y| <= gamma_n |x|.|y|. Every quantity carries a
bound on its exact magnitude and one on its computed value's error:

    x = E[t] + P        err u |x|
    q, k, v = x W       err gamma_d (|x| + u|x|)|W| + u |x||W|        (per head dim)
    score = k.q/sqrt    err delta = [gamma_dh |k^||q^| + |dq||k^| + |q||dk|] / sqrt, then 3u relative
    softmax             ratio of computed to exact weights within exp(+-lam),
                        lam = 2 max delta + 8u max|score| (the max subtraction) + 8u (exp,
                        4 ulp each way) + 2 gamma_K (sum) + 4u (division);  rho = e^lam - 1
    z = sum_i a_i v_i   the weights' error reaches the logits exactly through W_O W_U:
                        |sum_i (a^_i - a_i) v_i W_O W_U| <= rho max |EVOU[t] + PVOU[i]|;
                        the rest is gamma_K (1+rho) |v^| + (1+rho) err_v
    o = z W_O, resid = x + o, logits = resid W_U   (dot-product errors as above)

The query/key magnitudes in the score step are either tracked per query token and per
key (token, position) (`pairwise`, the bound used by brute force and the cubic proof, as
costly as forming EQKE) or per head coordinate (`coordinate`, maxima over all queries /
keys, affordable in a subcubic proof; a somewhat larger bound). Values and the
residual are tracked per coordinate in both. The margin error is at most twice the
largest logit error. The result is doubled again as headroom for effects the model
above does not capture (subnormals, a libm exp worse than 4 ulp). It assumes IEEE
float32 arithmetic: no TF32 or reduced-precision matmuls (torch's default on CPU; on
CUDA keep `allow_tf32` off).

The float64 evaluation of tables and bounds adds at most a few thousand roundings of
relative size 2^-53 on quantities bounded by L (a bound on every |logit|), i.e. below
1e-12 L; we add 1e-10 (1 + L).

Cost: `pairwise` O(v^2 K dh + v K d dh) (about one EQKE), `coordinate` O(v d dh + v K d),
plus O(v^2 K) for `value_logit_bound`; counted with the proof that uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jaxtyping import Float
from torch import Tensor

from interpgym.subjects.maxk import MaxKWeights

FLOAT32_UNIT_ROUNDOFF = 2.0**-24
FLOAT64_SLACK = 1e-10
HEADROOM = 2.0


def gamma(n: int, u: float = FLOAT32_UNIT_ROUNDOFF) -> float:
    """Higham's gamma_n = n u / (1 - n u): relative error bound of an n-term dot product."""
    if n * u >= 1:
        raise ValueError(f"gamma_{n} undefined for u={u}")
    return n * u / (1 - n * u)


MAGNITUDES = ("pairwise", "coordinate")


def value_logit_bound(EVOU: Float[Tensor, "v v_out"], PVOU: Float[Tensor, "k v_out"]) -> Float[Tensor, " v_out"]:
    """max over (token t, position i) of |EVOU[t, y] + PVOU[i, y]| per output y: the exact
    OV logits, through which attention-weight errors reach the logits. Cost O(v^2 K)."""
    return (EVOU[:, None, :] + PVOU[None, :, :]).abs().amax(dim=(0, 1))


def _projection_error(x_mag: Tensor, x_err: Tensor, W: Float[Tensor, "n m"]) -> Tensor:
    """Bound on |fl(x_hat W) - x W| given |x| <= x_mag and |x_hat - x| <= x_err (row-wise or
    coordinate-wise bounds): gamma_n |x_hat||W| for the dot products plus |x_hat - x||W|."""
    magnitude = W.abs()
    return gamma(W.shape[0]) * ((x_mag + x_err) @ magnitude) + x_err @ magnitude


def _query_key_magnitudes(w: MaxKWeights, magnitudes: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(|q|, err q, |k|, err k): exact magnitudes and float32 error bounds of queries and keys.

    `pairwise`: one row per query token [v, dh] and per key (token, position) [v K, dh],
    cost O(v K d dh). `coordinate`: a single row of per-coordinate maxima over all queries
    (keys), cost O(v d dh)."""
    u = FLOAT32_UNIT_ROUNDOFF
    E, P, W_Q, W_K = (t.double() for t in (w.W_E, w.W_pos, w.W_Q, w.W_K))
    query_x = E + P[-1]  # [v, d]: the query sits at position K-1
    if magnitudes == "pairwise":
        key_x = (E[:, None, :] + P[None, :, :]).reshape(-1, E.shape[1])  # [v K, d]
        query_abs, key_abs = query_x.abs(), key_x.abs()
        mag_q, mag_k = (query_x @ W_Q).abs(), (key_x @ W_K).abs()
    elif magnitudes == "coordinate":
        query_abs = query_x.abs().amax(dim=0, keepdim=True)
        key_abs = (E.abs().amax(dim=0) + P.abs().amax(dim=0))[None]  # |E[t] + P[i]| <= |E[t]| + |P[i]|
        mag_q = (query_x @ W_Q).abs().amax(dim=0, keepdim=True)
        mag_k = ((E @ W_K).abs().amax(dim=0) + (P @ W_K).abs().amax(dim=0))[None]
    else:
        raise ValueError(f"magnitudes must be one of {MAGNITUDES}, got {magnitudes!r}")
    # x_hat = fl(W_E[t] + W_pos[i]) is within u |x| of x
    err_q = _projection_error(query_abs, u * query_abs, W_Q)
    err_k = _projection_error(key_abs, u * key_abs, W_K)
    return mag_q, err_q, mag_k, err_k


def forward_error_bound(
    w: MaxKWeights, value_logits: Float[Tensor, " v_out"], magnitudes: str = "pairwise"
) -> tuple[float, float]:
    """(bound on |margin_float32 - margin_exact| over all inputs, bound L on every exact |logit|).

    `value_logits[y]` must bound |EVOU[t, y] + PVOU[i, y]| over tokens t and positions i
    (`value_logit_bound`, or any larger vector). See the module docstring for the
    derivation; the first value already includes the x2 headroom. `magnitudes` chooses
    how query/key magnitudes enter the score error: `pairwise` bounds it per (query
    token, key token, key position), cost O(v^2 K dh + v K d dh); `coordinate` uses
    per-head-coordinate maxima, cost O(v d dh + v K d), for a somewhat larger bound.
    Either is sound; the rest of the analysis is shared. Cost beyond that O(v K d + d^2 + d v).
    """
    return heads_forward_error_bound([w], [value_logits], magnitudes)


@dataclass(frozen=True)
class _HeadError:
    """One head's output z = sum_i a_i v_i: exact magnitude, computed-value magnitude and error
    bounds per head coordinate, and the relative error rho of its attention weights."""

    mag_v: Tensor
    mag_z_hat: Tensor
    err_z: Tensor
    rho: float


def score_error_bound(w: MaxKWeights, magnitudes: str = "pairwise") -> tuple[Tensor, Tensor]:
    """(delta, score_mag): delta bounds |score_float32 - score_exact| and score_mag bounds |score_exact|.

    Rows are query tokens, columns key (token, position) pairs in the order t * K + i
    (`pairwise`, shape [v, v K]) or a single entry (`coordinate`, [1, 1]). The score step of
    the module docstring: a length-dh dot product of the computed q and k (any order), then
    the scaling by the rounded 1/sqrt(dh) (3u relative). Cost O(v^2 K dh + v K d dh) pairwise.
    """
    u = FLOAT32_UNIT_ROUNDOFF
    mag_q, err_q, mag_k, err_k = _query_key_magnitudes(w, magnitudes)
    root = math.sqrt(w.d_head)
    exact_dot = mag_q @ mag_k.T  # bound on sum_h |q_h k_h|
    computed_dot = (mag_q + err_q) @ (mag_k + err_k).T  # bound on sum_h |q^_h k^_h|
    # |q^.k^ - q.k| <= |dq|.|k^| + |q|.|dk| = computed_dot - exact_dot (expand the product)
    dot_err = gamma(w.d_head) * computed_dot + (computed_dot - exact_dot)
    score_mag = exact_dot / root
    delta = dot_err / root * (1 + 3 * u) + 3 * u * (score_mag + dot_err / root)
    return delta, score_mag


def _head_error(w: MaxKWeights, magnitudes: str) -> _HeadError:
    """The score, softmax and value steps of the module docstring for one head (`w` viewed as one head)."""
    u = FLOAT32_UNIT_ROUNDOFF
    E, P, W_V = (t.double() for t in (w.W_E, w.W_pos, w.W_V))
    g_k = gamma(w.k)
    delta, score_mag = score_error_bound(w, magnitudes)
    score_hat_mag = float((score_mag + delta).max())
    # softmax: exponents off by 2 max delta plus the rounding of s_i - max(s); exp (4 ulp
    # each way), the K-term sum and the division; |a_hat_i - a_i| <= rho a_i
    lam = 2 * float(delta.max()) + 4 * u * 2 * score_hat_mag + 8 * u + 2 * g_k + 4 * u
    rho = math.expm1(lam)
    # values: any (token, position), coordinate-wise
    any_abs = (E[:, None, :] + P[None, :, :]).abs().amax(dim=(0, 1))  # [d]
    mag_v = any_abs @ W_V.abs()
    err_v = _projection_error(any_abs, u * any_abs, W_V)
    # z_hat - z = [rounding of sum_i a_hat_i v_hat_i] + sum_i a_hat_i (v_hat_i - v_i) + sum_i (a_hat_i - a_i) v_i;
    # the last term reaches the logits exactly as sum_i (a_hat_i - a_i)(EVOU[t_i] + PVOU[i]): <= rho value_logits
    err_z = g_k * (1 + rho) * (mag_v + err_v) + (1 + rho) * err_v
    return _HeadError(mag_v=mag_v, mag_z_hat=(1 + rho) * mag_v + err_z, err_z=err_z, rho=rho)


def heads_forward_error_bound(
    heads: list[MaxKWeights], value_logits: list[Float[Tensor, " v_out"]], magnitudes: str = "pairwise"
) -> tuple[float, float]:
    """`forward_error_bound` for a model whose output sums H heads (`heads[h]`: head h viewed as a
    one-head model, all sharing W_E, W_pos, W_U; `value_logits[h]` bounds head h's exact OV
    logits). The output projection sum_{h, e} z_h[e] W_O[h, e] is one dot product of length
    H d_head (any summation order); each head's attention error reaches the logits through
    its own OV logits. With one head this is exactly the one-head analysis."""
    u = FLOAT32_UNIT_ROUNDOFF
    first = heads[0]
    E, P, W_U = (t.double() for t in (first.W_E, first.W_pos, first.W_U))
    parts = [_head_error(w, magnitudes) for w in heads]
    g_out = gamma(first.d_head * len(heads))
    mag_o = sum(part.mag_v @ w.W_O.double().abs() for part, w in zip(parts, heads, strict=True))
    err_o = sum(g_out * (part.mag_z_hat @ w.W_O.double().abs()) + part.err_z @ w.W_O.double().abs()
                for part, w in zip(parts, heads, strict=True))
    query_abs = (E + P[-1]).abs().amax(dim=0)
    err_query = u * query_abs
    mag_r = query_abs + mag_o
    err_r = err_query + err_o + u * (mag_r + err_query + err_o)  # resid = fl(x_hat + o_hat)
    err_logit = _projection_error(mag_r, err_r, W_U) + sum(part.rho * v for part, v in zip(parts, value_logits, strict=True))
    logit_bound = float((mag_r @ W_U.abs()).max())
    return HEADROOM * 2 * float(err_logit.max()), logit_bound


def margin_slack(
    w: MaxKWeights,
    value_logits: Float[Tensor, " v_out"],
    magnitudes: str = "pairwise",
    table_scale: float = 0.0,
) -> float:
    """S: certify an input only if its exact-arithmetic margin, computed in float64, exceeds S.

    Covers the float32 forward's rounding (`forward_error_bound`, same arguments) and the
    float64 evaluation error of the proof, whose tables are bounded by the logit bound L
    or by `table_scale` (a proof whose tables are not logits passes their largest
    magnitude). Cost: that of `forward_error_bound`.
    """
    forward, logit_bound = forward_error_bound(w, value_logits, magnitudes)
    return forward + FLOAT64_SLACK * (1 + max(logit_bound, table_scale))


def heads_margin_slack(heads: list[MaxKWeights], value_logits: list[Float[Tensor, " v_out"]]) -> float:
    """`margin_slack` (pairwise magnitudes) for an H-head model given as one-head views (see
    `heads_forward_error_bound`). Cost: H times the one-head score analysis."""
    forward, logit_bound = heads_forward_error_bound(heads, value_logits)
    return forward + FLOAT64_SLACK * (1 + logit_bound)


__all__ = [
    "margin_slack",
    "score_error_bound",
    "heads_margin_slack",
    "forward_error_bound",
    "heads_forward_error_bound",
    "value_logit_bound",
    "gamma",
    "MAGNITUDES",
    "FLOAT32_UNIT_ROUNDOFF",
    "FLOAT64_SLACK",
    "HEADROOM",
]

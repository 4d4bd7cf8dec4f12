"""How far the model's float32 forward pass can be from exact arithmetic: the margin slack.

Proofs reason about the model in exact arithmetic (evaluated in float64 from the
float32 weights), but the theorem is about the model as it runs: `last_logits` in
float32. `margin_slack(w)` returns one number S such that, for **every** input,

    | margin_float32(t) - margin_exact(t) | + (float64 error of a proof's bound) <= S

where margin = logit[max token] - logit[j] for any j. So a proof that shows
margin_exact > S (computed in float64) proves the float32 model classifies t correctly.

Derivation (standard forward error analysis, Higham ch. 3): u = 2^-24 is float32's unit
roundoff, gamma_n = n u / (1 - n u) bounds the relative error of a length-n dot
product computed in *any* order (blocked, pairwise or with FMA, as BLAS does), in
absolute-value terms: |fl(x.y) - x.y| <= gamma_n |x|.|y|. Magnitudes |W_E[t] + W_pos[i]|
are tracked per (token, position), so every bound below holds per query token and per
key (token, position), and is then maximised:

    x = E[t] + P        err u |x|
    q, k, v = x W       err (gamma_d + u) |x||W|                 (per head dim)
    score = k.q/sqrt    err delta = gamma_dh |k||q| + |dk||q| + |k||dq|, then 3u relative
    softmax             ratio of computed to exact weights within exp(+-lam),
                        lam = 2 max delta + 8u max|score| (the max subtraction) + 8u (exp,
                        4 ulp each way) + 2 gamma_K (sum) + 4u (division);  rho = e^lam - 1
    z = sum_i a_i v_i   the weights' error reaches the logits exactly through W_O W_U:
                        |sum_i (a^_i - a_i) v_i W_O W_U| <= rho max |EVOU[t] + PVOU[i]|;
                        the rest is gamma_K (1+rho) |v| + (1+rho) err_v
    o = z W_O, resid = x + o, logits = resid W_U   (dot-product errors as above)

and the margin error is at most twice the largest logit error. The result is doubled
again as headroom for effects the model above does not capture (subnormals, a libm exp
worse than 4 ulp). It assumes IEEE float32 arithmetic: no TF32 or reduced-precision
matmuls (torch's default on CPU; on CUDA keep `allow_tf32` off).

The float64 evaluation of tables and bounds adds at most a few thousand roundings of
relative size 2^-53 on quantities bounded by L (a bound on every |logit|), i.e. below
1e-12 L; we add 1e-10 (1 + L).

Cost: O(v^2 K dh + v K d dh) FLOPs (about one EQKE), counted with the proof that uses it.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.proofs.tables import MaxKTables
from interpgym.subjects.maxk import MaxKWeights

FLOAT32_UNIT_ROUNDOFF = 2.0**-24
FLOAT64_SLACK = 1e-10
HEADROOM = 2.0


def gamma(n: int, u: float = FLOAT32_UNIT_ROUNDOFF) -> float:
    """Higham's gamma_n = n u / (1 - n u): relative error bound of an n-term dot product."""
    if n * u >= 1:
        raise ValueError(f"gamma_{n} undefined for u={u}")
    return n * u / (1 - n * u)


def _abs_residuals(w: MaxKWeights) -> Float[Tensor, "v k d_model"]:
    """|W_E[t] + W_pos[i]| for every (token, position), in float64 (exact sums of float32s)."""
    return (w.W_E.double()[:, None, :] + w.W_pos.double()[None, :, :]).abs()


def forward_error_bound(w: MaxKWeights, tables: MaxKTables) -> tuple[float, float]:
    """(bound on |margin_float32 - margin_exact| over all inputs, bound L on every |logit|).

    `tables` must be `compute_tables(w)`. See the module docstring for the derivation;
    the first value already includes the x2 headroom. Magnitudes are tracked per
    (query token) and per (key token, key position), so the score error is bounded per
    pair rather than by a product of worst cases. Cost O(v^2 K dh + v K d dh + v d).
    """
    u = FLOAT32_UNIT_ROUNDOFF
    vocab, k, d, dh = w.vocab, w.k, w.d_model, w.d_head
    g_d, g_dh, g_k = gamma(d), gamma(dh), gamma(k)
    residual = _abs_residuals(w) * (1 + u)  # bound on |fl(x)| per (token, position)
    err_residual = residual * u

    def projected(x_abs: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
        exact_mag = x_abs @ W.double().abs()
        err = (g_d + u) * exact_mag
        return exact_mag + err, err  # (bound on |computed|, bound on error)

    mag_q, err_q = projected(residual[:, -1], w.W_Q)  # [v, dh]: query token at position K-1
    keys_abs = residual.reshape(vocab * k, d)
    mag_k, err_k = projected(keys_abs, w.W_K)  # [v*K, dh]
    mag_v, err_v = projected(keys_abs, w.W_V)
    root = math.sqrt(dh)
    dot_mag = mag_q @ mag_k.T  # [v, v*K]: bound on sum_h |q_h k_h| per (query, key)
    score_mag = dot_mag / root * (1 + 3 * u)
    delta = (g_dh * dot_mag + err_q @ mag_k.T + mag_q @ err_k.T) / root + 3 * u * score_mag
    lam = 2 * float(delta.max()) + 4 * u * 2 * float(score_mag.max()) + 8 * u + 2 * g_k + 4 * u
    rho = math.expm1(lam)

    # attention-weight error times the exact value logits, |a^ - a| <= rho a:
    value_logits = (tables.EVOU[:, None, :] + tables.PVOU[None, :, :]).abs().amax(dim=(0, 1))  # [v_out]
    W_O, W_U = w.W_O.double().abs(), w.W_U.double().abs()
    mag_v_max, err_v_max = mag_v.amax(dim=0), err_v.amax(dim=0)
    mag_z = (1 + rho) * (1 + g_k) * mag_v_max
    # z error other than the attention weights' own error (summation, value errors):
    err_z = g_k * (1 + rho) * mag_v_max + (1 + rho) * err_v_max
    mag_o = (mag_z @ W_O) * (1 + g_dh)
    err_o = g_dh * (mag_z @ W_O) + err_z @ W_O
    x_query, err_x_query = residual[:, -1].amax(dim=0), err_residual[:, -1].amax(dim=0)
    mag_r = (x_query + mag_o) * (1 + u)
    err_r = err_x_query + err_o + u * (x_query + mag_o)
    err_logit = g_d * (mag_r @ W_U) + err_r @ W_U + rho * value_logits
    logit_bound = float((mag_r @ W_U).max())
    return HEADROOM * 2 * float(err_logit.max()), logit_bound


def margin_slack(w: MaxKWeights, tables: MaxKTables) -> float:
    """S: certify an input only if its exact-arithmetic margin, computed in float64, exceeds S.

    Covers the float32 forward's rounding and the float64 evaluation error of the
    proof. `tables` must be `compute_tables(w)`. Cost O(v^2 K dh + v K d dh).
    """
    forward, logit_bound = forward_error_bound(w, tables)
    return forward + FLOAT64_SLACK * (1 + logit_bound)


__all__ = ["margin_slack", "forward_error_bound", "gamma", "FLOAT32_UNIT_ROUNDOFF"]

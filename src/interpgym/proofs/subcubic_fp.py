"""A worst-case bound on the float32 rounding error of the max-of-K forward pass.

The subcubic bounds reason about the model in exact real arithmetic (the float32
weights read as exact reals, evaluated in float64). The model itself runs in float32
(`interpgym.subjects.maxk.last_logits`). `float32_logit_error` bounds, for *every*
input, |float32 logit - exact logit| for every output, so a strategy that requires
its real-arithmetic margin to exceed twice this bound (one error per logit of the
compared pair) certifies only inputs that the float32 forward classifies correctly.

It is the analysis of `proofs.roundoff.forward_error_bound` (see there for the
derivation: Higham-style gamma_n bounds through x = W_E[t] + W_pos, q/k/v = x W, the
rounded 1/sqrt(d_head) scaling, softmax, z = sum_i a_i v_i with the attention-weight
error carried to the logits through the exact OV logits, resid = x + z W_O, logits =
resid W_U, doubled as headroom) with cheaper magnitude tracking: per head coordinate
(exact maxima of |q_j| and |k_j| over tokens, coordinate-wise bounds elsewhere) instead of
per (query, key) pair. That costs O(v d d_head) instead of O(v^2 K d_head) -- a
subcubic proof cannot afford a full-EQKE-sized computation -- for a somewhat larger
slack: ~0.2 logits of margin on the default model (versus ~0.15), which lowers the
subcubic bounds by under 0.1 percentage points. Assumes IEEE float32 arithmetic (no
TF32 / bf16 matmuls).

Cost: O(v d d_head + v K d + d^2 + d v), run under the caller's FLOP counter.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.proofs.roundoff import FLOAT32_UNIT_ROUNDOFF, HEADROOM
from interpgym.proofs.roundoff import gamma as _gamma
from interpgym.subjects.maxk import MaxKWeights


def _matmul_error(bound_in: Tensor, error_in: Tensor, weight: Float[Tensor, "n m"]) -> tuple[Tensor, Tensor]:
    """Coordinate-wise (bound on |x W|, bound on |fl(x_hat W) - x W|) given |x| <= bound_in and
    |x_hat - x| <= error_in coordinate-wise (all inputs and errors bounded by the same vectors)."""
    magnitude = weight.abs()
    out_bound = bound_in @ magnitude
    out_error = _gamma(weight.shape[0]) * ((bound_in + error_in) @ magnitude) + error_in @ magnitude
    return out_bound, out_error


def float32_logit_error(w: MaxKWeights, value_logits: Float[Tensor, " out"]) -> Tensor:
    """Scalar (float64) e with |float32 logit - exact logit| <= e for every input and output.

    `w` must hold the float32 weights as float64 tensors (exact conversion);
    `value_logits[y]` must bound |EVOU[t, y] + PVOU[i, y]| over tokens t and positions i
    (the exact OV logits), through which attention-weight errors reach the logits.
    Cost O(v d d_head) (exact coordinate maxima of queries and keys) + O(v K d + d^2 + d v).
    """
    u = FLOAT32_UNIT_ROUNDOFF
    k, d_head = w.k, w.d_head
    query_in = w.W_E + w.W_pos[-1]
    any_resid = (w.W_E[:, None, :] + w.W_pos[None, :, :]).abs().amax(dim=(0, 1))  # [d]: any token, position
    query_resid = query_in.abs().amax(dim=0)  # [d]: last position
    any_err, query_err = u * any_resid, u * query_resid  # x_hat = fl(W_E[t] + W_pos[i])
    # exact coordinate maxima of q and k (the score rounding error scales with sum_j |k_j q_j|)
    q_bound = (query_in @ w.W_Q).abs().amax(dim=0)
    k_bound = (w.W_E @ w.W_K).abs().amax(dim=0) + (w.W_pos @ w.W_K).abs().amax(dim=0)
    _, q_err = _matmul_error(query_resid, query_err, w.W_Q)
    _, k_err = _matmul_error(any_resid, any_err, w.W_K)
    v_bound, v_err = _matmul_error(any_resid, any_err, w.W_V)
    # scores: dot of length d_head, then division by the float32-rounded sqrt(d_head)
    root = math.sqrt(d_head)
    dot_err = _gamma(d_head) * ((k_bound + k_err) * (q_bound + q_err)).sum() + (
        k_err * (q_bound + q_err) + k_bound * q_err
    ).sum()
    score_bound = (k_bound * q_bound).sum() / root
    score_err = dot_err / root * (1 + 3 * u) + 3 * u * (score_bound + dot_err / root)
    # softmax: exponent perturbation from score errors and from rounding s_i - max(s),
    # relative errors from exp (4u), the K-term sum and the division
    exponent_err = score_err + 2 * u * (score_bound + score_err)
    log_factor = 2 * exponent_err + 2 * (4 * u) + 2 * _gamma(max(k, 1)) + 2 * u
    attn_err = torch.expm1(log_factor)  # |a_hat_i - a_i| <= attn_err * a_i
    # z_hat - z = [rounding of sum_i a_hat_i v_hat_i] + sum_i a_hat_i (v_hat_i - v_i) + sum_i (a_hat_i - a_i) v_i;
    # the last term reaches the logits as sum_i (a_hat_i - a_i) (EVOU[t_i] + PVOU[i]): <= attn_err * value_logits
    z_err = _gamma(k) * (1 + attn_err) * (v_bound + v_err) + (1 + attn_err) * v_err
    z_hat_bound = (1 + attn_err) * v_bound + z_err
    o_err = _gamma(d_head) * (z_hat_bound @ w.W_O.abs()) + z_err @ w.W_O.abs()
    o_bound = v_bound @ w.W_O.abs()
    resid_bound = query_resid + o_bound
    resid_err = query_err + o_err + u * (resid_bound + query_err + o_err)
    _, logit_err = _matmul_error(resid_bound, resid_err, w.W_U)
    return HEADROOM * (logit_err + attn_err * value_logits).amax()

"""How far the modular-addition model's float32 forward can be from exact arithmetic: the margin slack.

`modadd_margin_slack(w)` returns S such that for **every** input (a, b) and answers c, c',

    | (logit_c - logit_c')_float32 - (logit_c - logit_c')_exact | + (float64 error of a proof) <= S,

so a proof showing exact margin > S (computed in float64) proves the float32 model right.

The analysis is the one of `proofs.roundoff` (Higham ch. 3: u = 2^-24, |fl(x.y) - x.y| <=
gamma_n |x|.|y| for an n-term dot product in any summation order) carried through this
model's steps with one magnitude bound per coordinate (the maximum over all inputs):

    x = E[t] + P[i]                err u |x|
    q, k, v = x W (per head)       err gamma_d (|x| + u|x|)|W| + u|x||W|
    score = q.k / sqrt(dh)         err delta (as in `roundoff`), softmax weights within
                                   a factor exp(+-lam) of exact: |a^ - a| <= rho a
                                   (uniform attention: a = fl(1/3), rho = u)
    z = sum_i a_i v_i              err gamma_3 (1+rho)(|v| + err v) + (1+rho) err v + rho |v|
    o = sum_{h,e} z W_O            one dot product of length H d_head
    r = x_2 + o, pre = r W_in, act = ReLU(pre) (1-Lipschitz, exact), m = act W_out,
    r' = r + m, logits = r' W_U    dot products and additions as above; the activation error
                                   reaches the logits through |W_out W_U| (exact linear maps),
                                   each product's own rounding through |W_out|, |W_U|.

A margin's error is at most twice the largest logit error; the result is doubled again as
headroom (as in `roundoff`). It assumes IEEE float32 arithmetic (no TF32 on CUDA). The
float64 evaluation of a proof adds `FLOAT64_SLACK (1 + L)`, L bounding every |logit|.

Cost O(p d d_head H + d d_mlp + d p): linear in the parameter count.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from interpgym.proofs.roundoff import FLOAT32_UNIT_ROUNDOFF, FLOAT64_SLACK, HEADROOM, gamma
from interpgym.subjects.modadd import ModAddWeights


def _project(x_mag: Tensor, x_err: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """(magnitude bound, error bound) of fl(x_hat W) given |x| <= x_mag, |x_hat - x| <= x_err (per coordinate)."""
    magnitude = W.abs()
    return x_mag @ magnitude, gamma(W.shape[-2]) * ((x_mag + x_err) @ magnitude) + x_err @ magnitude


def _add(a_mag: Tensor, a_err: Tensor, b_mag: Tensor, b_err: Tensor) -> tuple[Tensor, Tensor]:
    """(magnitude, error) of a rounded sum fl(a_hat + b_hat)."""
    u = FLOAT32_UNIT_ROUNDOFF
    mag = a_mag + b_mag
    return mag, a_err + b_err + u * (mag + a_err + b_err)


def _attention_rho(w: ModAddWeights, E: Tensor, P: Tensor, x_all: Tensor) -> Tensor:
    """Per head, rho with |a_hat - a| <= rho a for every attention weight of every input."""
    u = FLOAT32_UNIT_ROUNDOFF
    if w.uniform_attention:
        return torch.full((w.n_heads,), u, dtype=E.dtype, device=E.device)
    query = E[-1] + P[-1]
    query_abs, key_abs = query.abs(), x_all.abs().amax(dim=0)
    rhos = []
    root = math.sqrt(w.d_head)
    for h in range(w.n_heads):
        W_Q, W_K = w.W_Q[h].double(), w.W_K[h].double()
        mag_q, err_q = _project(query_abs, u * query_abs, W_Q)
        mag_q = (query @ W_Q).abs()
        mag_k = (x_all @ W_K).abs().amax(dim=0)
        _, err_k = _project(key_abs, u * key_abs, W_K)
        exact_dot = float(mag_q @ mag_k)
        computed_dot = float((mag_q + err_q) @ (mag_k + err_k))
        dot_err = gamma(w.d_head) * computed_dot + (computed_dot - exact_dot)
        score_mag = exact_dot / root
        delta = dot_err / root * (1 + 3 * u) + 3 * u * (score_mag + dot_err / root)
        lam = 2 * delta + 4 * u * 2 * (score_mag + delta) + 8 * u + 2 * gamma(3) + 4 * u
        rhos.append(math.expm1(lam))
    return torch.tensor(rhos, dtype=E.dtype, device=E.device)


def modadd_forward_error_bound(w: ModAddWeights, pre_activation_bound: Tensor | None = None,
                               readout: Tensor | None = None) -> tuple[float, float]:
    """(bound on |margin_float32 - margin_exact| over all inputs and answer pairs, bound L on every exact |logit|).

    `pre_activation_bound[i]`, if given, must bound neuron i's exact |pre-activation| over all
    inputs (a proof that computes the pre-activations has it exactly, and it is far smaller than
    the default |r| |W_in|). `readout`, if given, must be W_out W_U in float64 (a proof that has
    it passes it to save the product). Includes the x2 headroom. See the module docstring. Cost
    O(p d d_head H + d d_mlp + d p).
    """
    u = FLOAT32_UNIT_ROUNDOFF
    E, P = w.W_E.double(), w.W_pos.double()
    x_all = (E[:, None, :] + P[None, :, :]).reshape(-1, w.d_model)  # every (token, position): a superset
    x_mag = x_all.abs().amax(dim=0)
    x_err = u * x_mag
    rho = _attention_rho(w, E, P, x_all)
    o_mag = torch.zeros_like(x_mag)
    o_err = torch.zeros_like(x_mag)
    g_out = gamma(w.n_heads * w.d_head)
    for h in range(w.n_heads):
        W_V, W_O = w.W_V[h].double(), w.W_O[h].double()
        v_mag = (x_all @ W_V).abs().amax(dim=0)
        _, v_err = _project(x_mag, x_err, W_V)
        r = float(rho[h])
        z_err = gamma(3) * (1 + r) * (v_mag + v_err) + (1 + r) * v_err + r * v_mag
        z_hat = v_mag + z_err
        o_mag = o_mag + v_mag @ W_O.abs()
        o_err = o_err + g_out * (z_hat @ W_O.abs()) + z_err @ W_O.abs()
    query = (E[-1] + P[-1]).abs()
    r_mag, r_err = _add(query, u * query, o_mag, o_err)
    pre_mag, pre_err = _project(r_mag, r_err, w.W_in.double())
    if pre_activation_bound is not None:
        pre_mag = torch.minimum(pre_mag, pre_activation_bound.to(pre_mag))
    # ReLU is 1-Lipschitz: |act| <= |pre| and the activation error is at most pre_err. That error
    # reaches the logits exactly through W_out W_U (the products after it are linear), so it is
    # charged through |W_out W_U| rather than |W_out| |W_U|; only the products' own rounding
    # (gamma terms) goes through the absolute matrices.
    W_out, W_U = w.W_out.double(), w.W_U.double()
    readout = (W_out @ W_U if readout is None else readout).abs()
    m_mag = pre_mag @ W_out.abs()
    m_round = gamma(w.d_mlp) * ((pre_mag + pre_err) @ W_out.abs())  # rounding of fl(act_hat W_out)
    r2_mag = r_mag + m_mag
    m_err = pre_err @ W_out.abs() + m_round
    r2_round = u * (r2_mag + r_err + m_err)  # rounding of fl(r_hat + m_hat)
    logit_err = (gamma(w.d_model) * ((r2_mag + r_err + m_err + r2_round) @ W_U.abs())  # rounding of fl(r2_hat W_U)
                 + (r_err + m_round + r2_round) @ W_U.abs() + pre_err @ readout)
    logit_mag = r2_mag @ W_U.abs()
    return HEADROOM * 2 * float(logit_err.max()), float(logit_mag.max())


def modadd_margin_slack(w: ModAddWeights, pre_activation_bound: Tensor | None = None, readout: Tensor | None = None) -> float:
    """S: certify an input only if its exact-arithmetic margin, computed in float64, exceeds S.

    Covers the float32 forward's rounding (`modadd_forward_error_bound`) and the float64
    evaluation error of a proof whose quantities are bounded by the logit bound L.
    Cost: that of `modadd_forward_error_bound`.
    """
    forward, logit_bound = modadd_forward_error_bound(w, pre_activation_bound, readout)
    return forward + FLOAT64_SLACK * (1 + logit_bound)


__all__ = ["modadd_margin_slack", "modadd_forward_error_bound"]

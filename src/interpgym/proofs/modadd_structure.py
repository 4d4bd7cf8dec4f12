"""The modular-addition model taken apart into the pieces the structured proof reasons about.

Everything here is exact algebra on the float64 weights, with every approximation's error
*computed*, never assumed:

* **Mean attention.** The '=' query is the same for every input, so head h's scores are
  s_a[h, a], s_b[h, b] and s_=[h]: its pattern over (a, b, '=') is a softmax of three
  numbers. Replacing each weight by its mean over the p^2 inputs makes the residual
  separable, r(a, b) = c0 + fa[a] + gb[b] + dev(a, b), and the deviation is bounded
  per neuron by eps_i = sum_h sum_pos max|weight - mean| * max|OV_pos W_in|_i (zero for
  uniform attention).
* **Neuron inputs in one frequency.** Each neuron i gets a key frequency k_i (proof
  search) and its input tables are written f_i(a) = mean + Re(F_i e^{i w a}) + residual,
  g_i(b) likewise, with w = 2 pi k_i / p; the residuals' largest absolute values are
  measured. With H_i = (F_i + G_i)/2, D_i = (F_i - G_i)/2 the pre-activation is
  Re(H_i (e^{i w a} + e^{i w b})) + (constant + residuals + asymmetry + attention
  deviation), and the bracket is at most eta_i in absolute value.
* **Neuron outputs in the same frequency.** M = W_out W_U, row i written
  mean + Re(S_i e^{i w c}) + R_i[c]; the residual's spread is measured.
* **Direct path.** (c0 + fa[a] + gb[b]) W_U: its worst spread, charged to the margin.

Cost O(H p d (d_head + d_mlp) + d d_mlp p + p^2 H): linear in the parameter count times p
(the attention deviation needs the p^2 patterns, O(H) each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.subjects.modadd import ModAddWeights


@dataclass(frozen=True)
class Decomposition:
    """The structured pieces and the computed bounds on everything outside them (float64)."""

    key: Int[Tensor, " d_mlp"]  # each neuron's key frequency, in [1, (p-1)//2]
    H: Float[Tensor, "d_mlp 2"]  # (re, im) of the symmetric input coefficient H_i
    S: Float[Tensor, "d_mlp 2"]  # (re, im) of the output coefficient S_i
    eta: Float[Tensor, " d_mlp"]  # |pre-activation - Re(H (e^{iwa} + e^{iwb}))| <= eta_i for every input
    out_residual_spread: Float[Tensor, " d_mlp"]  # max_c R_i[c] - min_c R_i[c]
    out_spread: Float[Tensor, " d_mlp"]  # max_c M[i, c] - min_c M[i, c]
    direct_charge: float  # the direct path can lower any margin by at most this
    parts: dict[str, Tensor]  # per-neuron pieces of eta, for diagnostics


def attention_patterns(w: ModAddWeights) -> Float[Tensor, "heads a b 3"]:
    """Each head's exact attention to (a, b, '=') for every input, from the separable scores
    s_a[a], s_b[b], s_= (the '=' query is the same for all inputs). Cost O(p d d_head H + p^2 H)."""
    E, P = w.W_E.double(), w.W_pos.double()
    heads, p = w.n_heads, w.p
    if w.uniform_attention:
        return torch.full((heads, p, p, 3), 1.0 / 3.0, dtype=E.dtype, device=E.device)
    query = torch.einsum("d,hde->he", E[p] + P[2], w.W_Q.double())
    root = math.sqrt(w.d_head)
    s_a = torch.einsum("he,ahe->ha", query, torch.einsum("ad,hde->ahe", E[:p] + P[0], w.W_K.double())) / root
    s_b = torch.einsum("he,ahe->ha", query, torch.einsum("ad,hde->ahe", E[:p] + P[1], w.W_K.double())) / root
    s_eq = torch.einsum("he,hd,hde->h", query, (E[p] + P[2]).expand(heads, -1), w.W_K.double()) / root
    scores = torch.stack([s_a[:, :, None].expand(-1, -1, p), s_b[:, None, :].expand(-1, p, -1),
                          s_eq[:, None, None].expand(-1, p, p)], dim=-1)  # [H, a, b, 3]
    return scores.softmax(dim=-1)


def _attention_stats(w: ModAddWeights) -> tuple[Float[Tensor, "heads 3"], Float[Tensor, "heads 3"]]:
    """(mean over all p^2 inputs, max |weight - mean|) of each head's attention to (a, b, '='). Cost O(p d d_head H + p^2 H)."""
    if w.uniform_attention:
        third = torch.full((w.n_heads, 3), 1.0 / 3.0, dtype=torch.float64, device=w.W_E.device)
        return third, torch.zeros_like(third)
    pattern = attention_patterns(w)
    mean = pattern.mean(dim=(1, 2))
    return mean, (pattern - mean[:, None, None, :]).abs().amax(dim=(1, 2))


def _key_waves(p: int, key: Int[Tensor, " n"], like: Tensor) -> tuple[Tensor, Tensor]:
    """(cos, sin) of 2 pi k_i x / p for x in [0, p), per column i: [p, n] each."""
    angle = 2 * math.pi * torch.arange(p, dtype=like.dtype, device=like.device)[:, None] * key[None, :].to(like.dtype) / p
    return angle.cos(), angle.sin()


def fourier_at(table: Float[Tensor, "p n"], key: Int[Tensor, " n"]) -> Float[Tensor, "n 2"]:
    """(re, im) of each column's Fourier coefficient at its key frequency k_i, normalised so that a column
    Re(coef e^{2 pi i k x / p}) has coefficient coef (for 0 < k < p / 2). Cost O(p n)."""
    p = table.shape[0]
    cos, sin = _key_waves(p, key, table)
    return torch.stack([(2.0 / p) * (table * cos).sum(dim=0), -(2.0 / p) * (table * sin).sum(dim=0)], dim=1)


def _fourier(table: Float[Tensor, "p n"], key: Int[Tensor, " n"]) -> tuple[Tensor, Tensor, Tensor]:
    """(mean, (re, im) coefficient, residual) of each column of `table` at its key frequency:
    table[x, i] = mean_i + Re(coef_i e^{2 pi i k_i x / p}) + residual[x, i] exactly. Cost O(p n)."""
    cos, sin = _key_waves(table.shape[0], key, table)
    mean = table.mean(dim=0)
    coef = fourier_at(table, key)
    residual = table - mean - (coef[:, 0] * cos - coef[:, 1] * sin)
    return mean, coef, residual


def find_key_frequencies(w: ModAddWeights) -> Int[Tensor, " d_mlp"]:
    """Proof search (not part of the verified cost): per neuron, the frequency in [1, (p-1)//2]
    carrying the most power of its mean-attention input f_i + g_i. Any choice is sound."""
    mean, _ = _attention_stats(w)
    f, g = _neuron_inputs(w, mean)[:2]
    spectrum = torch.fft.rfft(f + g, dim=0).abs()  # [p//2 + 1, d_mlp]
    top = max(1, (w.p - 1) // 2)
    return spectrum[1 : top + 1].argmax(dim=0) + 1


def ov_tables(w: ModAddWeights) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x_2, A, B, G): the '=' residual and each head's OV output for a at position 0, b at 1, '=' at 2."""
    E, P = w.W_E.double(), w.W_pos.double()
    p = w.p
    ov = torch.einsum("hde,hef->hdf", w.W_V.double(), w.W_O.double())  # [H, d, d]
    A = torch.einsum("ad,hdf->haf", E[:p] + P[0], ov)
    B = torch.einsum("ad,hdf->haf", E[:p] + P[1], ov)
    G = torch.einsum("d,hdf->hf", E[p] + P[2], ov)
    return E[p] + P[2], A, B, G


def folded_ov_tables(w: ModAddWeights) -> tuple[Float[Tensor, "p d"], Float[Tensor, "3 d"]]:
    """Uniform attention only: (tokens [p, d], offsets [3, d]) with the MLP input of every input
    r(a, b) = tokens[a] + tokens[b] + offsets.sum(0) (offsets: position 0's and 1's share, and the '='
    residual with its own share). The heads are folded into one OV matrix first and the token part is
    shared by both positions: cost O(H d d_head d + p d^2), against `ov_tables`' O(H p d^2)."""
    E, P = w.W_E.double(), w.W_pos.double()
    p = w.p
    ov = torch.einsum("hde,hef->df", w.W_V.double(), w.W_O.double()) / 3  # sum over heads, weight 1/3 each
    positions = P @ ov  # [3, d]
    equals = E[p] + P[2] + E[p] @ ov + positions[2]
    return E[:p] @ ov, torch.stack([positions[0], positions[1], equals])


def _neuron_inputs(w: ModAddWeights, mean: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(f [p, d_mlp], g [p, d_mlp], C [d_mlp], fa, gb, c0, (A, B, G)) under the mean attention pattern `mean` [H, 3]."""
    x2, A, B, G = ov_tables(w)
    fa = torch.einsum("h,haf->af", mean[:, 0], A)
    gb = torch.einsum("h,haf->af", mean[:, 1], B)
    c0 = x2 + torch.einsum("h,hf->f", mean[:, 2], G)
    W_in = w.W_in.double()
    return fa @ W_in, gb @ W_in, c0 @ W_in, fa, gb, c0, (A, B, G)


def _spread(x: Tensor, dim: int) -> Tensor:
    return x.amax(dim=dim) - x.amin(dim=dim)


def decompose(w: ModAddWeights, key: Int[Tensor, " d_mlp"]) -> Decomposition:
    """The decomposition of the module docstring for key frequencies `key` (any values in
    [1, (p-1)//2] are sound; the search only makes the bounds tight). Guarantees, for every
    input (a, b), neuron i and answer c (exact arithmetic on the float32 weights):

        |pre_i(a, b) - Re(H_i (e^{i w_i a} + e^{i w_i b}))| <= eta_i
        M[i, c] = mean_i + Re(S_i e^{i w_i c}) + R_i[c],  spread R_i = out_residual_spread_i
        direct-path margin contribution >= -direct_charge.

    Cost: see the module docstring.
    """
    mean, deviation = _attention_stats(w)
    f, g, C, fa, gb, c0, (A, B, G) = _neuron_inputs(w, mean)
    W_in, W_U = w.W_in.double(), w.W_U.double()
    if bool((deviation > 0).any()):
        eps = (torch.einsum("h,hm->m", deviation[:, 0], (A @ W_in).abs().amax(dim=1))
               + torch.einsum("h,hm->m", deviation[:, 1], (B @ W_in).abs().amax(dim=1))
               + torch.einsum("h,hm->m", deviation[:, 2], (G @ W_in).abs()))
        dev_logit = (torch.einsum("h,hc->c", deviation[:, 0], (A @ W_U).abs().amax(dim=1))
                     + torch.einsum("h,hc->c", deviation[:, 1], (B @ W_U).abs().amax(dim=1))
                     + torch.einsum("h,hc->c", deviation[:, 2], (G @ W_U).abs()))
        dev_charge = 2 * float(dev_logit.max())
    else:
        eps, dev_charge = torch.zeros_like(C), 0.0
    f_mean, F, f_res = _fourier(f, key)
    g_mean, Gc, g_res = _fourier(g, key)
    constant = (C + f_mean + g_mean).abs()
    f_err, g_err = f_res.abs().amax(dim=0), g_res.abs().amax(dim=0)
    asymmetry = 2 * ((F - Gc) / 2).norm(dim=1)  # |Re(D (e^{iwa} - e^{iwb}))| <= 2 |D|
    eta = constant + f_err + g_err + asymmetry + eps
    M = w.W_out.double() @ W_U  # [d_mlp, p]
    _, S, out_res = _fourier(M.T, key)
    direct = _spread(fa @ W_U, 1).max() + _spread(gb @ W_U, 1).max() + _spread(c0 @ W_U, 0)
    return Decomposition(
        key=key, H=(F + Gc) / 2, S=S, eta=eta, out_residual_spread=_spread(out_res, 0), out_spread=_spread(M, 1),
        direct_charge=float(direct) + dev_charge,
        parts={"constant": constant, "input_residual": f_err + g_err, "asymmetry": asymmetry, "attention": eps},
    )


__all__ = ["Decomposition", "decompose", "find_key_frequencies", "fourier_at", "attention_patterns", "ov_tables", "folded_ov_tables"]

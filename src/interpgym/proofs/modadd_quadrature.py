"""The structured ("numerical integration") proof of the modular-addition model's accuracy.

After `modadd_structure.decompose`, neuron i (key frequency k, w = 2 pi k / p, H_i = h_i e^{i phi_i})
has the structured pre-activation h_i (cos(w a + phi_i) + cos(w b + phi_i)), and

    cos(w a + phi) + cos(w b + phi) = 2 cos(w n / 2 + phi) cos(w m / 2),   n = a + b, m = a - b,

so its structured activation is 2 h_i |cos(w m / 2)| ReLU(cos(theta_j + phi_i)) with
theta_j = pi j / p, j = (k n + p [cos(w m / 2) < 0]) mod 2p (Yip et al. 2024: the MLP
factors into a function of a - b times a function of a + b). Summing the structured
logits Re(S_i e^{i w c}) of the frequency-k neurons gives, exactly,

    structured margin_k(a, b, c) = 2 |cos(w m / 2)| Re(Q_k[j] (1 - e^{i w d})),   d = c - (a + b) mod p,
    Q_k[j] = e^{2 i theta_j} sum_{i: k_i = k} h_i S_i ReLU(cos(theta_j + phi_i)).

Q_k[j] is the network's *quadrature*: a sum over neurons (phases phi_i, weights h_i S_i)
approximating the integral of e^{2 i x} ReLU(cos x), a positive real number, at every
shift theta_j. The proof evaluates it exactly at the 2p shifts that occur (cost O(p d_mlp))
instead of trusting the integral, so the quadrature error costs nothing but its true size.
Then, with lo_k[d] = min_j Re(Q_k[j] (1 - e^{i w d})) (all shifts, O(p^2) per frequency),

    margin(a, b, c) >= sum_k 2 |cos(w_k m / 2)| lo_k[d] - charge,

    charge = sum_i (2 h_i spread(R_i) + eta_i spread(M_i)) + direct_charge + S,

where the first two terms bound the output Fourier residual and the pre-activation error
(ReLU is 1-Lipschitz), `direct_charge` the direct path and S the float32 slack
(`modadd_roundoff`). An input (a, b) is certified iff the bound is > 0 for every d != 0;
the bound depends on (a, b) only through m = a - b, so the certified set is a union of
diagonals a - b = m. Sound for any weights and any key frequencies.

Verification cost O(H p d (d_head + d_mlp) + d d_mlp p + p^2 H + p^2 K) for K distinct key
frequencies: linear in the parameter count times p, against brute force's p^2 forwards.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.core.threads import cpu_threads
from interpgym.proofs.modadd_roundoff import modadd_margin_slack
from interpgym.proofs.modadd_structure import Decomposition, decompose, find_key_frequencies
from interpgym.proofs.result import ProofResult
from interpgym.subjects.modadd import ModAddWeights

NAME = "quadrature"
COMPLEXITY = "O(H p d (d_head + d_mlp) + d d_mlp p + p^2 (H + K))"


@dataclass(frozen=True)
class QuadratureCertificate:
    """What the proof establishes, per difference m = a - b (index m + p - 1)."""

    margin_lower: Float[Tensor, " differences"]  # min over wrong answers of the margin bound, charge subtracted
    charge: float
    frequencies: Int[Tensor, " k"]
    quadrature: Float[Tensor, "k two_p 2"]  # (re, im) of Q_k[j]


def quadrature_sums(decomposition: Decomposition, frequencies: Int[Tensor, " k"], p: int) -> Float[Tensor, "k two_p 2"]:
    """(re, im) of Q_k[j] for every key frequency k in `frequencies` and shift j in [0, 2p). Cost O(p d_mlp).

    Neurons are grouped by frequency with one cumulative sum (so the cost stays O(p d_mlp), not O(p d_mlp K))."""
    H, S, key = decomposition.H, decomposition.S, decomposition.key
    order = torch.argsort(key, stable=True)
    h = H.norm(dim=1)[order]
    phi = torch.atan2(H[:, 1], H[:, 0])[order]
    theta = math.pi * torch.arange(2 * p, dtype=H.dtype, device=H.device) / p  # [2p]
    lobes = torch.relu(torch.cos(theta[:, None] + phi[None, :]))  # [2p, d_mlp]
    weights = h[:, None] * S[order]  # [d_mlp, 2]
    cumulative = torch.cumsum(lobes[:, :, None] * weights[None, :, :], dim=1)  # [2p, d_mlp, 2]
    ends = torch.searchsorted(key[order].contiguous(), frequencies, right=True) - 1
    starts = torch.searchsorted(key[order].contiguous(), frequencies, right=False) - 1
    zero = torch.zeros_like(cumulative[:, :1])
    padded = torch.cat([zero, cumulative], dim=1)
    sums = (padded[:, ends + 1] - padded[:, starts + 1]).permute(1, 0, 2)  # [k, 2p, 2]
    rotation = torch.stack([torch.cos(2 * theta), torch.sin(2 * theta)], dim=1)  # e^{2 i theta_j}
    return torch.stack([sums[..., 0] * rotation[:, 0] - sums[..., 1] * rotation[:, 1],
                        sums[..., 0] * rotation[:, 1] + sums[..., 1] * rotation[:, 0]], dim=-1)


def certify(w: ModAddWeights, key: Int[Tensor, " d_mlp"]) -> QuadratureCertificate:
    """The verification: decomposition, quadrature sums, margin bound per difference m. See the module docstring."""
    p = w.p
    decomposition = decompose(w, key)
    frequencies = torch.unique(key)
    quadrature = quadrature_sums(decomposition, frequencies, p)  # [K, 2p, 2]
    omega = 2 * math.pi * frequencies.to(quadrature.dtype) / p  # [K]
    d = torch.arange(1, p, dtype=quadrature.dtype, device=quadrature.device)
    one_minus = 1 - torch.cos(omega[:, None] * d[None, :])  # Re(1 - e^{iwd}) [K, p-1]
    minus_sin = torch.sin(omega[:, None] * d[None, :])  # -Im(1 - e^{iwd})
    # Re((x + i y)(1 - cos - i sin)) = x (1 - cos) + y sin, minimised over every shift j
    lowest = (quadrature[:, :, None, 0] * one_minus[:, None, :] + quadrature[:, :, None, 1] * minus_sin[:, None, :]).amin(dim=1)
    m = torch.arange(-(p - 1), p, dtype=quadrature.dtype, device=quadrature.device)
    envelope = 2 * torch.cos(omega[:, None] * m[None, :] / 2).abs()  # [K, 2p-1]
    margins = torch.einsum("km,kd->md", envelope, lowest)  # [2p-1, p-1]
    charge = (float((2 * decomposition.H.norm(dim=1) * decomposition.out_residual_spread).sum()
                    + (decomposition.eta * decomposition.out_spread).sum())
              + decomposition.direct_charge + modadd_margin_slack(w))
    worst = margins.amin(dim=1) if p > 1 else torch.zeros(1, dtype=quadrature.dtype)
    return QuadratureCertificate(margin_lower=worst - charge, charge=charge, frequencies=frequencies, quadrature=quadrature)


def certified_mask(certificate: QuadratureCertificate, p: int) -> Bool[Tensor, " pairs"]:
    """Per input (index a * p + b): certified iff the bound for its difference a - b is positive."""
    values = torch.arange(p, device=certificate.margin_lower.device)
    m = (values[:, None] - values[None, :]).reshape(-1)
    return certificate.margin_lower[m + p - 1] > 0


def nothing_certified(strategy: str, w: ModAddWeights, complexity: str) -> ProofResult:
    """The empty certificate of a frequency-based strategy at p < 3 (no frequency in [1, (p-1)/2] to work with)."""
    total = w.p * w.p
    return ProofResult(strategy=strategy, certified=0, total=total, flops=0, wall_s=0.0, unexplained_dim=float(total),
                       complexity=complexity, extra={"certified_mask": torch.zeros(total, dtype=torch.bool, device=w.W_E.device)})


def quadrature_proof(w: ModAddWeights, key: Int[Tensor, " d_mlp"] | None = None) -> ProofResult:
    """Run the proof on `w` (key frequencies found by search unless given). Only `certify` is
    costed: the search and counting are not part of the verification.

    Unexplained dimensionality: the scalars the bound takes as measured rather than explained:
    per neuron eta_i and the output residual spread (2 d_mlp), the 2p complex quadrature
    values per key frequency (4 p K) and the direct-path charge (1).
    """
    w64 = w.to(dtype=torch.float64)
    if w.p < 3:  # no non-zero frequency below the Nyquist one: nothing to certify
        return nothing_certified(NAME, w, COMPLEXITY)
    with cpu_threads(1, w.W_E.device):
        if key is None:
            key = find_key_frequencies(w64)
        started = time.perf_counter()
        with FlopCounter() as counter:
            certificate = certify(w64, key)
        wall = time.perf_counter() - started
    mask = certified_mask(certificate, w.p)
    k = int(certificate.frequencies.numel())
    return ProofResult(
        strategy=NAME, certified=int(mask.sum()), total=w.p * w.p, flops=counter.total, wall_s=wall,
        unexplained_dim=float(2 * w.d_mlp + 4 * w.p * k + 1), complexity=COMPLEXITY,
        extra={"certified_mask": mask, "charge": certificate.charge, "frequencies": certificate.frequencies.tolist(),
               "certificate": certificate},
    )


__all__ = ["quadrature_proof", "nothing_certified", "certify", "certified_mask", "quadrature_sums", "QuadratureCertificate", "NAME",
           "COMPLEXITY"]

"""The numerical-integration proof with an exact per-input correction: `integration/rank=<r>`.

`quadrature` (`modadd_quadrature`) charges every neuron's distance from its one-frequency
form at its worst case, and on trained models those charges (hundreds of logits) swamp the
margins. `readout` evaluates every neuron exactly but pays a dense readout of the whole
activation. This proof splits each activation into the part the quadrature explains and
a small correction, and pays each part at its own price:

    act_i(a, b) = ReLU(s_i(a, b)) + delta_i(a, b),   s_i(a, b) = h_i (cos(w a + phi_i) + cos(w b + phi_i)),

with w = 2 pi k_i / p for neuron i's key frequency k_i, and H_i = h_i e^{i phi_i} the mean of
the key-frequency Fourier coefficients of its input's a- and b-tables (proof search picks
k_i and H_i; any values are sound, they only make delta small).

* **The quadrature part, through the whole readout, exactly.** By
  cos(w a + phi) + cos(w b + phi) = 2 cos(w n / 2 + phi) cos(w m / 2) (n = a + b, m = a - b),
  ReLU(s_i) = 2 h_i |cos(w m / 2)| ReLU(cos(theta_j + phi_i)) with theta_j = pi j / p and
  j = (k n + p [cos(w m / 2) < 0]) mod 2p, so its logits are
      sum_k 2 |cos(w_k m / 2)| T_k[j_k(a, b), c],   T_k[j, c] = sum_{i: k_i = k} h_i ReLU(cos(theta_j + phi_i)) M[i, c],
  M = W_out W_U: the neurons' quadrature of ReLU(cos) evaluated at the 2p shifts that occur
  and read out through *every* answer (O(p^2 d_mlp) for the tables, O(n K p) to gather),
  with no residual of M charged at all.
* **The correction, per input.** delta = ReLU(pre) - ReLU(s) is computed exactly from the
  separable pre-activation tables (it holds the constant term, the other frequencies, the
  a/b asymmetry and, with learned attention, the attention's input dependence), so its
  cancellations across neurons are kept. It is read out through a rank-r basis of M
  (proof search: the SVD of M with row means removed, `readout_basis`), M = mean_i + U_r V_r + R,
  and the rest is charged: sum_i delta_i (R[i, c*] - R[i, c]) >= -sum_i |delta_i| spread(R_i).
  |delta| is small (it is what the quadrature leaves), so this charge is a product of two
  small things, where `readout` charges act . spread(R).
* **Margin.** The direct path is exact (p x p tables). An input is certified iff
      min_{c != c*} (quadrature + delta U_r V_r + direct)[c*] - (...)[c] - |delta| . spread(R) > S,
  S the float32 slack (`modadd_roundoff`) with the exact largest |pre-activation|.

The per-input work runs over the n inputs of `modadd_inputs.evaluated_inputs`: all p^2, or the
p (p + 1) / 2 with a <= b under uniform attention, whose exact margins are symmetric in (a, b).

Sound for any weights, key frequencies and basis (exact algebra; every approximation's
effect is computed). Verification cost O(H p d (d_head + d_mlp) + d d_mlp p + p^2 d_mlp + n (d_mlp + p) (H + r)
+ n p K) (H: heads, folded to 1 for uniform attention; K: distinct key frequencies).
Unexplained dimensionality n + d_mlp: it looks at every input, as `readout` does.
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
from interpgym.proofs.modadd_inputs import evaluated_inputs, inputs_and_direct
from interpgym.proofs.modadd_quadrature import nothing_certified
from interpgym.proofs.modadd_readout import answer_margins, readout_basis, residual_spread
from interpgym.proofs.modadd_roundoff import modadd_margin_slack
from interpgym.proofs.modadd_structure import find_key_frequencies, fourier_at
from interpgym.proofs.result import ProofResult
from interpgym.subjects.modadd import ModAddWeights, all_inputs

RANKS = (8, 12)
COMPLEXITY = "O(H p d (d_head + d_mlp) + d d_mlp p + p^2 d_mlp + n (d_mlp + p) (H + r) + n p K), n <= p^2 inputs"


def strategy_name(rank: int) -> str:
    return f"integration/rank={rank}"


@dataclass(frozen=True)
class IntegrationCertificate:
    """What the proof computes, per input (index a * p + b)."""

    margin_lower: Float[Tensor, " pairs"]  # certified lower bound on the exact margin, slack subtracted
    charge: Float[Tensor, " pairs"]  # |delta| . spread(R): the only per-input term not evaluated exactly
    delta: Float[Tensor, "pairs d_mlp"]  # the correction ReLU(pre) - ReLU(s) (kept for diagnostics and tests)
    activation: Float[Tensor, "pairs d_mlp"]  # ReLU(pre)


def quadrature_tables(h: Float[Tensor, " d_mlp"], phi: Float[Tensor, " d_mlp"], key: Int[Tensor, " d_mlp"],
                      frequencies: Int[Tensor, " k"], M: Float[Tensor, "d_mlp p"]) -> Float[Tensor, "k two_p p"]:
    """T_k[j, c] = sum over neurons i of frequency k of h_i ReLU(cos(pi j / p + phi_i)) M[i, c], for j in [0, 2p).
    Cost O(p^2 d_mlp): each neuron enters one frequency's product."""
    p = M.shape[1]
    theta = math.pi * torch.arange(2 * p, dtype=M.dtype, device=M.device) / p
    lobes = torch.relu(torch.cos(theta[:, None] + phi[None, :]))  # [2p, d_mlp]
    weighted = h[:, None] * M
    return torch.stack([lobes[:, key == k] @ weighted[key == k] for k in frequencies.tolist()])


def quadrature_logits(tables: Float[Tensor, "k two_p p"], frequencies: Int[Tensor, " k"],
                      pairs: Int[Tensor, "n 2"]) -> Float[Tensor, "n p"]:
    """sum_i ReLU(s_i(a, b)) M[i, c] for the inputs `pairs` and every answer c, from the tables: the factorisation
    ReLU(s_i) = 2 h_i |cos(w m / 2)| ReLU(cos(theta_j + phi_i)) gathered at each input's shift j. Cost O(n p K)."""
    p = tables.shape[2]
    k = frequencies.to(tables.device)[:, None]
    n = (pairs[:, 0] + pairs[:, 1])[None, :]  # a + b (not reduced: theta uses k n mod 2p)
    m = (pairs[:, 0] - pairs[:, 1]).to(tables.dtype)[None, :]
    half = torch.cos(math.pi * k.to(tables.dtype) * m / p)  # cos(w m / 2) [K, n]
    j = (k * n + p * (half < 0).long()) % (2 * p)  # [K, n]
    gathered = torch.stack([tables[i][j[i]] for i in range(k.shape[0])])  # [K, n, p]
    return torch.einsum("kn,knc->nc", 2 * half.abs(), gathered)


def fit_waves(w: ModAddWeights, key: Int[Tensor, " d_mlp"]) -> Float[Tensor, "d_mlp 2"]:
    """Proof search (not costed): (re, im) of H_i, the mean of the key-frequency coefficients of neuron i's
    pre-activation averaged over b (a function of a) and over a (a function of b). Any values are sound."""
    pre = inputs_and_direct(w, all_inputs(w.p, w.W_E.device))[0].reshape(w.p, w.p, -1)
    return (fourier_at(pre.mean(dim=1), key) + fourier_at(pre.mean(dim=0), key)) / 2


def certify(w: ModAddWeights, key: Int[Tensor, " d_mlp"], H: Float[Tensor, "d_mlp 2"], left: Float[Tensor, "d_mlp r"],
            right: Float[Tensor, "r p"]) -> IntegrationCertificate:
    """The verification (float64 weights `w`) for key frequencies `key`, wave coefficients `H` and readout factors
    `left` [d_mlp, r], `right` [r, p]: see the module docstring. Per evaluated input (`modadd_inputs`); the
    margin bounds are then spread to all p^2 inputs."""
    p = w.p
    pairs, representative = evaluated_inputs(w)
    pre, direct = inputs_and_direct(w, pairs)  # [n, d_mlp], [n, p]
    h, phi = H.norm(dim=1), torch.atan2(H[:, 1], H[:, 0])
    omega = 2 * math.pi * key.to(pre.dtype) / p
    x = torch.arange(p, dtype=pre.dtype, device=pre.device)
    wave = h * torch.cos(omega * x[:, None] + phi)  # [p, d_mlp]
    activation = torch.relu(pre)
    delta = activation - torch.relu(wave[pairs[:, 0]] + wave[pairs[:, 1]])  # [n, d_mlp]
    M = w.W_out.double() @ w.W_U.double()
    frequencies = torch.unique(key)
    charge = delta.abs() @ residual_spread(M, left, right)
    out = quadrature_logits(quadrature_tables(h, phi, key, frequencies, M), frequencies, pairs) + direct + (delta @ left) @ right
    margin = answer_margins(out, pairs, p)
    slack = modadd_margin_slack(w, pre.abs().amax(dim=0) * (1 + 1e-9), M)  # pad: float64 evaluation
    return IntegrationCertificate(margin_lower=(margin - charge - slack)[representative], charge=charge[representative],
                                  delta=delta[representative], activation=activation[representative])


def integration_proof(w: ModAddWeights, rank: int, key: Int[Tensor, " d_mlp"] | None = None) -> ProofResult:
    """Run `integration/rank=<rank>` on `w` (key frequencies unless given, wave coefficients and readout basis found
    by search); only `certify` is costed."""
    w64 = w.to(dtype=torch.float64)
    name = strategy_name(rank)
    if w.p < 3:  # no non-zero frequency below the Nyquist one: nothing to integrate
        return nothing_certified(name, w, COMPLEXITY)
    with cpu_threads(1, w.W_E.device):
        if key is None:
            key = find_key_frequencies(w64)
        H = fit_waves(w64, key)
        left, right = readout_basis(w64, rank)
        started = time.perf_counter()
        with FlopCounter() as counter:
            certificate = certify(w64, key, H, left, right)
        wall = time.perf_counter() - started
    mask: Bool[Tensor, " pairs"] = certificate.margin_lower > 0
    return ProofResult(strategy=name, certified=int(mask.sum()), total=w.p * w.p, flops=counter.total, wall_s=wall,
                       unexplained_dim=float(evaluated_inputs(w)[0].shape[0] + w.d_mlp), complexity=COMPLEXITY,
                       extra={"certified_mask": mask, "certificate": certificate, "rank": left.shape[1]})


STRATEGIES = {strategy_name(r): (lambda w, r=r: integration_proof(w, r)) for r in RANKS}

__all__ = ["integration_proof", "certify", "fit_waves", "quadrature_tables", "quadrature_logits", "IntegrationCertificate", "strategy_name",
           "STRATEGIES", "RANKS", "COMPLEXITY"]

"""A structured proof that keeps every neuron exact and compresses the MLP's readout: `readout/rank=<r>`.

The quadrature proof (`modadd_quadrature`) charges each neuron's deviation from one clean
frequency at its worst case, and on trained models those charges swamp the margin. This
proof makes the opposite trade: the neurons are evaluated exactly on every input, and only
the readout M = W_out W_U (d_mlp x p) is compressed, to rank r.

* Neurons, exactly: the '=' query is fixed, so attention is a softmax of s_a[a], s_b[b], s_=
  and the MLP input is r(a, b) = x_2 + sum_h (alpha_h OV_a[a] + beta_h OV_b[b] + gamma_h OV_=),
  giving the pre-activations of all p^2 inputs from p x d_mlp tables in O(p^2 H d_mlp)
  (`modadd_inputs`; with uniform attention exact margins are symmetric in (a, b) and only the
  p (p + 1) / 2 inputs with a <= b are evaluated).
* Readout, compressed: proof search takes the rank-r SVD of M with its row means removed,
  M = mean_i + U_r V_r + R. For every input and answers c*, c, the residual's contribution
  sum_i act_i (R[i, c*] - R[i, c]) is at least -sum_i act_i spread(R_i) (act >= 0). The mean
  cancels in every margin. The direct path x W_U is evaluated exactly from p x p tables.
* Margin: an input is certified iff
      (act U_r V_r + direct)[c*] - max_{c != c*} (act U_r V_r + direct)[c] - act . spread(R) > S,
  with S the float32 slack of `modadd_roundoff`, tightened by the exact largest |pre-activation|.

Sound for any weights and any rank (the SVD is search; the residual is computed, never assumed).
Verification cost O(H p d (d_head + d_mlp) + d d_mlp p + n (d_mlp + p) (H + r)), against
brute force's O(p^2 d d_mlp): cheaper by about d / (H + r). It still looks at every input, so its
unexplained dimensionality is n + d_mlp (one margin per evaluated input, n = p^2, or p (p + 1) / 2
with uniform attention; one residual spread per neuron).
"""

from __future__ import annotations

import time

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.core.threads import cpu_threads
from interpgym.proofs.modadd_inputs import evaluated_inputs, inputs_and_direct
from interpgym.proofs.modadd_roundoff import modadd_margin_slack
from interpgym.proofs.result import ProofResult
from interpgym.subjects.modadd import ModAddWeights, labels

RANKS = (4, 8, 16, 32)
COMPLEXITY = "O(H p d (d_head + d_mlp) + d d_mlp p + n (d_mlp + p) (H + r)), n <= p^2 inputs"


def strategy_name(rank: int) -> str:
    return f"readout/rank={rank}"


def readout_basis(w: ModAddWeights, rank: int) -> tuple[Float[Tensor, "d_mlp r"], Float[Tensor, "r p"]]:
    """Proof search (not costed): the rank-r SVD factors (U_r S_r, V_r) of W_out W_U with row means removed."""
    M = w.W_out.double() @ w.W_U.double()
    U, S, Vh = torch.linalg.svd(M - M.mean(dim=1, keepdim=True), full_matrices=False)
    r = min(rank, S.shape[0])
    return U[:, :r] * S[:r], Vh[:r]


def residual_spread(M: Float[Tensor, "d_mlp p"], left: Float[Tensor, "d_mlp r"], right: Float[Tensor, "r p"]) -> Float[Tensor, " d_mlp"]:
    """spread(R_i) = max_c R[i, c] - min_c R[i, c] of the readout's residual R = M - row means - left @ right: for
    x >= 0, sum_i x_i (R[i, c*] - R[i, c]) >= -x . spread(R) for every pair of answers. Cost O(d_mlp p r)."""
    residual = M - M.mean(dim=1, keepdim=True) - left @ right
    return residual.amax(dim=1) - residual.amin(dim=1)


def answer_margins(out: Float[Tensor, "n p"], pairs: Int[Tensor, "n 2"], p: int) -> Float[Tensor, " n"]:
    """Per input: the logit of the right answer (a + b) mod p minus the largest other logit. Cost O(n p)."""
    target = labels(pairs, p)[:, None]
    return out.gather(1, target)[:, 0] - out.scatter(1, target, float("-inf")).amax(dim=1)


def certify(w: ModAddWeights, left: Tensor, right: Tensor) -> tuple[Bool[Tensor, " pairs"], Float[Tensor, " pairs"]]:
    """The verification for readout factors `left` [d_mlp, r], `right` [r, p]: (certified mask, margin lower bounds),
    index a * p + b. `w` in float64. See the module docstring."""
    pairs, representative = evaluated_inputs(w)
    pre, direct = inputs_and_direct(w, pairs)
    act = torch.relu(pre)
    M = w.W_out.double() @ w.W_U.double()
    charge = act @ residual_spread(M, left, right)
    out = (act @ left) @ right + direct
    margin = answer_margins(out, pairs, w.p)
    lower = (margin - charge - modadd_margin_slack(w, pre.abs().amax(dim=0) * (1 + 1e-9), M))[representative]  # pad: float64
    return lower > 0, lower


def readout_proof(w: ModAddWeights, rank: int) -> ProofResult:
    """Run `readout/rank=<rank>` on `w`; only `certify` is costed (the SVD is search)."""
    w64 = w.to(dtype=torch.float64)
    with cpu_threads(1, w.W_E.device):
        left, right = readout_basis(w64, rank)
        started = time.perf_counter()
        with FlopCounter() as counter:
            mask, lower = certify(w64, left, right)
        wall = time.perf_counter() - started
    return ProofResult(strategy=strategy_name(rank), certified=int(mask.sum()), total=w.p * w.p, flops=counter.total, wall_s=wall,
                       unexplained_dim=float(evaluated_inputs(w)[0].shape[0] + w.d_mlp), complexity=COMPLEXITY,
                       extra={"certified_mask": mask, "margin_lower": lower, "rank": left.shape[1]})


STRATEGIES = {strategy_name(r): (lambda w, r=r: readout_proof(w, r)) for r in RANKS}

__all__ = ["readout_proof", "certify", "readout_basis", "residual_spread", "answer_margins", "strategy_name", "STRATEGIES", "RANKS",
           "COMPLEXITY"]

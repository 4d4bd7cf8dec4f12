"""The inputs a per-input modular-addition proof must evaluate, and their exact MLP inputs and direct-path logits.

Both `readout` and `integration` evaluate the pre-activations of every neuron on every input
they look at. The '=' query is the same for every input, so each head's pattern over (a, b, '=')
is a softmax of s_a[a], s_b[b], s_=, and the MLP input is

    r(a, b) = x_2 + sum_h (alpha_h(a, b) OV_h x_a + beta_h(a, b) OV_h x_b + gamma_h(a, b) OV_h x_=):

p x d_mlp and p x p tables give it, through W_in and W_U, for any set of inputs.

With uniform attention (alpha = beta = gamma = 1/3) it is symmetric: r(a, b) = c + T[a] + T[b]
with T = W_E[:p] OV / 3 (the heads folded into one OV), so in exact arithmetic the logits of
(a, b) and (b, a) are equal, and so are their labels (a + b) mod p and their margins. A proof
of exact margins then needs only the p (p + 1) / 2 inputs with a <= b; the float32 model is
not symmetric, but the float32 slack (`modadd_roundoff`) bounds every input's rounding, the
mirrored one's included.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.proofs.modadd_structure import attention_patterns, folded_ov_tables, ov_tables
from interpgym.subjects.modadd import ModAddWeights, all_inputs


def evaluated_inputs(w: ModAddWeights) -> tuple[Int[Tensor, "n 2"], Int[Tensor, " pairs"]]:
    """(the inputs whose exact margins a proof must compute, and for each of the p^2 inputs (index a * p + b) the
    row of the evaluated input with the same exact margin). Uniform attention: the a <= b half (see the module
    docstring); learned attention: every input. Data movement only (no FLOPs)."""
    p, device = w.p, w.W_E.device
    if not w.uniform_attention:
        return all_inputs(p, device), torch.arange(p * p, device=device)
    upper = torch.triu_indices(p, p, device=device)  # a <= b, row-major
    row = torch.full((p, p), -1, dtype=torch.long, device=device)
    row[upper[0], upper[1]] = torch.arange(upper.shape[1], device=device)
    values = torch.arange(p, device=device)
    low, high = torch.minimum(values[:, None], values[None, :]), torch.maximum(values[:, None], values[None, :])
    return upper.T.contiguous(), row[low, high].reshape(-1)


def inputs_and_direct(w: ModAddWeights, pairs: Int[Tensor, "n 2"]) -> tuple[Float[Tensor, "n d_mlp"], Float[Tensor, "n p"]]:
    """Exact pre-activations and direct-path logits (float64 weights) of the inputs `pairs`, from p x d_mlp and
    p x p tables: O(H p d (d_head + d_mlp) + n H (d_mlp + p)), heads folded to one for uniform attention."""
    W_in, W_U = w.W_in.double(), w.W_U.double()
    a, b = pairs[:, 0], pairs[:, 1]
    if w.uniform_attention:  # one pattern for all inputs: fold the heads, share the token table of a and b

        def folded(W: Tensor) -> Tensor:
            token = tokens @ W
            return (offsets @ W).sum(dim=0) + token[a] + token[b]

        tokens, offsets = folded_ov_tables(w)
        return folded(W_in), folded(W_U)
    x2, A, B, G = ov_tables(w)
    pattern = attention_patterns(w)[:, a, b]  # [H, n, 3]

    def through(W: Tensor) -> Tensor:
        return (x2 @ W + torch.einsum("hn,hnk->nk", pattern[..., 0], (A @ W)[:, a])
                + torch.einsum("hn,hnk->nk", pattern[..., 1], (B @ W)[:, b])
                + torch.einsum("hn,hk->nk", pattern[..., 2], G @ W))

    return through(W_in), through(W_U)


__all__ = ["evaluated_inputs", "inputs_and_direct"]

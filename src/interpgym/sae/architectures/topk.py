"""`topk`: keep the k largest pre-activations per input (then ReLU), plus the AuxK loss (Gao et al. 2024).

AuxK: the latents that have not fired recently ("dead") reconstruct the residual
x - x_hat of the live ones with their own top-k_aux (k_aux = d_in/2), without the
decoder bias; the loss is weighted by `aux_coeff` (1/32) and by
min(1, n_dead / k_aux). Unit-norm decoder. Saved as SAELens `topk`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpgym.sae.architectures.base import SparseAutoencoder, StepContext
from interpgym.sae.architectures.registry import register


def topk_relu(pre: Tensor, k: int) -> Tensor:
    """Zero all but the k largest entries of each row, then ReLU (SAELens' `TopK`)."""
    values, indices = torch.topk(pre, k=k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, values.relu())


def aux_k_loss(sae: SparseAutoencoder, x: Tensor, x_hat: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
    """The AuxK loss (see module docstring); {} when nothing is dead."""
    if ctx.dead_mask is None:
        return {}
    n_dead = int(ctx.dead_mask.sum())
    if n_dead == 0 or sae.cfg.aux_coeff == 0:
        return {}
    k_aux = max(1, min(sae.d_in // 2, n_dead))
    scale = min(1.0, n_dead / max(1, sae.d_in // 2))
    dead_pre = torch.where(ctx.dead_mask, pre, torch.finfo(pre.dtype).min)
    aux_acts = topk_relu(dead_pre, k_aux)
    residual = (x - x_hat).detach()
    aux_recon = aux_acts @ sae.W_dec
    loss = (aux_recon - residual).pow(2).sum(-1).mean()
    return {"aux_k": sae.cfg.aux_coeff * scale * loss}


@register
class TopKSAE(SparseAutoencoder):
    arch = "topk"
    saelens_architecture = "topk"
    uses_k = True
    default_k = 32

    def activation(self, pre: Tensor) -> Tensor:
        return topk_relu(pre, self.k)

    def encode(self, x: Tensor) -> Tensor:
        return self.activation(self.pre_activations(x))

    def auxiliary_loss(self, x: Tensor, x_hat: Tensor, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        return aux_k_loss(self, x, x_hat, pre, ctx)

    def saelens_cfg_extra(self) -> dict[str, object]:
        return {"k": self.k, "rescale_acts_by_decoder_norm": False}

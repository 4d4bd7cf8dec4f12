"""`topk`: keep the k largest pre-activations per input (then ReLU), plus the AuxK loss (Gao et al. 2024).

AuxK: the latents that have not fired recently ("dead") reconstruct the residual
x - x_hat of the live ones with their own top-k_aux (k_aux = d_in/2), without the
decoder bias; the loss is weighted by `aux_coeff` (1/32) and by
min(1, n_dead / k_aux). Unit-norm decoder. Training decodes sparsely (`sparse_ops`). Saved as SAELens `topk`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpgym.sae.architectures.base import SparseAutoencoder, StepContext, TrainOutput, squared_error
from interpgym.sae.architectures.registry import register
from interpgym.sae.architectures.sparse_ops import row_topk_indices, sparse_decode


def topk_relu(pre: Tensor, k: int) -> Tensor:
    """Zero all but the k largest entries of each row, then ReLU (SAELens' `TopK`)."""
    values, indices = torch.topk(pre, k=k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, values.relu())


def aux_k_loss(sae: SparseAutoencoder, x: Tensor, x_hat: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
    """The AuxK loss (see module docstring) from the dense pre-activations `pre`; {} when nothing is dead."""
    if ctx.dead_mask is None or sae.cfg.aux_coeff == 0:
        return {}
    n_dead = int(ctx.dead_mask.sum())
    if n_dead == 0:
        return {}
    k_aux = max(1, min(sae.d_in // 2, n_dead))
    scale = min(1.0, n_dead / max(1, sae.d_in // 2))
    with torch.no_grad():
        indices = torch.where(ctx.dead_mask, pre.detach(), torch.finfo(pre.dtype).min).topk(k_aux, dim=-1, sorted=False).indices
    values = pre.gather(1, indices).relu()
    residual = (x - x_hat).detach()
    loss = (sparse_decode(values, indices, sae.W_dec) - residual).pow(2).sum(-1).mean()
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

    def training_loss(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        pre = self.pre_activations(x)
        indices = row_topk_indices(pre.detach(), self.k)
        values = pre.gather(1, indices).relu()
        x_hat = sparse_decode(values, indices, self.W_dec) + self.b_dec
        parts = {"mse": squared_error(x_hat, x)} | aux_k_loss(self, x, x_hat, pre, ctx)
        with torch.no_grad():
            active = values > 0
            fired = torch.zeros(self.d_sae, dtype=torch.bool, device=x.device).index_fill_(0, indices[active], True)
            l0 = active.sum(1).float().mean()
        return TrainOutput(loss=sum(parts.values()), x_hat=x_hat, fired=fired, l0=l0, parts=parts)

    def saelens_cfg_extra(self) -> dict[str, object]:
        return {"k": self.k, "rescale_acts_by_decoder_norm": False}

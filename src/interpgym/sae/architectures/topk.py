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
from interpgym.sae.architectures.functional import aux_k_loss, topk_relu
from interpgym.sae.architectures.registry import register
from interpgym.sae.architectures.sparse_ops import Coordinates, gather_pre, row_topk_indices, sparse_decode


@register
class TopKSAE(SparseAutoencoder):
    arch = "topk"
    saelens_architecture = "topk"
    uses_k = True
    default_k = 32

    def activation(self, pre: Tensor) -> Tensor:
        return topk_relu(pre, self.k)

    def training_loss(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        centered = x - self.b_dec
        with torch.no_grad():
            pre = centered @ self.W_enc + self.b_enc
        coords = Coordinates.from_row_topk(row_topk_indices(pre, self.k), self.d_sae)
        values = gather_pre(centered, self.W_enc, self.b_enc, pre, coords).relu()
        x_hat = sparse_decode(values, coords, self.W_dec) + self.b_dec
        parts = {"mse": squared_error(x_hat, x)} | aux_k_loss(
            x, x_hat, centered, pre, self.W_enc, self.b_enc, self.W_dec, ctx.dead_mask, self.cfg.aux_coeff
        )
        with torch.no_grad():
            active = values > 0
            fired = torch.zeros(self.d_sae, dtype=torch.bool, device=x.device).index_fill_(0, coords.cols[active], True)
            l0 = active.sum().float() / x.shape[0]
        return TrainOutput(loss=sum(parts.values()), x_hat=x_hat, fired=fired, l0=l0, parts=parts)

    def saelens_cfg_extra(self) -> dict[str, object]:
        return {"k": self.k, "rescale_acts_by_decoder_norm": False}

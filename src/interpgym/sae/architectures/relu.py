"""`relu`: ReLU latents with an L1 penalty weighted by decoder row norms (Anthropic, April 2024).

Penalty: coeff * sum_i f_i * ||W_dec[i]||. The decoder is unconstrained (the norm in
the penalty removes the incentive to shrink f and grow W_dec) and starts at row norm
0.1, encoder = decoder transpose. Saved as SAELens `standard`.
"""

from __future__ import annotations

from torch import Tensor

from interpgym.sae.architectures.base import SparseAutoencoder, StepContext
from interpgym.sae.architectures.registry import register


@register
class ReluSAE(SparseAutoencoder):
    arch = "relu"
    saelens_architecture = "standard"
    unit_norm_decoder = False
    decoder_init_norm = 0.1
    uses_sparsity_coeff = True
    default_sparsity_coeff = 4.0

    def activation(self, pre: Tensor) -> Tensor:
        return pre.relu()

    def sparsity_loss(self, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        weighted = acts @ self.W_dec.norm(dim=1)  # sum_i f_i ||W_dec[i]|| per input, as one matmul
        return {"l1": ctx.sparsity_coeff * weighted.mean()}

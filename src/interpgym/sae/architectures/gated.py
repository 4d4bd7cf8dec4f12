"""`gated`: separate "which latents fire" and "how strongly" paths (Rajamanoharan et al. 2024).

gate = (x - b_dec) @ W_enc + b_gate decides firing (gate > 0); the magnitude path
shares W_enc rescaled per latent by exp(r_mag): mag = ReLU((x - b_dec) @ (W_enc * exp(r_mag)) + b_mag);
f = 1[gate > 0] * mag. Training adds an L1 penalty on ReLU(gate) and an auxiliary
reconstruction of x from ReLU(gate) through a frozen (detached) decoder, which gives
the gate its gradient. Here `b_enc` holds b_gate. Unit-norm decoder. Saved as SAELens `gated`.

Checked against the paper: one shared encoder direction (W_mag = exp(r_mag) * W_gate),
separate b_gate / b_mag, L1 on ReLU(gate pre-activations) (decoder rows are unit norm,
so the decoder-norm weighting is 1), auxiliary loss through detached W_dec and b_dec
(the only reconstruction gradient the gate gets; the main loss reaches W_enc via the
magnitude path only).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from interpgym.sae.architectures.base import SparseAutoencoder, StepContext, squared_error
from interpgym.sae.architectures.registry import register
from interpgym.sae.config import SAEConfig


@register
class GatedSAE(SparseAutoencoder):
    arch = "gated"
    saelens_architecture = "gated"
    uses_sparsity_coeff = True
    # chosen for L0 close to the toy's true mean L0 of 5; the measurements are in docs/sae.md ("Measured")
    default_sparsity_coeff = 4.5
    saelens_names = {"W_enc": "W_enc", "b_gate": "b_enc", "r_mag": "r_mag", "b_mag": "b_mag", "W_dec": "W_dec", "b_dec": "b_dec"}

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.r_mag = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_mag = nn.Parameter(torch.zeros(cfg.d_sae))

    def _paths(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(gate pre-activations, magnitudes); the gate pre-activations are `pre_activations(x)`."""
        sae_in = x - self.b_dec
        gate_pre = sae_in @ self.W_enc + self.b_enc
        magnitude = (sae_in @ (self.W_enc * self.r_mag.exp()) + self.b_mag).relu()
        return gate_pre, magnitude

    def encode(self, x: Tensor) -> Tensor:
        gate_pre, magnitude = self._paths(x)
        return (gate_pre > 0).to(magnitude.dtype) * magnitude

    def encode_for_training(self, x: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor]:
        gate_pre, magnitude = self._paths(x)
        return (gate_pre > 0).to(magnitude.dtype) * magnitude, gate_pre

    def sparsity_loss(self, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        return {"l1": ctx.sparsity_coeff * (pre.relu() @ self.W_dec.norm(dim=1)).mean()}

    def auxiliary_loss(self, x: Tensor, x_hat: Tensor, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        frozen_recon = pre.relu() @ self.W_dec.detach() + self.b_dec.detach()
        return {"gate_aux": squared_error(frozen_recon, x)}


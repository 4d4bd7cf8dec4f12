"""`batchtopk`: keep the k x batch largest activations across the whole batch (Bussmann et al. 2024).

Training selects the top k*B of ReLU(pre) over the flattened batch, so the *mean*
L0 is k while single inputs may use more or fewer latents. A global threshold
theta tracks the smallest selected activation (exponential moving average, rate
`threshold_ema`, first step copies it); inference is a JumpReLU with that constant
threshold: f = ReLU(pre) * (pre > theta). AuxK as in `topk`. Unit-norm decoder.
Saved as SAELens `jumprelu` with `threshold` = theta for every latent.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpgym.sae.architectures.base import SparseAutoencoder, StepContext, TrainOutput
from interpgym.sae.architectures.registry import register
from interpgym.sae.architectures.topk import aux_k_loss


def batch_topk_relu(pre: Tensor, k: int) -> Tensor:
    """Keep the k * rows largest entries of ReLU(pre) over the whole batch, zero the rest."""
    flat = pre.relu().flatten()
    values, indices = torch.topk(flat, k=min(k * pre.shape[0], flat.numel()), sorted=False)
    return torch.zeros_like(flat).scatter_(0, indices, values).view_as(pre)


def jumprelu(pre: Tensor, threshold: Tensor) -> Tensor:
    """ReLU(pre) * (pre > threshold), exactly as SAELens' JumpReLU inference computes it."""
    return pre.relu() * (pre > threshold).to(pre.dtype)


@register
class BatchTopKSAE(SparseAutoencoder):
    arch = "batchtopk"
    saelens_architecture = "jumprelu"
    uses_k = True
    default_k = 32
    threshold_ema = 0.01

    def __init__(self, cfg) -> None:  # noqa: ANN001
        super().__init__(cfg)
        self.register_buffer("threshold", torch.zeros(()))
        self.register_buffer("threshold_initialised", torch.zeros((), dtype=torch.bool))

    def activation(self, pre: Tensor) -> Tensor:
        return jumprelu(pre, self.threshold)

    def encode(self, x: Tensor) -> Tensor:
        return self.activation(self.pre_activations(x))

    def encode_for_training(self, x: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor]:
        pre = self.pre_activations(x)
        return batch_topk_relu(pre, self.k), pre

    def auxiliary_loss(self, x: Tensor, x_hat: Tensor, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        return aux_k_loss(self, x, x_hat, pre, ctx)

    @torch.no_grad()
    def after_step(self, out: TrainOutput, ctx: StepContext) -> None:
        positive = out.acts[out.acts > 0]
        if positive.numel() == 0:
            return
        smallest = positive.min().to(self.threshold)
        rate = torch.where(self.threshold_initialised, self.threshold_ema, 1.0)
        self.threshold.copy_((1 - rate) * self.threshold + rate * smallest)
        self.threshold_initialised.fill_(True)

    def saelens_state(self) -> dict[str, Tensor]:
        return super().saelens_state() | {"threshold": self.threshold.detach().expand(self.d_sae)}

    @torch.no_grad()
    def load_saelens_state(self, state: dict[str, Tensor]) -> None:
        threshold = state["threshold"]
        if threshold.numel() != self.d_sae or not torch.all(threshold == threshold.reshape(-1)[0]):
            from interpgym.core.errors import UserError

            raise UserError(f"a {self.arch} SAE needs one constant threshold for all latents; this file has per-latent thresholds (load it as jumprelu)")
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            getattr(self, name).copy_(state[name].to(self.W_enc.dtype))
        self.threshold.copy_(threshold.reshape(-1)[0])
        self.threshold_initialised.fill_(True)

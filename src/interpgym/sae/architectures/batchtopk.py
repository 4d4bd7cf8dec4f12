"""`batchtopk`: keep the k x batch largest activations across the whole batch (Bussmann et al. 2024).

Training selects the top k*B of ReLU(pre) over the flattened batch, so the *mean*
L0 is k while single inputs may use more or fewer latents. A global threshold
theta tracks the smallest selected activation (exponential moving average, rate
`threshold_ema`, first step copies it); inference is a JumpReLU with that constant
threshold: f = ReLU(pre) * (pre > theta). AuxK as in `topk`. Unit-norm decoder.
Training decodes sparsely (`sparse_ops`). Saved as SAELens `jumprelu` with
`threshold` = theta for every latent.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.sae.architectures.base import SparseAutoencoder, StepContext, TrainOutput, squared_error
from interpgym.sae.architectures.functional import aux_k_loss, batch_topk_coordinates, jumprelu
from interpgym.sae.architectures.registry import register
from interpgym.sae.architectures.sparse_ops import Coordinates, gather_pre, sparse_decode
from interpgym.sae.config import SAEConfig


@register
class BatchTopKSAE(SparseAutoencoder):
    arch = "batchtopk"
    saelens_architecture = "jumprelu"
    uses_k = True
    default_k = 32
    threshold_ema = 0.01

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.register_buffer("threshold", torch.zeros(()))
        self.register_buffer("threshold_initialised", torch.zeros((), dtype=torch.bool))

    def activation(self, pre: Tensor) -> Tensor:
        return jumprelu(pre, self.threshold)

    def reconstruction_loss(self, x: Tensor, values: Tensor, coords: Coordinates) -> tuple[Tensor, dict[str, Tensor]]:
        """(x_hat, loss parts) from the selected coordinates; Matryoshka overrides this."""
        x_hat = sparse_decode(values, coords, self.W_dec) + self.b_dec
        return x_hat, {"mse": squared_error(x_hat, x)}

    def training_loss(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        centered = x - self.b_dec
        with torch.no_grad():
            pre = centered @ self.W_enc + self.b_enc
        coords = batch_topk_coordinates(pre, self.k)
        values = gather_pre(centered, self.W_enc, self.b_enc, pre, coords).relu()
        x_hat, parts = self.reconstruction_loss(x, values, coords)
        parts |= aux_k_loss(x, x_hat, centered, pre, self.W_enc, self.b_enc, self.W_dec, ctx.dead_mask, self.cfg.aux_coeff)
        with torch.no_grad():
            fired = torch.zeros(self.d_sae, dtype=torch.bool, device=x.device).index_fill_(0, coords.cols, True)
            l0 = torch.tensor(coords.cols.numel() / x.shape[0])
            extras = {"smallest_kept": values.detach().min()} if values.numel() else {}
        return TrainOutput(loss=sum(parts.values()), x_hat=x_hat, fired=fired, l0=l0, parts=parts, extras=extras)

    @torch.no_grad()
    def after_step(self, out: TrainOutput, ctx: StepContext) -> None:
        if "smallest_kept" not in out.extras:
            return
        smallest = out.extras["smallest_kept"].to(self.threshold)
        rate = torch.where(self.threshold_initialised, self.threshold_ema, 1.0)
        self.threshold.copy_((1 - rate) * self.threshold + rate * smallest)
        self.threshold_initialised.fill_(True)

    def saelens_derived_state(self) -> dict[str, Tensor]:
        return {"threshold": self.threshold.detach().expand(self.d_sae)}

    @torch.no_grad()
    def load_saelens_derived_state(self, state: dict[str, Tensor]) -> None:
        threshold = state.pop("threshold")
        if threshold.numel() != self.d_sae or not torch.all(threshold == threshold.reshape(-1)[0]):
            raise UserError(
                f"a {self.arch} SAE needs one constant threshold for all latents; this file has per-latent thresholds (load it as jumprelu)"
            )
        self.threshold.copy_(threshold.reshape(-1)[0])
        self.threshold_initialised.fill_(True)

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
from jaxtyping import Int
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.sae.architectures.base import SparseAutoencoder, StepContext, TrainOutput, squared_error
from interpgym.sae.architectures.registry import register
from interpgym.sae.architectures.sparse_ops import coordinate_decode
from interpgym.sae.architectures.topk import aux_k_loss


def batch_topk_coordinates(pre: Tensor, k: int) -> tuple[Int[Tensor, " n"], Int[Tensor, " n"], Tensor]:
    """(rows, cols, flat indices) of the k * rows largest positive entries of `pre` over the whole batch,
    sorted by flat index (so rows ascend). No gradient."""
    with torch.no_grad():
        flat = pre.relu().flatten()
        top = torch.topk(flat, k=min(k * pre.shape[0], flat.numel()), sorted=False)
        flat_index = top.indices[top.values > 0].sort().values
    return flat_index // pre.shape[1], flat_index % pre.shape[1], flat_index


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

    def reconstruction_loss(self, x: Tensor, values: Tensor, rows: Tensor, cols: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(x_hat, loss parts) from the selected coordinates; Matryoshka overrides this."""
        x_hat = coordinate_decode(values, rows, cols, self.W_dec, x.shape[0]) + self.b_dec
        return x_hat, {"mse": squared_error(x_hat, x)}

    def training_loss(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        pre = self.pre_activations(x)
        rows, cols, flat_index = batch_topk_coordinates(pre.detach(), self.k)
        values = pre.flatten()[flat_index].relu()
        x_hat, parts = self.reconstruction_loss(x, values, rows, cols)
        parts |= aux_k_loss(self, x, x_hat, pre, ctx)
        with torch.no_grad():
            fired = torch.zeros(self.d_sae, dtype=torch.bool, device=x.device).index_fill_(0, cols, True)
            l0 = torch.tensor(rows.numel() / x.shape[0])
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

    def saelens_state(self) -> dict[str, Tensor]:
        return super().saelens_state() | {"threshold": self.threshold.detach().expand(self.d_sae)}

    @torch.no_grad()
    def load_saelens_state(self, state: dict[str, Tensor]) -> None:
        threshold = state["threshold"]
        if threshold.numel() != self.d_sae or not torch.all(threshold == threshold.reshape(-1)[0]):
            raise UserError(f"a {self.arch} SAE needs one constant threshold for all latents; this file has per-latent thresholds (load it as jumprelu)")
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            getattr(self, name).copy_(state[name].to(self.W_enc.dtype))
        self.threshold.copy_(threshold.reshape(-1)[0])
        self.threshold_initialised.fill_(True)

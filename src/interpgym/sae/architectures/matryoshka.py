"""`matryoshka`: BatchTopK latents trained so that every nested prefix of the dictionary reconstructs well.

Loss: the mean over prefixes m (default d_sae/16, /8, /4, /2, all) of
||x - (f[:, :m] @ W_dec[:m] + b_dec)||^2 (Bussmann et al. / Nabeshima, 2025),
computed with one matmul per group and a running sum. Early latents are pushed to
be general, later ones to refine. Inference and saving as `batchtopk` (JumpReLU
with a constant threshold).
"""

from __future__ import annotations

from torch import Tensor

from interpgym.core.errors import require
from interpgym.sae.architectures.base import StepContext, TrainOutput
from interpgym.sae.architectures.batchtopk import BatchTopKSAE
from interpgym.sae.architectures.registry import register


@register
class MatryoshkaSAE(BatchTopKSAE):
    arch = "matryoshka"

    def __init__(self, cfg) -> None:  # noqa: ANN001
        super().__init__(cfg)
        prefixes = cfg.matryoshka_prefixes
        if prefixes is None:
            prefixes = tuple(sorted({max(1, cfg.d_sae // d) for d in (16, 8, 4, 2)} | {cfg.d_sae}))
        require(
            list(prefixes) == sorted(set(prefixes)) and prefixes[-1] == cfg.d_sae and prefixes[0] >= 1,
            f"matryoshka prefixes must be strictly increasing and end at the width {cfg.d_sae} (got {list(prefixes)})",
        )
        self.prefixes = tuple(int(p) for p in prefixes)

    def training_loss(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        acts, pre = self.encode_for_training(x, ctx)
        partial = self.b_dec.expand_as(x)
        prefix_losses = []
        start = 0
        for end in self.prefixes:
            partial = partial + acts[:, start:end] @ self.W_dec[start:end]
            prefix_losses.append((partial - x).pow(2).sum(-1).mean())
            start = end
        x_hat = partial
        parts = {"prefix_mse": sum(prefix_losses) / len(prefix_losses)}
        parts.update(self.auxiliary_loss(x, x_hat, acts, pre, ctx))
        return TrainOutput(loss=sum(parts.values()), acts=acts, x_hat=x_hat, parts=parts)

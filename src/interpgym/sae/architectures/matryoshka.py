"""`matryoshka`: BatchTopK latents trained so that every nested prefix of the dictionary reconstructs well.

Loss: the mean over prefixes m (default d_sae/16, /8, /4, /2, all) of
||x - (f[:, :m] @ W_dec[:m] + b_dec)||^2 (Bussmann et al. / Nabeshima, 2025),
computed group by group with a running sum. Early latents are pushed to be general,
later ones to refine. Inference and saving as `batchtopk` (JumpReLU with a constant
threshold).
"""

from __future__ import annotations

from torch import Tensor

from interpgym.core.errors import require
from interpgym.sae.architectures.base import squared_error
from interpgym.sae.architectures.batchtopk import BatchTopKSAE
from interpgym.sae.architectures.registry import register
from interpgym.sae.architectures.sparse_ops import Coordinates, sparse_decode
from interpgym.sae.config import SAEConfig


@register
class MatryoshkaSAE(BatchTopKSAE):
    arch = "matryoshka"

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        prefixes = cfg.matryoshka_prefixes
        if prefixes is None:
            prefixes = tuple(sorted({max(1, cfg.d_sae // d) for d in (16, 8, 4, 2)} | {cfg.d_sae}))
        require(
            list(prefixes) == sorted(set(prefixes)) and prefixes[-1] == cfg.d_sae and prefixes[0] >= 1,
            f"matryoshka prefixes must be strictly increasing and end at the width {cfg.d_sae} (got {list(prefixes)})",
        )
        self.prefixes = tuple(int(p) for p in prefixes)

    def reconstruction_loss(self, x: Tensor, values: Tensor, coords: Coordinates) -> tuple[Tensor, dict[str, Tensor]]:
        partial = self.b_dec.expand_as(x)
        prefix_losses = []
        start = 0
        for end in self.prefixes:
            group = (coords.cols >= start) & (coords.cols < end)
            partial = partial + sparse_decode(values[group], coords.subset(group), self.W_dec)
            prefix_losses.append(squared_error(partial, x))
            start = end
        return partial, {"prefix_mse": sum(prefix_losses) / len(prefix_losses)}

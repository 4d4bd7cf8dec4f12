"""`jumprelu`: per-latent learned thresholds and an L0 penalty (Rajamanoharan et al. 2024).

f = pre * H(pre - theta) with theta = exp(log_threshold) > 0. The step function has
zero gradient almost everywhere, so theta learns through a straight-through
estimator: d/dtheta is replaced by a rectangle kernel of width `bandwidth` around
the threshold (pseudo-derivatives -theta/eps * K((pre - theta)/eps) for the JumpReLU
output and -1/eps * K(...) for the L0 count). Penalty: coeff * mean_b sum_i H(pre_i - theta_i).
Unit-norm decoder. Saved as SAELens `jumprelu`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from interpgym.sae.architectures.base import SparseAutoencoder, StepContext
from interpgym.sae.architectures.functional import jumprelu
from interpgym.sae.architectures.registry import register
from interpgym.sae.config import SAEConfig


def _rectangle(z: Tensor) -> Tensor:
    return ((z > -0.5) & (z < 0.5)).to(z.dtype)


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta), gradient to theta through the rectangle kernel."""

    @staticmethod
    def forward(ctx: Any, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = (pre > theta).to(grad.dtype) * grad
        grad_theta = (-(theta / eps) * _rectangle((pre - theta) / eps) * grad).sum(0)
        return grad_pre, grad_theta, None


class _Step(torch.autograd.Function):
    """H(pre - theta), gradient to theta only, through the rectangle kernel."""

    @staticmethod
    def forward(ctx: Any, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_theta = (-(1.0 / eps) * _rectangle((pre - theta) / eps) * grad).sum(0)
        return None, grad_theta, None


@register
class JumpReluSAE(SparseAutoencoder):
    arch = "jumprelu"
    saelens_architecture = "jumprelu"
    uses_sparsity_coeff = True
    default_sparsity_coeff = 1.0

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.log_threshold = nn.Parameter(torch.full((cfg.d_sae,), math.log(cfg.jumprelu_init_threshold)))

    @property
    def threshold(self) -> Tensor:
        return self.log_threshold.exp()

    def activation(self, pre: Tensor) -> Tensor:
        return jumprelu(pre, self.threshold)

    def encode_for_training(self, x: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor]:
        pre = self.pre_activations(x)
        return _JumpReLU.apply(pre, self.threshold, self.cfg.jumprelu_bandwidth), pre

    def sparsity_loss(self, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        l0 = _Step.apply(pre, self.threshold, self.cfg.jumprelu_bandwidth).sum(-1).mean()
        return {"l0": ctx.sparsity_coeff * l0}

    def saelens_derived_state(self) -> dict[str, Tensor]:
        return {"threshold": self.threshold.detach()}

    @torch.no_grad()
    def load_saelens_derived_state(self, state: dict[str, Tensor]) -> None:
        """Any finite threshold loads, as in SAELens. One <= 0 acts exactly as 0 (the ReLU
        already zeroes pre <= 0), so it is stored as 0 (log_threshold = -inf): the latent is
        then a plain ReLU, with the same outputs as SAELens computes."""
        threshold = state.pop("threshold").to(self.log_threshold)
        self.log_threshold.copy_(threshold.clamp_min(0).log())

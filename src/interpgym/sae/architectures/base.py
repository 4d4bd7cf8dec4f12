"""The base class every SAE architecture extends, and the per-step training context.

An SAE maps activations x (d_in) to latents f (d_sae) and back:

    pre   = (x - b_dec) @ W_enc + b_enc          # `pre_activations`
    f     = activation(pre)                       # `encode` (inference form)
    x_hat = f @ W_dec + b_dec                     # `decode`

A subclass states its activation function (`encode`, and `encode_for_training` when
training differs from inference, e.g. BatchTopK), its sparsity penalty
(`sparsity_loss`), and how it is written in the SAELens format. Everything else —
the reconstruction loss, decoder-norm handling, input-scale folding, the trainer —
is shared. See `docs/sae_new_architecture.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from interpgym.core.errors import UserError
from interpgym.sae.config import SAEConfig


@dataclass
class StepContext:
    """What the trainer tells the SAE at one step."""

    step: int
    sparsity_coeff: float  # already warmed up
    dead_mask: Bool[Tensor, " d_sae"] | None  # latents that have not fired recently


@dataclass
class TrainOutput:
    """One training forward pass: the total loss, its parts (for logging) and firing statistics.

    `fired` marks latents active on at least one input of the batch (dead-latent
    tracking); `l0` is the batch's mean number of active latents; `extras` carries
    architecture-specific tensors to `after_step` (e.g. BatchTopK's smallest kept value).
    """

    loss: Tensor
    x_hat: Float[Tensor, "b d_in"]
    fired: Bool[Tensor, " d_sae"]
    l0: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)
    extras: dict[str, Tensor] = field(default_factory=dict)

    @staticmethod
    def from_dense(loss: Tensor, acts: Float[Tensor, "b d_sae"], x_hat: Tensor, parts: dict[str, Tensor]) -> TrainOutput:
        """Firing statistics from a dense latent matrix."""
        with torch.no_grad():
            active = acts > 0
            return TrainOutput(loss=loss, x_hat=x_hat, fired=active.any(0), l0=active.sum(1).float().mean(), parts=parts)


def squared_error(x_hat: Float[Tensor, "b d"], x: Float[Tensor, "b d"]) -> Tensor:
    """Mean over the batch of the summed squared error per input."""
    return (x_hat - x).pow(2).sum(-1).mean()


class SparseAutoencoder(nn.Module):
    """Linear encoder, an activation function, linear decoder. Subclasses set the activation and penalty.

    Class attributes a subclass sets:
    * `arch`: registry name;
    * `saelens_architecture`: the SAELens architecture it is saved as;
    * `unit_norm_decoder`: whether the trainer keeps decoder rows at unit norm;
    * `decoder_init_norm`: norm of the initial decoder rows;
    * `default_k` / `default_sparsity_coeff`: used when the config leaves them None;
    * `saelens_names`: SAELens tensor name -> our parameter (tensors stored as they are).
    """

    arch: ClassVar[str]
    saelens_architecture: ClassVar[str]
    unit_norm_decoder: ClassVar[bool] = True
    decoder_init_norm: ClassVar[float] = 1.0
    default_k: ClassVar[int | None] = None
    default_sparsity_coeff: ClassVar[float | None] = None
    uses_k: ClassVar[bool] = False
    uses_sparsity_coeff: ClassVar[bool] = False
    # SAELens tensor name -> our parameter, for every tensor stored as it is.
    saelens_names: ClassVar[dict[str, str]] = {"W_enc": "W_enc", "b_enc": "b_enc", "W_dec": "W_dec", "b_dec": "b_dec"}

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.d_in = cfg.d_in
        self.d_sae = cfg.d_sae
        self.k = (cfg.k if cfg.k is not None else self.default_k) if self.uses_k else None
        coeff = cfg.sparsity_coeff if cfg.sparsity_coeff is not None else self.default_sparsity_coeff
        self.sparsity_coeff = float(coeff) if self.uses_sparsity_coeff and coeff is not None else 0.0
        self.W_enc = nn.Parameter(torch.zeros(cfg.d_in, cfg.d_sae))
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.W_dec = nn.Parameter(torch.zeros(cfg.d_sae, cfg.d_in))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))

    # ---- initialisation -------------------------------------------------------------
    @torch.no_grad()
    def initialize(self, generator: torch.Generator, b_dec: Float[Tensor, " d_in"] | None = None) -> None:
        """Decoder rows: random directions of norm `decoder_init_norm`; encoder = decoder transpose.

        `b_dec` (the geometric median of the training inputs) is copied in when given.
        Deterministic given the generator's state.
        """
        w = torch.randn(self.d_sae, self.d_in, generator=generator, dtype=torch.float32)
        w = w / w.norm(dim=1, keepdim=True) * self.decoder_init_norm
        self.W_dec.copy_(w.to(self.W_dec))
        self.W_enc.copy_(self.W_dec.T)
        self.b_enc.zero_()
        if b_dec is not None:
            self.b_dec.copy_(b_dec.to(self.b_dec))

    # ---- forward ----------------------------------------------------------------------
    def pre_activations(self, x: Float[Tensor, "b d_in"]) -> Float[Tensor, "b d_sae"]:
        """Encoder pre-activations (x - b_dec) @ W_enc + b_enc (SAELens `hidden_pre`)."""
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: Float[Tensor, "b d_in"]) -> Float[Tensor, "b d_sae"]:
        """Latent activations at inference (what is evaluated and saved): `activation(pre_activations(x))`."""
        return self.activation(self.pre_activations(x))

    def encode_for_training(self, x: Float[Tensor, "b d_in"], ctx: StepContext) -> tuple[Tensor, Tensor]:
        """(latents, pre-activations) in training; defaults to the inference path."""
        pre = self.pre_activations(x)
        return self.activation(pre), pre

    def activation(self, pre: Float[Tensor, "b d_sae"]) -> Float[Tensor, "b d_sae"]:
        """The activation function applied to pre-activations (inference)."""
        raise NotImplementedError

    def decode(self, acts: Float[Tensor, "b d_sae"]) -> Float[Tensor, "b d_in"]:
        """Reconstruction acts @ W_dec + b_dec."""
        return acts @ self.W_dec + self.b_dec

    def forward(self, x: Float[Tensor, "b d_in"]) -> Float[Tensor, "b d_in"]:
        return self.decode(self.encode(x))

    # ---- training ---------------------------------------------------------------------
    def sparsity_loss(self, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        """Penalty terms (already weighted) added to the reconstruction loss."""
        return {}

    def training_loss(self, x: Float[Tensor, "b d_in"], ctx: StepContext) -> TrainOutput:
        """Reconstruction error plus the architecture's penalties."""
        acts, pre = self.encode_for_training(x, ctx)
        x_hat = self.decode(acts)
        parts = {"mse": squared_error(x_hat, x)}
        parts.update(self.sparsity_loss(acts, pre, ctx) | self.auxiliary_loss(x, x_hat, acts, pre, ctx))
        return TrainOutput.from_dense(sum(parts.values()), acts, x_hat, parts)

    def auxiliary_loss(self, x: Tensor, x_hat: Tensor, acts: Tensor, pre: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        """Extra losses that are not sparsity penalties (AuxK, gated's auxiliary reconstruction)."""
        return {}

    def after_step(self, out: TrainOutput, ctx: StepContext) -> None:
        """Hook run after the optimizer step (BatchTopK updates its threshold here)."""

    # ---- scaling and export -------------------------------------------------------------
    @torch.no_grad()
    def fold_input_scale(self, scale: float) -> None:
        """Make an SAE trained on `scale * x` act on raw `x` with identical latents.

        pre(scale*x) = (scale*x - b_dec) @ W_enc + b_enc = (x - b_dec/scale) @ (scale*W_enc) + b_enc,
        so W_enc *= scale, b_dec /= scale, W_dec /= scale; pre-activations (hence
        thresholds and biases in latent space) are unchanged and x_hat comes out in raw units.
        """
        self.W_enc.mul_(scale)
        self.W_dec.div_(scale)
        self.b_dec.div_(scale)

    def saelens_state(self) -> dict[str, Tensor]:
        """Weights under SAELens names for `saelens_architecture` (inference form)."""
        stored = {theirs: getattr(self, ours).detach() for theirs, ours in self.saelens_names.items()}
        return stored | self.saelens_derived_state()

    def saelens_derived_state(self) -> dict[str, Tensor]:
        """SAELens tensors that are not one of our parameters as-is (e.g. a threshold); {} by default."""
        return {}

    def load_saelens_derived_state(self, state: dict[str, Tensor]) -> None:
        """Inverse of `saelens_derived_state`: pop each tensor it uses from `state` and set it."""

    def saelens_cfg_extra(self) -> dict[str, object]:
        """Architecture-specific keys of SAELens' `cfg.json`."""
        return {}

    @torch.no_grad()
    def load_saelens_state(self, state: dict[str, Tensor]) -> None:
        """Inverse of `saelens_state` through the explicit name map `saelens_names`.

        Every tensor of `state` must be consumed (by the map or by
        `load_saelens_derived_state`) and every mapped name present: `UserError` otherwise.
        Shapes are the caller's to check (`storage.load_sae` does).
        """
        remaining = dict(state)
        missing = sorted(set(self.saelens_names) - set(remaining))
        if missing:
            raise UserError(f"a {self.arch} SAE needs the SAELens tensors {missing}, which are missing")
        for theirs, ours in self.saelens_names.items():
            parameter = getattr(self, ours)
            parameter.copy_(remaining.pop(theirs).to(parameter))
        self.load_saelens_derived_state(remaining)
        if remaining:
            raise UserError(f"a {self.arch} SAE has no place for the SAELens tensors {sorted(remaining)}")

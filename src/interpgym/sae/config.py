"""Configs of an SAE (what it is) and of its training run (how it was made).

Both are frozen dataclasses so that they hash (`core.hashing.config_hash`) and
round-trip through JSON; `validate()` turns impossible values into `UserError`s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from interpgym.core.errors import UserError, require


@dataclass(frozen=True)
class SAEConfig:
    """Shape and sparsity hyper-parameters of one SAE.

    `k` is used by the top-k family (`topk`, `batchtopk`, `matryoshka`: mean active
    latents per input); `sparsity_coeff` by the penalty family (`relu`: L1 weight,
    `jumprelu`: L0 weight, `gated`: L1 weight on the gate). `None` picks the
    architecture's default (see `docs/sae.md`).
    """

    arch: str
    d_in: int
    d_sae: int
    k: int | None = None
    sparsity_coeff: float | None = None
    # matryoshka: sizes of the nested dictionaries (prefixes); None = d_sae/16, /8, /4, /2, 1.
    matryoshka_prefixes: tuple[int, ...] | None = None
    # jumprelu: width of the straight-through estimator's rectangle kernel, and initial threshold.
    jumprelu_bandwidth: float = 0.05
    jumprelu_init_threshold: float = 0.1
    # topk family: weight of the AuxK loss that revives dead latents.
    aux_coeff: float = 1.0 / 32.0

    def validate(self) -> None:
        """Raise `UserError` for impossible values (architecture-specific checks live in the class)."""
        require(self.d_in >= 1, f"d_in must be >= 1 (got {self.d_in})")
        require(self.d_sae >= 1, f"--width must be >= 1 (got {self.d_sae})")
        if self.k is not None:
            require(1 <= self.k <= self.d_sae, f"--k must be in [1, width={self.d_sae}] (got {self.k})")
        if self.sparsity_coeff is not None:
            require(
                math.isfinite(self.sparsity_coeff) and self.sparsity_coeff >= 0,
                f"--l1 (sparsity coefficient) must be a finite number >= 0 (got {self.sparsity_coeff})",
            )
        require(self.jumprelu_bandwidth > 0, "jumprelu_bandwidth must be > 0")
        require(self.jumprelu_init_threshold > 0, "jumprelu_init_threshold must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UserError(f"unknown SAE config keys {sorted(unknown)}: the file was not written by this interpgym version")
        data = dict(data)
        if data.get("matryoshka_prefixes") is not None:
            data["matryoshka_prefixes"] = tuple(int(p) for p in data["matryoshka_prefixes"])
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe. Same config + same activations + same seed = same weights (CPU).

    Schedules (fractions of `steps`): learning rate rises linearly over the first
    `lr_warmup_frac`, stays flat, and decays linearly to zero over the last
    `lr_decay_frac` (Anthropic, April 2024); the sparsity coefficient rises linearly
    from 0 over the first `sparsity_warmup_frac`. `lr=None` picks
    2e-4 * sqrt(16384 / d_sae), capped at 1e-3 (the OpenAI top-k scaling heuristic).
    A latent counts as dead during training when it has not fired on any of the last
    `dead_after_inputs` training inputs.
    """

    steps: int = 3000
    batch_size: int = 1024
    lr: float | None = None
    beta1: float = 0.9
    beta2: float = 0.999
    lr_warmup_frac: float = 0.02
    lr_decay_frac: float = 0.2
    sparsity_warmup_frac: float = 0.05
    dead_after_inputs: int = 200_000
    geometric_median_rows: int = 8192
    seed: int = 0
    checkpoint_every: int = 0  # 0 = only when asked to stop early
    # Intra-op threads for CPU training (0 = torch's default). One by default: threaded sparse
    # kernels and small matmuls were slower than one thread on a shared machine (docs/sae.md, "Performance").
    cpu_threads: int = 1

    def validate(self) -> None:
        """Raise `UserError` for impossible values."""
        require(self.steps >= 1, f"--steps must be >= 1 (got {self.steps})")
        require(self.batch_size >= 1, f"batch size must be >= 1 (got {self.batch_size})")
        if self.lr is not None:
            require(math.isfinite(self.lr) and self.lr > 0, f"--lr must be > 0 (got {self.lr})")
        for name in ("lr_warmup_frac", "lr_decay_frac", "sparsity_warmup_frac"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1] (got {value})")
        require(self.lr_warmup_frac + self.lr_decay_frac <= 1.0, "lr_warmup_frac + lr_decay_frac must be <= 1")
        require(self.dead_after_inputs >= 1, "dead_after_inputs must be >= 1")
        require(self.checkpoint_every >= 0, "checkpoint_every must be >= 0")
        require(self.cpu_threads >= 0, "cpu_threads must be >= 0 (0 = torch default)")

    def resolved_lr(self, d_sae: int) -> float:
        """The learning rate actually used for an SAE of width `d_sae`."""
        if self.lr is not None:
            return self.lr
        return min(1e-3, 2e-4 * math.sqrt(16384 / d_sae))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

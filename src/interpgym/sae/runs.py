"""Training an SAE on a named subject: the glue between `subjects.registry`, the trainer and storage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpgym.core.cache import get_or_build
from interpgym.core.device import resolve_device
from interpgym.core.errors import UserError
from interpgym.sae.architectures import ARCHITECTURES, architecture
from interpgym.sae.config import SAEConfig, TrainConfig
from interpgym.sae.storage import LoadedSAE, load_sae, save_sae
from interpgym.sae.trainer import TrainResult, train_sae
from interpgym.subjects.activations import ActivationSubject
from interpgym.subjects.registry import load_subject


@dataclass(frozen=True)
class SubjectSpec:
    """Which activations: subject name plus the arguments `load_subject` takes."""

    name: str
    seed: int = 0
    layer: int | None = None
    model: str | None = None

    def load(self) -> ActivationSubject:
        return load_subject(self.name, seed=self.seed, layer=self.layer, model=self.model)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "layer": self.layer, "model": self.model}


def check_sparsity_options(arch: str, k: int | None, sparsity_coeff: float | None) -> None:
    """`UserError` when `--k` is given to an architecture without k, or `--l1` to one without a coefficient."""
    cls = architecture(arch)
    if k is not None and not cls.uses_k:
        raise UserError(f"--k does not apply to {arch} (it applies to {', '.join(_names(uses_k=True))}); set its sparsity with --l1")
    if sparsity_coeff is not None and not cls.uses_sparsity_coeff:
        raise UserError(f"--l1 does not apply to {arch} (it applies to {', '.join(_names(uses_k=False))}); set its sparsity with --k")


def _names(*, uses_k: bool) -> list[str]:
    return sorted(name for name, cls in ARCHITECTURES.items() if cls.uses_k == uses_k)


def sae_config_for(subject: ActivationSubject, arch: str, width: int | None, k: int | None, sparsity_coeff: float | None) -> SAEConfig:
    """An `SAEConfig` with the subject's `sae_defaults` filled in (width; k for the top-k family).

    `UserError` if `k` or `sparsity_coeff` is given to an architecture that does not use it.
    """
    cls = architecture(arch)
    check_sparsity_options(arch, k, sparsity_coeff)
    if width is None:
        width = subject.sae_defaults.width
    if k is None and cls.uses_k:
        k = subject.sae_defaults.k
    return SAEConfig(arch=arch, d_in=subject.d_in, d_sae=width, k=k, sparsity_coeff=sparsity_coeff)


def train_config_for(subject: ActivationSubject, *, lr: float | None = None, **fields: Any) -> TrainConfig:
    """A `TrainConfig` whose learning rate, when not given, is the subject's `sae_defaults.lr`
    (toy: tuned, see docs/sae_subjects.md) or else the trainer's width-based default."""
    if lr is None:
        lr = subject.sae_defaults.lr
    config = TrainConfig(lr=lr, **fields)
    config.validate()
    return config


def train_on_subject(
    subject: ActivationSubject,
    spec: SubjectSpec,
    sae_cfg: SAEConfig,
    train_cfg: TrainConfig,
    *,
    device: str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
    description: str = "training SAE",
) -> tuple[TrainResult, dict[str, Any]]:
    """Train on `subject`'s train split; return the result and the metadata to save with it."""
    result = train_sae(
        subject.activations("train"),
        sae_cfg,
        train_cfg,
        device=resolve_device(device),
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        description=description,
    )
    meta = {"subject": spec.to_dict()} | result.metadata()
    return result, meta


def cached_sae(
    subject: ActivationSubject, spec: SubjectSpec, sae_cfg: SAEConfig, train_cfg: TrainConfig, *, progress: bool = False
) -> LoadedSAE:
    """Train (or reuse from `$INTERPGYM_HOME/cache/sae/<hash>`) and load an SAE. CPU training."""
    config = {"subject": spec.to_dict(), "sae": sae_cfg.to_dict(), "train": train_cfg.to_dict(), "version": 1}

    def build(directory: Path) -> None:
        result, meta = train_on_subject(subject, spec, sae_cfg, train_cfg, device="cpu", progress=progress)
        save_sae(directory / "sae", result.sae, meta)

    return load_sae(get_or_build("sae", config, build) / "sae")

"""Sparse autoencoders: architectures, trainer, evaluation metrics, SAELens-format export.

Public API (stable):

    from interpgym.sae import SAEConfig, TrainConfig, train_sae, evaluate_sae, save_sae, load_sae

* `train_sae(acts, SAEConfig(arch=..., d_in=..., d_sae=..., k=..., sparsity_coeff=...), TrainConfig(...))`
  -> `TrainResult` (`.sae` acts on raw activations; `.metadata()` is JSON-able);
* `evaluate_sae(sae, subject)` -> `EvalReport` (held-out metrics);
* `save_sae(dir, result, subject=..., ...)` / `load_sae(dir)` — SAELens on-disk format.
"""

from interpgym.sae.architectures import ARCHITECTURES, SparseAutoencoder, build_sae, register
from interpgym.sae.config import SAEConfig, TrainConfig
from interpgym.sae.evaluate import EvalReport, evaluate_sae
from interpgym.sae.trainer import TrainResult, train_sae

__all__ = [
    "ARCHITECTURES",
    "EvalReport",
    "SAEConfig",
    "SparseAutoencoder",
    "TrainConfig",
    "TrainResult",
    "build_sae",
    "evaluate_sae",
    "register",
    "train_sae",
]

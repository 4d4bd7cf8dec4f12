"""Sparse autoencoders: architectures, trainer, evaluation metrics, SAELens-format export.

Public API (stable):

    from interpgym.sae import SAEConfig, TrainConfig, train_sae, evaluate_sae, save_sae, load_sae

* `train_sae(acts, SAEConfig(arch=..., d_in=..., d_sae=..., k=..., sparsity_coeff=...), TrainConfig(...))`
  -> `TrainResult` (`.sae` acts on raw activations; `.metadata()` is JSON-able);
* `evaluate_sae(sae, subject)` -> `EvalReport` (held-out metrics);
* `save_sae(dir, result.sae, meta)` / `load_sae(dir)` — SAELens on-disk format plus our metadata;
* `interpgym.sae.runs` — the same on a named subject (`SubjectSpec`, `train_on_subject`, `cached_sae`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it; imported on first use, so that `import interpgym.sae.cli`
# (hence `interpgym --help`) does not pay for torch, scipy and matplotlib.
_PUBLIC = {
    "ARCHITECTURES": "interpgym.sae.architectures",
    "SparseAutoencoder": "interpgym.sae.architectures",
    "build_sae": "interpgym.sae.architectures",
    "register": "interpgym.sae.architectures",
    "SAEConfig": "interpgym.sae.config",
    "TrainConfig": "interpgym.sae.config",
    "EvalReport": "interpgym.sae.evaluate",
    "evaluate_sae": "interpgym.sae.evaluate",
    "LoadedSAE": "interpgym.sae.storage",
    "load_sae": "interpgym.sae.storage",
    "save_sae": "interpgym.sae.storage",
    "TrainResult": "interpgym.sae.trainer",
    "train_sae": "interpgym.sae.trainer",
}

if TYPE_CHECKING:
    from interpgym.sae.architectures import ARCHITECTURES, SparseAutoencoder, build_sae, register
    from interpgym.sae.config import SAEConfig, TrainConfig
    from interpgym.sae.evaluate import EvalReport, evaluate_sae
    from interpgym.sae.storage import LoadedSAE, load_sae, save_sae
    from interpgym.sae.trainer import TrainResult, train_sae


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'interpgym.sae' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "ARCHITECTURES",
    "EvalReport",
    "LoadedSAE",
    "SAEConfig",
    "SparseAutoencoder",
    "TrainConfig",
    "TrainResult",
    "build_sae",
    "evaluate_sae",
    "load_sae",
    "register",
    "save_sae",
    "train_sae",
]

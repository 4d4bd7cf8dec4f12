"""The SAE the SAE-based methods use: trained by the `sae` family (public API only) on the same model and layer.

Training rows are the token activations (position 0 excluded) of the *train* splits of
the given concepts, unlabelled, so the SAE never sees held-out or OOD texts. Cached
under `$INTERPGYM_HOME/cache/probe_sae/<hash>/` in the SAELens format (`save_sae`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.sae import SAEConfig, TrainConfig, load_sae, save_sae, train_sae


def concept_sae(token_rows: Tensor, *, identity: str, layer: int, dataset_key: str, width_factor: int = 4, k: int = 32,
                steps: int = 1000, batch_size: int = 512, seed: int = 0):
    """A top-k SAE (width = width_factor x d) trained on `token_rows` [n, d], built once per (model, layer, rows, recipe)."""
    d = token_rows.shape[1]
    sae_cfg = SAEConfig(arch="topk", d_in=d, d_sae=width_factor * d, k=k)
    train_cfg = TrainConfig(steps=steps, batch_size=batch_size, seed=seed)
    config = {"model": identity, "layer": layer, "rows": dataset_key, "n_rows": int(token_rows.shape[0]),
              "sae": sae_cfg.to_dict(), "train": train_cfg.to_dict()}

    def build(tmp) -> None:
        result = train_sae(token_rows.float(), sae_cfg, train_cfg, progress=True, description="training probe SAE")
        save_sae(tmp / "sae", result.sae, result.metadata(), hook_name=f"blocks.{layer}.hook_resid_pre", overwrite=True)

    path = get_or_build("probe_sae", config, build)
    sae = load_sae(path / "sae").sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae


def fraction_variance_explained(sae, rows: Tensor) -> float:
    """1 - ||x - x_hat||^2 / ||x - mean||^2 on `rows` (a sanity number reported with the SAE)."""
    with torch.no_grad():
        x = rows.float()
        x_hat = sae(x)
        return float(1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())

"""The detection benchmark: every (concept, method, pooling) fit on train, scored on test (ID) and ood.

Cost: one cached activation pass per (model, layer, concept) (`activations`), one cached
SAE when an SAE method is asked for (`concept_sae`), then seconds per row: fitting is
on [240, d] matrices and 1000 bootstrap resamples per interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from interpgym.core.hashing import config_hash
from interpgym.probing import methods as M
from interpgym.probing.activations import cached_concept_activations, check_layer
from interpgym.probing.concept_sae import concept_sae, fraction_variance_explained
from interpgym.probing.concepts import load_concept
from interpgym.probing.metrics import auprc_imbalanced, auroc, auroc_ci

DETECT_POOLINGS: tuple[str, ...] = ("mean", "max")


@dataclass(frozen=True)
class DetectConfig:
    concepts: tuple[str, ...]
    methods: tuple[str, ...]
    layer: int
    poolings: tuple[str, ...] = DETECT_POOLINGS
    seed: int = 0
    sae_steps: int = 1000
    n_boot: int = 1000


def labels_of(concept, split: str) -> torch.Tensor:
    return torch.tensor(concept.splits[split].labels)


def collect(lm, cfg: DetectConfig, progress=None) -> tuple[dict, object | None, dict]:
    """(activations per concept, the SAE or None, SAE info); activations are built once and cached."""
    check_layer(lm.model, cfg.layer)
    acts = {name: cached_concept_activations(lm, load_concept(name, cfg.seed), cfg.layer, progress=progress) for name in cfg.concepts}
    if not set(cfg.methods) & set(M.SAE_METHODS):
        return acts, None, {}
    rows = torch.cat([acts[n]["train"]["tokens"] for n in cfg.concepts])
    key = config_hash([load_concept(n, cfg.seed).fingerprint for n in cfg.concepts])
    sae = concept_sae(rows, identity=lm.identity, layer=cfg.layer, dataset_key=key, steps=cfg.sae_steps, seed=cfg.seed)
    return acts, sae, {"sae_width": sae.d_sae, "sae_k": sae.k, "sae_train_rows": int(rows.shape[0]),
                       "sae_fve_train_rows": fraction_variance_explained(sae, rows[:4096])}


def run_detection(lm, cfg: DetectConfig, progress=None) -> dict:
    """The detection table: {"model", "layer", "results": [row per concept x method x pooling], ...}."""
    start = time.perf_counter()
    acts, sae, sae_info = collect(lm, cfg, progress)
    collected = time.perf_counter()
    results = []
    for name in cfg.concepts:
        concept = load_concept(name, cfg.seed)
        y = {s: labels_of(concept, s) for s in ("train", "test", "ood")}
        for method in cfg.methods:
            for pooling in cfg.poolings:
                probe = M.fit(method, acts[name]["train"][pooling], y["train"], seed=cfg.seed, sae=sae)
                s_id = probe.score(acts[name]["test"][pooling]).detach().numpy()
                s_ood = probe.score(acts[name]["ood"][pooling]).detach().numpy()
                results.append({
                    "concept": name, "method": method, "pooling": pooling,
                    "auroc_id": auroc(s_id, y["test"].numpy()), "auroc_ood": auroc(s_ood, y["ood"].numpy()),
                    "ci95": list(auroc_ci(s_ood, y["ood"].numpy(), seed=cfg.seed, n_boot=cfg.n_boot)),
                    "ci95_id": list(auroc_ci(s_id, y["test"].numpy(), seed=cfg.seed, n_boot=cfg.n_boot)),
                    "auprc_imbalanced": auprc_imbalanced(s_id, y["test"].numpy(), seed=cfg.seed),
                })
    done = time.perf_counter()
    return {"model": lm.identity, "layer": cfg.layer, "seed": cfg.seed, "results": results, **sae_info,
            "seconds_activations": collected - start, "seconds_fit_and_score": done - collected}

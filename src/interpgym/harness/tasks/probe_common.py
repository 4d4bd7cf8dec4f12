"""What the probing tasks share: the subject LM, the concepts' cached activations, private val/test halves."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from interpgym.core.hashing import config_hash
from interpgym.harness.secret import private_seed
from interpgym.harness.task import InvalidSolution
from interpgym.probing.activations import cached_concept_activations
from interpgym.probing.concepts import load_concept

PACKAGED_LAYER = 15  # middle block of SmolLM2-135M (30 blocks)


def task_version(base: str, model: str | None, layer: int, concepts: tuple[str, ...], default_concepts: tuple[str, ...]) -> str:
    """`base` for the packaged model at its default site and concepts; otherwise base + a hash (separate cached inputs)."""
    if model is None and layer == PACKAGED_LAYER and concepts == default_concepts:
        return base
    return f"{base}-{config_hash({'model': model, 'layer': layer, 'concepts': list(concepts)}, 8)}"


@functools.cache
def language_model(model: str | None):
    from interpgym.subjects.lm_loader import load_language_model

    return load_language_model(model)


def concept_acts(model: str | None, layer: int, concept: str) -> dict[str, dict[str, Tensor]]:
    return cached_concept_activations(language_model(model), load_concept(concept), layer)


def write_train_inputs(out: Path, model: str | None, layer: int, concepts: tuple[str, ...], extra: dict | None = None) -> None:
    """data/train.safetensors (`{c}.x` mean-pooled train activations, `{c}.y` labels), texts.json, info.json."""
    tensors, texts = {}, {}
    for name in concepts:
        acts = concept_acts(model, layer, name)
        split = load_concept(name).splits["train"]
        tensors[f"{name}.x"] = acts["train"]["mean"].contiguous()
        tensors[f"{name}.y"] = torch.tensor(split.labels, dtype=torch.float32)
        texts[name] = {"texts": list(split.texts), "labels": list(split.labels)}
    save_file(tensors, str(out / "train.safetensors"))
    (out / "texts.json").write_text(json.dumps(texts, indent=1))
    lm = language_model(model)
    info = {"concepts": list(concepts), "layer": layer, "d_model": lm.d_model, "model": lm.identity, "pooling": "mean",
            "site": f"residual stream entering block {layer} (blocks.{layer}.hook_resid_pre)", **(extra or {})}
    (out / "info.json").write_text(json.dumps(info, indent=1))


def private_half(task_id: str, concept: str, n: int, split: str) -> Tensor:
    """Indices of the val or test half of n held-out rows (a permutation drawn from the installation secret)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(private_seed(f"{task_id}:{concept}:halves") % (1 << 62)))
    return perm[: n // 2] if split == "val" else perm[n // 2 :]


def checked_vectors(artifact, name: str, concepts: tuple[str, ...], d: int) -> dict[str, Tensor]:
    """The artifact's `name.safetensors` vectors, one per concept, each [d], finite and non-zero (else InvalidSolution)."""
    group = artifact.require_tensors(name, list(concepts))
    out = {}
    for concept in concepts:
        v = group[concept]
        if tuple(v.shape) != (d,):
            raise InvalidSolution(f"{name}.safetensors: {concept} has shape {tuple(v.shape)}, expected ({d},)")
        out[concept] = v.float()
    return out

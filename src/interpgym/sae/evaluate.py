"""Trusted evaluation of an SAE on a subject's held-out split.

Everything is computed on `split` (default `test`, never seen in training) except
the choice of probe latents and the probes' fit, which use a seeded sample of the
train split. Which metrics appear depends on the subject: ground-truth metrics need
`ground_truth()`, probing and monosemanticity need `labels()`, downstream metrics
need `downstream()`. Definitions: `interpgym.sae.metrics`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import UserError
from interpgym.core.seeding import generator
from interpgym.sae.architectures import SparseAutoencoder
from interpgym.sae.metrics import (
    PROBE_KS,
    ReconstructionStats,
    TopActivations,
    ground_truth_metrics,
    monosemanticity,
    raw_probe_scores,
    sparse_probing,
)
from interpgym.subjects.activations import ActivationSubject, Split

PROBE_ROWS = 8192


@dataclass
class EvalReport:
    """Metrics of one SAE on one split."""

    eval_inputs: int
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _rows(n: int, limit: int, seed: int) -> Tensor:
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=generator(seed))[:limit].sort().values


@torch.no_grad()
def encode_in_chunks(sae: SparseAutoencoder, acts: Float[Tensor, "n d"], chunk: int = 8192) -> Float[Tensor, "n s"]:
    """Latents of every row of `acts` (float32, on CPU)."""
    device = sae.W_enc.device
    return torch.cat([sae.encode(acts[i : i + chunk].to(device, torch.float32)).cpu() for i in range(0, acts.shape[0], chunk)])


def cached_raw_probe_scores(
    train_raw: Float[Tensor, "n d"],
    train_labels: dict[str, Tensor],
    test_raw: Float[Tensor, "m d"],
    test_labels: dict[str, Tensor],
) -> dict[str, dict[str, float]]:
    """`raw_probe_scores` of these rows, cached under `$INTERPGYM_HOME` keyed by a sha256 of
    the rows and labels themselves (they do not depend on the SAE, and the key cannot go
    stale). Cost on a hit: hashing the rows (~20 MB on smollm2), milliseconds."""
    digest = hashlib.sha256()
    for tensor in (train_raw, test_raw, *(train_labels[k] for k in sorted(train_labels)), *(test_labels[k] for k in sorted(test_labels))):
        digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    config = {"data_sha256": digest.hexdigest(), "concepts": sorted(train_labels), "ks": list(PROBE_KS), "version": 1}

    def build(tmp: Path) -> None:
        (tmp / "scores.json").write_text(json.dumps(raw_probe_scores(train_raw, train_labels, test_raw, test_labels)))

    return json.loads((get_or_build("sae_raw_probes", config, build) / "scores.json").read_text())


@torch.no_grad()
def evaluate_sae(
    sae: SparseAutoencoder,
    subject: ActivationSubject,
    *,
    split: Split = "test",
    chunk: int = 8192,
    seed: int = 0,
    downstream: bool = True,
) -> EvalReport:
    """Every applicable metric of `sae` on `subject`'s `split`. Cost: one encode+decode pass
    over the split, plus probes on <= 8192 sampled rows and the subject's downstream pass."""
    started = time.perf_counter()
    if sae.d_in != subject.d_in:
        raise UserError(
            f"the SAE reads {sae.d_in}-dim activations but subject {subject.name!r} has d_in={subject.d_in}: "
            "use the subject (and layer) it was trained on"
        )
    sae = sae.eval()
    device = sae.W_enc.device
    acts = subject.activations(split)
    stats = ReconstructionStats(sae.d_in, sae.d_sae)
    labels = subject.labels(split)
    top = TopActivations(sae.d_sae) if labels else None
    for start in range(0, acts.shape[0], chunk):
        x = acts[start : start + chunk].to(device, torch.float32)
        latents = sae.encode(x)
        stats.add(x, sae.decode(latents), latents)
        if top is not None:
            top.add(latents, start)
    metrics = stats.metrics()
    details: dict[str, Any] = {"split": split}

    truth = subject.ground_truth()
    if truth is not None:
        metrics |= ground_truth_metrics(sae.W_dec.detach().cpu(), truth)

    if labels and top is not None:
        train_labels = subject.labels("train")
        train_acts = subject.activations("train")
        train_rows = _rows(train_acts.shape[0], PROBE_ROWS, seed)
        test_rows = _rows(acts.shape[0], PROBE_ROWS, seed + 1)
        train_raw = train_acts[train_rows].float()
        test_raw = acts[test_rows].float()
        train_probe_labels = {k: v[train_rows] for k, v in train_labels.items()}
        test_probe_labels = {k: v[test_rows] for k, v in labels.items()}
        summary, per_task = sparse_probing(
            encode_in_chunks(sae, train_raw, chunk),
            train_raw,
            train_probe_labels,
            encode_in_chunks(sae, test_raw, chunk),
            test_raw,
            test_probe_labels,
            raw_scores=cached_raw_probe_scores(train_raw, train_probe_labels, test_raw, test_probe_labels),
        )
        metrics |= summary
        details["sparse_probing_tasks"] = per_task
        metrics |= monosemanticity(top, labels)

    if downstream:

        def reconstruct(batch: Tensor) -> Tensor:
            return sae(batch.to(device, torch.float32)).to(batch.dtype)

        metrics |= {k: float(v) for k, v in subject.downstream(reconstruct, split).items()}
    return EvalReport(eval_inputs=stats.n, metrics=metrics, details=details, seconds=time.perf_counter() - started)

"""The SAE trainer: one loop for every architecture.

Recipe (all of it in `TrainConfig`): inputs are scaled by one constant so that
E||s x||^2 = d_in (the scale is folded into the returned weights, so the result acts
on raw activations); decoder rows start as random directions and the encoder as the
decoder's transpose; b_dec starts at the geometric median of a sample of scaled
inputs; Adam with linear lr warmup and final linear decay; linear warmup of the
sparsity coefficient; for unit-norm architectures the decoder-row-parallel part of
the gradient is removed before each step and rows are renormalised after it;
latents that have not fired on the last `dead_after_inputs` inputs are marked dead
(AuxK uses the mask). Batches come from a fixed permutation per epoch, derived from
(seed, epoch), so a run resumed from a checkpoint is bit-identical on CPU to one
that never stopped.

Checkpoints are a directory with `state.safetensors` (model, Adam moments, dead
counters) and `state.json` (step, configs, scale, log) — never pickle.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from interpgym.core.errors import UserError, require
from interpgym.core.progress import progress_bar
from interpgym.core.seeding import derived_seed, generator
from interpgym.core.threads import cpu_threads
from interpgym.sae.architectures import SparseAutoencoder, StepContext, TrainOutput, build_sae
from interpgym.sae.config import SAEConfig, TrainConfig

CHECKPOINT_WEIGHTS = "state.safetensors"
CHECKPOINT_META = "state.json"


@dataclass
class TrainResult:
    """A trained SAE (inference form, input scale folded in, on CPU) and how it was made."""

    sae: SparseAutoencoder
    sae_cfg: SAEConfig
    train_cfg: TrainConfig
    input_scale: float
    log: list[dict[str, float]] = field(default_factory=list)
    train_dead_frac: float = 0.0
    wall_seconds: float = 0.0
    inputs_per_second: float = 0.0

    def metadata(self) -> dict[str, Any]:
        """JSON-able description of the run (saved next to the weights)."""
        return {
            "sae_config": self.sae_cfg.to_dict(),
            "train_config": self.train_cfg.to_dict(),
            "resolved_lr": self.train_cfg.resolved_lr(self.sae_cfg.d_sae),
            "input_scale_folded": self.input_scale,
            "train_dead_frac": self.train_dead_frac,
            "wall_seconds": self.wall_seconds,
            "inputs_per_second": self.inputs_per_second,
            "log": self.log,
        }


def geometric_median(points: Float[Tensor, "n d"], iters: int = 100, tol: float = 1e-6) -> Float[Tensor, " d"]:
    """Weiszfeld's algorithm: the point minimising the sum of Euclidean distances to `points`.

    Starts at the mean; stops after `iters` iterations or when the step is below
    `tol` times the data scale. Cost: O(iters * n * d).
    """
    points = points.double()
    median = points.mean(0)
    scale = points.std().item() + 1e-12
    for _ in range(iters):
        distances = (points - median).norm(dim=1).clamp_min(1e-12 * scale)
        weights = 1.0 / distances
        updated = (weights[:, None] * points).sum(0) / weights.sum()
        if (updated - median).norm() < tol * scale:
            median = updated
            break
        median = updated
    return median.float()


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr at `step`: linear warmup, flat, linear decay to 0 at the end."""
    warmup = int(cfg.lr_warmup_frac * cfg.steps)
    decay = int(cfg.lr_decay_frac * cfg.steps)
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    decay_start = cfg.steps - decay
    if decay > 0 and step >= decay_start:
        return max(0.0, (cfg.steps - step) / decay)
    return 1.0


def sparsity_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the sparsity coefficient at `step`: linear from ~0 to 1 over the warmup."""
    warmup = int(cfg.sparsity_warmup_frac * cfg.steps)
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


class _BatchOrder:
    """Row indices of every step: epoch e uses randperm(n) seeded by (seed, e); the tail is dropped."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.steps_per_epoch = n // batch_size
        self._epoch = -1
        self._perm: Tensor | None = None

    def rows(self, step: int) -> Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._perm = torch.randperm(self.n, generator=generator(derived_seed(self.seed, epoch + 1)))
            self._epoch = epoch
        assert self._perm is not None
        return self._perm[position * self.batch_size : (position + 1) * self.batch_size]


def _sample_rows(n: int, count: int, seed: int) -> Tensor:
    if n <= count:
        return torch.arange(n)
    return torch.randperm(n, generator=generator(seed))[:count].sort().values


def input_scale_for(sample: Float[Tensor, "n d"]) -> float:
    """The constant s with E||s x||^2 = d over `sample` (Anthropic's normalisation)."""
    mean_sq = sample.double().pow(2).sum(1).mean().item()
    require(math.isfinite(mean_sq) and mean_sq > 0, "training activations are all zero or not finite: cannot train an SAE on them")
    return math.sqrt(sample.shape[1] / mean_sq)


@torch.no_grad()
def _project_out_parallel_grad(W_dec: Tensor) -> None:
    if W_dec.grad is None:
        return
    parallel = (W_dec.grad * W_dec).sum(1, keepdim=True)
    W_dec.grad.sub_(parallel * W_dec)


@torch.no_grad()
def _normalise_rows(W_dec: Tensor) -> None:
    W_dec.div_(W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))


def train_step(sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, x: Float[Tensor, "b d_in"], ctx: StepContext) -> TrainOutput:
    """One optimisation step on the batch `x`: loss, backward, Adam, decoder-norm upkeep, `after_step`.

    For unit-norm architectures the gradient component parallel to each decoder row is
    removed before the step and the rows are renormalised after it. Returns the step's
    `TrainOutput` (loss parts and firing statistics).
    """
    out = sae.training_loss(x, ctx)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    if sae.unit_norm_decoder:
        _project_out_parallel_grad(sae.W_dec)
    optimizer.step()
    if sae.unit_norm_decoder:
        _normalise_rows(sae.W_dec.data)
    sae.after_step(out, ctx)
    return out


def _save_checkpoint(
    directory: Path, sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, inputs_since_fired: Tensor, meta: dict[str, Any]
) -> None:
    """Write the checkpoint atomically (temp dir + rename)."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in sae.state_dict().items()}
    names = [n for n, _ in sae.named_parameters()]
    for name in names:
        state = optimizer.state.get(dict(sae.named_parameters())[name], {})
        for key, value in state.items():
            tensors[f"adam.{name}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["trainer.inputs_since_fired"] = inputs_since_fired.cpu().contiguous()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file(tensors, str(tmp / CHECKPOINT_WEIGHTS))
        (tmp / CHECKPOINT_META).write_text(json.dumps(meta, indent=1, allow_nan=False))
        old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_checkpoint(directory: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    try:
        meta = json.loads((directory / CHECKPOINT_META).read_text())
        tensors = load_file(str(directory / CHECKPOINT_WEIGHTS))
    except (OSError, ValueError, SafetensorError) as exc:
        raise UserError(f"checkpoint {directory} is unreadable ({exc}); delete it to start over") from exc
    return tensors, meta


def train_sae(
    activations: Float[Tensor, "n d_in"],
    sae_cfg: SAEConfig,
    train_cfg: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    checkpoint_dir: str | Path | None = None,
    stop_after: int | None = None,
    progress: bool = False,
    description: str = "training SAE",
) -> TrainResult:
    """Train an SAE on `activations` (rows = inputs) and return it in inference form.

    With `checkpoint_dir`, a checkpoint there (same configs) is resumed from, and one
    is written every `train_cfg.checkpoint_every` steps and when `stop_after` steps
    (simulated interruption) are reached; `stop_after` returns the partially trained
    SAE. Deterministic on CPU given (activations, configs). Cost: `steps` forward and
    backward passes of batch `batch_size`. On CPU it runs on `train_cfg.cpu_threads` threads.
    """
    with cpu_threads(train_cfg.cpu_threads, device):
        return _train(
            activations,
            sae_cfg,
            train_cfg,
            device=device,
            checkpoint_dir=checkpoint_dir,
            stop_after=stop_after,
            progress=progress,
            description=description,
        )


def _train(
    activations: Tensor,
    sae_cfg: SAEConfig,
    train_cfg: TrainConfig,
    *,
    device: torch.device | str,
    checkpoint_dir: str | Path | None,
    stop_after: int | None,
    progress: bool,
    description: str,
) -> TrainResult:
    sae_cfg.validate()
    train_cfg.validate()
    require(activations.ndim == 2, f"activations must be a 2-d (inputs x d_in) tensor (got shape {tuple(activations.shape)})")
    require(activations.shape[1] == sae_cfg.d_in, f"activations have width {activations.shape[1]} but the SAE expects d_in={sae_cfg.d_in}")
    require(
        activations.shape[0] >= train_cfg.batch_size,
        f"need at least batch_size={train_cfg.batch_size} training inputs (got {activations.shape[0]}): lower the batch size",
    )
    device = torch.device(device)
    started = time.perf_counter()

    sae = build_sae(sae_cfg)
    sample = activations[_sample_rows(activations.shape[0], train_cfg.geometric_median_rows, train_cfg.seed)].float()
    require(bool(torch.isfinite(sample).all()), "training activations contain NaN or inf")
    scale = input_scale_for(sample)
    sae.initialize(generator(train_cfg.seed), b_dec=geometric_median(sample * scale))
    sae.to(device)
    base_lr = train_cfg.resolved_lr(sae_cfg.d_sae)
    optimizer = torch.optim.Adam(
        sae.parameters(), lr=base_lr, betas=(train_cfg.beta1, train_cfg.beta2), fused=device.type in {"cpu", "cuda"}
    )
    inputs_since_fired = torch.zeros(sae_cfg.d_sae, dtype=torch.long, device=device)
    start_step = 0
    log: list[dict[str, float]] = []
    meta_identity = {"sae_config": sae_cfg.to_dict(), "train_config": train_cfg.to_dict()}

    checkpoint = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if checkpoint is not None and (checkpoint / CHECKPOINT_META).exists():
        tensors, meta = _load_checkpoint(checkpoint)
        require(
            meta.get("sae_config") == meta_identity["sae_config"] and meta.get("train_config") == meta_identity["train_config"],
            f"checkpoint {checkpoint} was made with different configs: delete it or use another --checkpoint-dir",
        )
        sae.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        params = dict(sae.named_parameters())
        for name, param in params.items():
            keys = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"adam.{name}.")}
            if keys:
                optimizer.state[param] = {
                    key: (value.to(device) if key != "step" else value.to(torch.float32)) for key, value in keys.items()
                }
        inputs_since_fired = tensors["trainer.inputs_since_fired"].to(device)
        start_step = int(meta["step"])
        log = list(meta.get("log", []))
        scale = float(meta["input_scale"])

    order = _BatchOrder(activations.shape[0], train_cfg.batch_size, train_cfg.seed)
    log_every = max(1, train_cfg.steps // 50)
    end_step = train_cfg.steps if stop_after is None else min(train_cfg.steps, stop_after)
    target_coeff = sae.sparsity_coeff
    bar = progress_bar(enabled=progress)
    dead_mask = inputs_since_fired >= train_cfg.dead_after_inputs

    def checkpoint_now(step: int) -> None:
        if checkpoint is not None:
            meta = meta_identity | {"step": step, "input_scale": scale, "log": log}
            _save_checkpoint(checkpoint, sae, optimizer, inputs_since_fired, meta)

    with bar:
        task = bar.add_task(description, total=train_cfg.steps, completed=start_step)
        for step in range(start_step, end_step):
            rows = order.rows(step)
            x = activations[rows].to(device=device, dtype=torch.float32, non_blocking=True) * scale
            for group in optimizer.param_groups:
                group["lr"] = base_lr * lr_factor(step, train_cfg)
            ctx = StepContext(step=step, sparsity_coeff=target_coeff * sparsity_factor(step, train_cfg), dead_mask=dead_mask)
            out = train_step(sae, optimizer, x, ctx)
            with torch.no_grad():
                inputs_since_fired.add_(x.shape[0]).masked_fill_(out.fired, 0)
                dead_mask = inputs_since_fired >= train_cfg.dead_after_inputs
            if step % log_every == 0 or step == train_cfg.steps - 1:
                entry = {"step": step, "loss": out.loss.item(), "l0": out.l0.item()}
                entry |= {k: v.item() for k, v in out.parts.items()}
                entry["dead_frac"] = dead_mask.float().mean().item()
                require(
                    math.isfinite(entry["loss"]),
                    f"training diverged (loss {entry['loss']} at step {step}): lower --lr or the sparsity coefficient",
                )
                log.append(entry)
                bar.update(task, completed=step + 1)
            if train_cfg.checkpoint_every and (step + 1) % train_cfg.checkpoint_every == 0 and step + 1 < end_step:
                checkpoint_now(step + 1)
        bar.update(task, completed=end_step)
    if stop_after is not None and end_step < train_cfg.steps:
        checkpoint_now(end_step)

    wall = time.perf_counter() - started
    trained = copy.deepcopy(sae).cpu().eval()
    trained.fold_input_scale(scale)
    for param in trained.parameters():
        param.requires_grad_(False)
    done = end_step - start_step
    return TrainResult(
        sae=trained,
        sae_cfg=sae_cfg,
        train_cfg=train_cfg,
        input_scale=scale,
        log=log,
        train_dead_frac=float(dead_mask.float().mean()),
        wall_seconds=wall,
        inputs_per_second=done * train_cfg.batch_size / wall if wall > 0 else 0.0,
    )

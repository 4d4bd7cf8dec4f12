"""SAE training cost, interpgym beside SAELens in one process: per step with AuxK live, AuxK alone, and a full toy run.

Three measurements (`--parts step,auxk,run`), each ours beside a reference run in the
same process on the same inputs, with one intra-op thread each (`--threads`):

* `step`: seconds per `topk` training step, after `--warmup` untimed steps, with a fixed
  `--dead-frac` of the latents marked dead so that AuxK runs on both sides. Ours is
  `interpgym.sae.trainer.train_step` (plus its dead-latent bookkeeping); SAELens' is its
  `SAETrainer._train_step` (TopKTrainingSAE at its defaults: rescaled decoder norms, AuxK
  coefficient 1, gradient clipping; its dead mask pinned to the same latents). Both CPU
  (process) time and wall time are reported; CPU time is the less load-sensitive one.
* `auxk`: the AuxK loss alone (choose the dead latents' top-k_aux, loss, backward) as it is
  now (only the dead columns are searched) and as first written (a dense top-k over the
  whole batch x width matrix): the before/after of making AuxK cheap.
* `run`: a full training run on the toy subject at our defaults (width 512, k 5, 3000
  steps of 1024, lr 1e-2) with each trainer, timed end to end as a user pays it (set-up
  included) in process CPU time, and its quality on the held-out test split by *our*
  metrics (MCC against the true features, FVU, L0, dead fraction). SAELens runs its
  `SAETrainer` with the same steps, batch, lr and input normalisation (E||x||^2 = d_in);
  its result is saved with `save_inference_model` and read through interpgym's loader.

Usage: PYTHONPATH=src python benchmarks/sae_throughput.py [--parts step,auxk,run]
[--d-in 256] [--width 4096] [--k 32] [--batch 1024] [--dead-frac 0.5] [--warmup 5]
[--steps 20] [--run-steps 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.core.seeding import generator
from interpgym.sae import SAEConfig, TrainConfig, build_sae, evaluate_sae, load_sae, train_sae
from interpgym.sae.architectures import StepContext
from interpgym.sae.architectures.functional import aux_k_loss
from interpgym.sae.architectures.sparse_ops import Coordinates, gather_pre, sparse_decode
from interpgym.sae.trainer import train_step
from interpgym.subjects.toy_superposition import ToyConfig, ToySubject


def _timed(fn: Callable[[], object], warmup: int, steps: int) -> dict[str, float]:
    """Per-call CPU and wall seconds of `fn` over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        fn()
    return {"cpu_s": (time.process_time() - cpu) / steps, "wall_s": (time.perf_counter() - wall) / steps}


def _batches(acts: torch.Tensor, batch: int) -> Callable[[], torch.Tensor]:
    order = torch.randperm(acts.shape[0], generator=generator(0))
    position = [0]

    def next_batch() -> torch.Tensor:
        if position[0] + batch > acts.shape[0]:
            position[0] = 0
        rows = order[position[0] : position[0] + batch]
        position[0] += batch
        return acts[rows]

    return next_batch


def step_ours(acts: torch.Tensor, args: argparse.Namespace, dead: torch.Tensor) -> dict[str, float]:
    sae = build_sae(SAEConfig(arch="topk", d_in=acts.shape[1], d_sae=args.width, k=args.k))
    sae.initialize(generator(0))
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-3, fused=True)
    inputs_since_fired = torch.zeros(args.width, dtype=torch.long)
    next_batch = _batches(acts, args.batch)

    def step() -> None:
        out = train_step(sae, optimizer, next_batch(), StepContext(step=0, sparsity_coeff=0.0, dead_mask=dead))
        with torch.no_grad():
            inputs_since_fired.add_(args.batch).masked_fill_(out.fired, 0)

    return _timed(step, args.warmup, args.steps)


def _saelens_topk(d_in: int, width: int, k: int, **cfg: Any):
    from sae_lens.registry import get_sae_training_class

    sae_cls, cfg_cls = get_sae_training_class("topk")
    return sae_cls(cfg_cls(d_in=d_in, d_sae=width, k=k, **cfg))


def step_saelens(acts: torch.Tensor, args: argparse.Namespace, dead: torch.Tensor) -> dict[str, float]:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    class PinnedDeadTrainer(SAETrainer):
        @property
        def dead_neurons(self) -> torch.Tensor:
            return dead

    torch.manual_seed(0)
    sae = _saelens_topk(acts.shape[1], args.width, args.k)
    next_batch = _batches(acts, args.batch)
    total = (args.warmup + args.steps + 1) * args.batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = PinnedDeadTrainer(
            cfg=SAETrainerConfig(total_training_samples=total, train_batch_size_samples=args.batch, lr=1e-3, lr_end=1e-4),
            sae=sae,
            data_provider=iter(()),
        )
    return _timed(lambda: trainer._train_step(sae, next_batch()), args.warmup, args.steps)


def _aux_k_dense_choice(x, x_hat, centered, pre, W_enc, b_enc, W_dec, dead, aux_coeff):
    """AuxK as first written: the dead latents chosen by a top-k over the whole batch x width matrix."""
    n_dead = int(dead.sum())
    d_in = W_dec.shape[1]
    k_aux = max(1, min(d_in // 2, n_dead))
    scale = min(1.0, n_dead / max(1, d_in // 2))
    with torch.no_grad():
        indices = torch.where(dead, pre, torch.finfo(pre.dtype).min).topk(k_aux, dim=-1, sorted=False).indices
    coords = Coordinates.from_row_topk(indices, W_dec.shape[0])
    values = gather_pre(centered, W_enc, b_enc, pre, coords).relu()
    loss = (sparse_decode(values, coords, W_dec) - (x - x_hat).detach()).pow(2).sum(-1).mean()
    return {"aux_k": aux_coeff * scale * loss}


def auxk_before_after(acts: torch.Tensor, args: argparse.Namespace, dead: torch.Tensor) -> dict[str, dict[str, float]]:
    sae = build_sae(SAEConfig(arch="topk", d_in=acts.shape[1], d_sae=args.width, k=args.k))
    sae.initialize(generator(0))
    x = acts[: args.batch]
    centered = (x - sae.b_dec).detach()
    with torch.no_grad():
        pre = centered @ sae.W_enc + sae.b_enc
        x_hat = torch.zeros_like(x)
    out = {}
    for name, fn in (("now", aux_k_loss), ("first_written", _aux_k_dense_choice)):
        def once(fn=fn) -> None:
            loss = fn(x, x_hat, centered, pre, sae.W_enc, sae.b_enc, sae.W_dec, dead, 1 / 32)["aux_k"]
            loss.backward()
            sae.zero_grad(set_to_none=True)

        out[name] = _timed(once, args.warmup, args.steps)
    return out


def full_run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """A full toy training run with each trainer: end-to-end process CPU time and held-out quality."""
    from sae_lens.config import SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    toy = ToySubject(ToyConfig())
    acts = toy.activations("train")
    width, k, lr = toy.sae_defaults.width, toy.sae_defaults.k, toy.sae_defaults.lr
    rows: dict[str, dict[str, Any]] = {}

    cpu, wall = time.process_time(), time.perf_counter()
    sae_cfg = SAEConfig(arch="topk", d_in=toy.d_in, d_sae=width, k=k)
    ours = train_sae(acts, sae_cfg, TrainConfig(steps=args.run_steps, batch_size=1024, lr=lr))
    rows["interpgym"] = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "sae": ours.sae}

    torch.manual_seed(0)
    cpu, wall = time.process_time(), time.perf_counter()
    sae = _saelens_topk(toy.d_in, width, k, normalize_activations="expected_average_only_in")
    next_batch = _batches(acts, 1024)
    trainer_cfg = SAETrainerConfig(total_training_samples=args.run_steps * 1024, train_batch_size_samples=1024, lr=lr, lr_end=lr / 10,
                                   n_batches_for_norm_estimate=8)

    def provider():
        while True:
            yield next_batch()

    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=provider()).fit()
    rows["saelens"] = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
    with tempfile.TemporaryDirectory() as directory:
        sae.save_inference_model(directory)
        rows["saelens"]["sae"] = load_sae(directory).sae
    for row in rows.values():
        metrics = evaluate_sae(row.pop("sae"), toy).metrics
        row.update({key: metrics[key] for key in ("mcc", "fvu", "l0", "dead_frac")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="step,auxk,run")
    parser.add_argument("--d-in", type=int, default=256)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--dead-frac", type=float, default=0.5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--run-steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parts = [p.strip() for p in args.parts.split(",")]
    result: dict[str, Any] = {"config": vars(args) | {"threads": torch.get_num_threads()}}
    table = Table(title="SAE training cost, interpgym vs reference (seconds; shared machine: compare within a row)")
    for column in ("measure", "interpgym / now", "reference", "ratio (ref / ours)"):
        table.add_column(column, justify="left" if column == "measure" else "right")

    if "step" in parts or "auxk" in parts:
        toy = ToyConfig(n_features=8 * args.d_in, d_in=args.d_in, mean_l0=16, n_train=max(32768, args.batch * 8), n_val=8, n_test=8)
        acts = ToySubject(toy).activations("train")
        dead = torch.rand(args.width, generator=generator(1)) < args.dead_frac
    if "step" in parts:
        ours, theirs = step_ours(acts, args, dead), step_saelens(acts, args, dead)
        result["step"] = {"interpgym": ours, "saelens": theirs, "dead_latents": int(dead.sum())}
        for key in ("cpu_s", "wall_s"):
            table.add_row(f"step {key} (topk, AuxK live)", f"{ours[key]:.4f}", f"{theirs[key]:.4f}", f"{theirs[key] / ours[key]:.2f}x")
    if "auxk" in parts:
        auxk = auxk_before_after(acts, args, dead)
        result["auxk"] = auxk
        for key in ("cpu_s", "wall_s"):
            table.add_row(f"AuxK alone {key} (ref: first written)", f"{auxk['now'][key]:.4f}", f"{auxk['first_written'][key]:.4f}",
                          f"{auxk['first_written'][key] / auxk['now'][key]:.2f}x")
    if "run" in parts:
        run = full_run(args)
        result["run"] = run
        for key in ("cpu_s", "wall_s", "mcc", "fvu", "l0", "dead_frac"):
            ratio = f"{run['saelens'][key] / run['interpgym'][key]:.2f}x" if key.endswith("_s") else ""
            table.add_row(f"toy run {key} ({args.run_steps} steps)", f"{run['interpgym'][key]:.4g}", f"{run['saelens'][key]:.4g}", ratio)
    Console().print(table)
    if args.json:
        write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()

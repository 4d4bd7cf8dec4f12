"""Prove a model's training checkpoints, serially or in a pool of worker processes.

Each checkpoint is proved independently (brute force + strategies + audit, one intra-op
thread), so checkpoints can run in separate processes. The result is the same list of
stage dicts in step order either way: every proof is deterministic on one CPU thread, so
bounds, FLOPs and every other number except the measured wall times are identical to
the serial run (tested). A checkpoint bit-identical to the final weights reuses the
final model's stage (`same_weights`) and is never sent to a worker.

Workers are started with the `spawn` method (no fork of a process that holds torch
threads); each warms up once (`runner.warm_up`) so its first proof's wall time does not
include library start-up, and receives only the model (small weights) and a step; it
returns the stage's JSON rows, never the per-input tensors.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from rich.progress import Progress

from interpgym.core.errors import UserError
from interpgym.proofs.brute_force import brute_force
from interpgym.proofs.cubic import cubic
from interpgym.subjects.maxk import MaxKWeights

# (weights, names, advance=...) -> {"exact_accuracy" or "exact_loss": float, "results": [rows]}; a module-level function
StageFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class CheckpointJob:
    """Prove one checkpoint `step` of `model` with `stage` (picklable: a worker runs it)."""

    stage: StageFn
    names: tuple[str, ...]

    def __call__(self, model: Any, step: int) -> dict[str, Any]:
        return self.stage(model.checkpoint(step), list(self.names), advance=None)


def warm_up() -> None:
    """Run the proofs once on a tiny random model so one-time library start-up is not timed."""
    generator = torch.Generator().manual_seed(0)
    tiny = MaxKWeights.random(vocab=4, k=2, d_model=4, d_head=4, generator=generator)
    brute_force(tiny)
    cubic(tiny)


def same_weights(a: Any, b: Any) -> bool:
    """Whether two weight sets (anything with `as_dict()`) are bit-identical: a checkpoint equal to
    the final weights reuses the final model's proofs instead of proving them again."""
    x, y = a.as_dict(), b.as_dict()
    return x.keys() == y.keys() and all(torch.equal(x[name], y[name]) for name in x)


def prove_with_bar(bar: Progress, label: str, w: Any, names: list[str], prove_fn: Callable[..., Any]) -> Any:
    """`prove_fn(w, names, advance=...)` (accuracy, loss or multi-head proofs) with a task on `bar` that
    advances over the v^K inputs brute force visits, removed when done."""
    task = bar.add_task(label, total=w.vocab**w.k)
    try:
        return prove_fn(w, names, advance=lambda n: bar.advance(task, n))
    finally:
        bar.remove_task(task)


def _worker_start() -> None:
    torch.set_num_threads(1)
    warm_up()


def check_jobs(jobs: int) -> None:
    """`UserError` unless `jobs` >= 1."""
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1 (got {jobs})")


def prove_checkpoints(
    model: Any, steps: list[int], final: dict[str, Any], stage: StageFn, names: list[str], bar: Progress, *, jobs: int = 1,
) -> list[dict[str, Any]]:
    """`{"step": step, **stage}` for every step in `steps` (in order), proving with `jobs` processes.

    `final` is the final weights' stage (reused for a checkpoint equal to them). The bar
    gets an overall task (and, serially, one per checkpoint over its inputs)."""
    check_jobs(jobs)
    overall = bar.add_task("checkpoints", total=len(steps))
    stages: dict[int, dict[str, Any]] = {}
    to_prove = []
    for step in steps:
        if same_weights(model.checkpoint(step), model.weights):
            stages[step] = final
            bar.advance(overall)
        else:
            to_prove.append(step)
    if jobs == 1 or len(to_prove) <= 1:
        for step in to_prove:
            stages[step] = prove_with_bar(bar, f"step {step}", model.checkpoint(step), names, stage)
            bar.advance(overall)
    else:
        job = CheckpointJob(stage=stage, names=tuple(names))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(to_prove)), mp_context=context, initializer=_worker_start) as pool:
            futures = {step: pool.submit(job, model, step) for step in to_prove}
            for step, future in futures.items():
                stages[step] = future.result()
                bar.advance(overall)
    return [{"step": step, **stages[step]} for step in steps]


__all__ = ["prove_checkpoints", "prove_with_bar", "same_weights", "warm_up", "CheckpointJob", "check_jobs", "StageFn"]

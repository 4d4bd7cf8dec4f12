"""`demo/mean`: estimate a hidden vector from noisy samples. A seconds-fast task for tests and demos.

The hidden mean mu (16 dims) has a random direction drawn from the installation secret
and a fixed norm (mean(mu**2) = 1), so the gap between the starting (w = 0) and the
reference solution is the same on every installation (about 0.94); with an unscaled
Gaussian mu it varied with the secret and fell below 0.5 on about 8% of installations. The solution sees
64 noisy samples (`data/train.safetensors`, key `x`) and writes `artifact/answer.safetensors`
with `w` (16 floats). Score = -mean((w - t)^2) where t is the mean of 4096 fresh samples
of the split (val or test), held privately by the harness. Starting solution: w = 0;
reference: the plain sample mean.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from interpgym.core.seeding import generator
from interpgym.harness.secret import private_dir, private_seed
from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task

ID, VERSION, DIM, NOISE = "demo/mean", "3", 16, 2.0

INSTRUCTIONS = """\
# demo/mean — estimate a hidden vector

A hidden vector mu in R^16 generates samples x = mu + 2 * N(0, I).
`data/train.safetensors` holds 64 of them (tensor `x`, shape [64, 16]).

Write `artifact/answer.safetensors` (the directory is `$INTERPGYM_ARTIFACT_DIR`) with
one float tensor `w` of shape [16]: your estimate. The score is
`-mean((w - t)**2)`, with t the mean of 4096 held-out samples (higher is better).

You may edit `solution.py` only. `params.json` holds the search-space parameters
`shrink` (0..1: w = (1 - shrink) * estimate) and `trim` (0..0.4: fraction trimmed
from each tail per coordinate). Only `.safetensors` and `.json` files may be written
to the artifact directory.
"""

SOLUTION = """\
import json, os
import numpy as np
from safetensors.numpy import load_file, save_file

params = json.load(open("params.json"))
x = load_file("data/train.safetensors")["x"]
k = int(params["trim"] * len(x))
x_sorted = np.sort(x, axis=0)
estimate = x_sorted[k:len(x) - k].mean(axis=0)
w = (1.0 - params["shrink"]) * estimate
save_file({"w": w.astype(np.float32)}, os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "answer.safetensors"))
"""


def _mu() -> torch.Tensor:
    """The hidden vector: secret direction, norm sqrt(DIM) (so the task is equally hard everywhere)."""
    direction = torch.randn(DIM, generator=generator(private_seed(f"{ID}:mu")))
    return direction * (DIM**0.5 / direction.norm())


def _samples(n: int, purpose: str) -> torch.Tensor:
    gen = generator(private_seed(f"{ID}:{purpose}"))
    return _mu() + NOISE * torch.randn(n, DIM, generator=gen)


def _prepare_inputs(out: Path) -> None:
    save_file({"x": _samples(64, "train")}, str(out / "train.safetensors"))


def _prepare_private(out: Path) -> None:
    save_file({"val": _samples(4096, "val").mean(0), "test": _samples(4096, "test").mean(0)},
              str(out / "targets.safetensors"))


def _score(artifact: Artifact, split: Split, seed: int) -> Score:
    w = artifact.require_tensors("answer", ["w"])["w"]
    if tuple(w.shape) != (DIM,):
        raise InvalidSolution(f"w has shape {tuple(w.shape)}, expected ({DIM},)")
    target = load_file(str(private_dir(ID, VERSION, _prepare_private) / "targets.safetensors"))[split]
    mse = float(((w.double() - target.double()) ** 2).mean())
    return Score(value=-mse, metrics={"mse": mse})


def make_task() -> Task:
    return Task(
        id=ID, version=VERSION, title="Estimate a hidden vector from noisy samples (harness demo)",
        instructions=INSTRUCTIONS, editable_files={"solution.py": SOLUTION}, scorer=_score,
        prepare_inputs=_prepare_inputs,
        starting=Solution(params={"shrink": 1.0, "trim": 0.0}),
        reference=Solution(params={"shrink": 0.0, "trim": 0.0}),
        budgets=Budgets(trials=10, minutes=5.0, trial_timeout_s=30.0, trial_memory_mb=1024),
        search_space={"shrink": {"type": "float", "low": 0.0, "high": 1.0},
                      "trim": {"type": "float", "low": 0.0, "high": 0.4}},
        default_params={"shrink": 1.0, "trim": 0.0}, score_name="-MSE",
    )

"""`proofs/train-maxk`: train a max-of-K model that is as *provable* as possible, at full accuracy.

The solution changes the training recipe (optimiser settings, regularisation,
initialisation, data, steps; training runs inside the sandbox) and writes the trained
weights; the architecture is fixed (v = 64, K = 4, d_model = d_head = 32, one head, the
`maxk` subject's). The trusted scorer, in the harness process:

* loads `weights.safetensors` (names, exact shapes of the fixed architecture, finite;
  anything else is invalid);
* computes the exact accuracy itself (brute force over all 64^4 inputs, decided as the
  float32 model decides): invalid below 0.99;
* runs two fixed proofs, the cubic proof and the subcubic variant
  `eqke=mean+max_diff/direct=exact/attn=mean+diff`, with FLOPs counted; each must stay
  within a fixed FLOP budget (1.5x its cost on the starting model: the proofs' cost
  depends on the weights only through their numerical path, so this only catches a
  model forcing the log-space fallback);
* score = the mean of the two normalised certified bounds (bound / exact accuracy).

Everything is deterministic given the weights, so val and test give the same number;
results are cached per weights digest in the harness process.
"""

from __future__ import annotations

import functools
import hashlib

from interpgym.core.errors import UserError
from interpgym.core.threads import torch_threads
from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.harness.tasks.plots import metric_scatter
from interpgym.proofs.brute_force import brute_force
from interpgym.proofs.cubic import cubic
from interpgym.proofs.subcubic import STRATEGIES
from interpgym.subjects.maxk import WEIGHT_NAMES, MaxKConfig, MaxKWeights, train_maxk

ID, VERSION = "proofs/train-maxk", "1"
ARCH = MaxKConfig()  # v = 64, K = 4, d_model = d_head = 32; the paper's recipe
SUBCUBIC = "subcubic/eqke=mean+max_diff/direct=exact/attn=mean+diff"
MIN_ACCURACY = 0.99
FLOP_SLACK = 1.5

INSTRUCTIONS = f"""\
# proofs/train-maxk — train the max-of-K model to be provable

**Model (fixed).** A 1-layer, 1-head, attention-only transformer (no LayerNorm, zero
biases) reads K = {ARCH.k} tokens from a vocabulary of v = {ARCH.vocab} and predicts their
maximum at the last position; d_model = d_head = {ARCH.d_model}. Weights `W_E [v, d]`,
`W_pos [K, d]`, `W_Q, W_K, W_V [d, d]`, `W_O [d, d]`, `W_U [d, v]` (TransformerLens
conventions, head squeezed; forward: `interpgym.subjects.maxk.last_logits`).

**Goal.** Change the *training recipe* (optimiser, learning rate, weight decay,
regularisers, initialisation, data distribution, steps; not the architecture) so the
trained model is as provable as possible. The harness computes the exact accuracy over
all 64^4 inputs (invalid below {MIN_ACCURACY}) and the certified accuracy bound of two fixed
proofs: the cubic proof and `{SUBCUBIC}`. Score = the mean of the
two bounds divided by the exact accuracy (higher is better, at most 1).

**Artifact.** `$INTERPGYM_ARTIFACT_DIR/weights.safetensors` with exactly those seven
float tensors and shapes. Training runs inside the sandbox under the trial's time limit
(the paper's recipe takes well under a minute on one CPU thread).

You may edit `solution.py`; `params.json` holds the recipe knobs of parameter-only
agents (`lr`, `weight_decay`, `steps`, `seed`).
"""

SOLUTION = """\
\"\"\"proofs/train-maxk solution: train a max-of-K model with the recipe in params.json.\"\"\"
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, last_logits, train_loop

torch.set_num_threads(1)
params = json.load(open("params.json"))
config = dataclasses.replace(MaxKConfig(), lr=float(params["lr"]), weight_decay=float(params["weight_decay"]),
                             steps=int(params["steps"]), seed=int(params["seed"]), checkpoint_every=10**9)
init = MaxKWeights.random(config.vocab, config.k, config.d_model, config.d_head, torch.Generator().manual_seed(config.seed))
with tempfile.TemporaryDirectory() as tmp:
    train_loop(config, init.as_dict(), lambda p, tokens: last_logits(MaxKWeights(**p), tokens), Path(tmp), False, "training")
    shutil.copy(Path(tmp) / "weights.safetensors", os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "weights.safetensors"))
"""

PAPER = {"lr": 1e-3, "weight_decay": 0.01, "steps": 3000, "seed": 0}
# Reference: the paper's recipe without weight decay, measurably more provable (seeds 0-2;
# docs/proofs-theorems.md); larger decay, a larger lr or longer training were less provable.
REFERENCE = {"lr": 1e-3, "weight_decay": 0.0, "steps": 3000, "seed": 0}
SEARCH_SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 3.0},
    "steps": {"type": "int", "low": 500, "high": 8000},
    "seed": {"type": "int", "low": 0, "high": 1000},
}


def expected_shapes() -> dict[str, tuple[int, ...]]:
    v, k, d, dh = ARCH.vocab, ARCH.k, ARCH.d_model, ARCH.d_head
    return {"W_E": (v, d), "W_pos": (k, d), "W_Q": (d, dh), "W_K": (d, dh), "W_V": (d, dh), "W_O": (dh, d), "W_U": (d, v)}


def checked_weights(artifact: Artifact) -> MaxKWeights:
    """The artifact's weights, exactly the fixed architecture's names and shapes, finite float32 (else invalid)."""
    tensors = artifact.require_tensors("weights", list(WEIGHT_NAMES))
    extra = sorted(set(tensors) - set(WEIGHT_NAMES))
    if extra:
        raise InvalidSolution(f"weights.safetensors has unexpected tensors {extra}")
    for name, shape in expected_shapes().items():
        if tuple(tensors[name].shape) != shape:
            raise InvalidSolution(f"weights.safetensors: {name} has shape {tuple(tensors[name].shape)}, the fixed config needs {shape}")
    try:
        return MaxKWeights.from_dict({n: tensors[n].float() for n in WEIGHT_NAMES}, source="weights.safetensors")
    except UserError as exc:
        raise InvalidSolution(str(exc)) from exc


@functools.cache
def flop_budgets() -> dict[str, int]:
    """FLOP_SLACK x each fixed proof's cost on the starting (paper-recipe) model."""
    w = train_maxk(ARCH, progress=False).weights
    with torch_threads(1):
        return {"cubic": int(FLOP_SLACK * cubic(w).flops), SUBCUBIC: int(FLOP_SLACK * STRATEGIES[SUBCUBIC](w).flops)}


@functools.cache
def _evaluate(digest: str, weights: MaxKWeights) -> dict:
    del digest  # the cache key
    with torch_threads(1):
        accuracy = brute_force(weights).bound
        proofs = {"cubic": cubic(weights), SUBCUBIC: STRATEGIES[SUBCUBIC](weights)}
    return {"accuracy": accuracy, **{name: (r.bound, int(r.flops)) for name, r in proofs.items()}}


def _digest(w: MaxKWeights) -> str:
    digest = hashlib.sha256()
    for name in WEIGHT_NAMES:
        digest.update(getattr(w, name).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _score(artifact: Artifact, split: Split, seed: int) -> Score:
    w = checked_weights(artifact)
    result = _evaluate(_digest(w), w)
    accuracy = result["accuracy"]
    if accuracy < MIN_ACCURACY:
        raise InvalidSolution(f"exact accuracy {accuracy:.5f} is below {MIN_ACCURACY}: train to full accuracy first")
    budgets = flop_budgets()
    metrics: dict = {"exact_accuracy": accuracy}
    normalised = []
    for name in ("cubic", SUBCUBIC):
        bound, flops = result[name]
        if flops > budgets[name]:
            raise InvalidSolution(f"{name} verification costs {flops:,} FLOPs on these weights, over its budget {budgets[name]:,}")
        key = "cubic" if name == "cubic" else "subcubic"
        metrics.update({f"{key}_bound": bound, f"{key}_normalized": bound / accuracy, f"{key}_flops": flops})
        normalised.append(bound / accuracy)
    return Score(value=sum(normalised) / len(normalised), metrics=metrics)


def _prepare_inputs(out) -> None:
    (out / "README.txt").write_text("No data: train from scratch; the forward is interpgym.subjects.maxk.last_logits.\n")


def make_task() -> Task:
    return Task(
        id=ID, version=VERSION, title="Train a max-of-K model whose accuracy is provable",
        instructions=INSTRUCTIONS, editable_files={"solution.py": SOLUTION}, scorer=_score, prepare_inputs=_prepare_inputs,
        starting=Solution(params=dict(PAPER)), reference=Solution(params=dict(REFERENCE)),
        budgets=Budgets(trials=8, minutes=30.0, trial_timeout_s=300.0, trial_memory_mb=2048),
        plots=metric_scatter("cubic_normalized", "subcubic_normalized", title="proofs/train-maxk: normalised certified bounds",
                             xlabel="cubic bound / accuracy", ylabel="subcubic bound / accuracy"),
        search_space=SEARCH_SPACE, default_params=dict(PAPER),
    )

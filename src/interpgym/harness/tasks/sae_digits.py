"""`sae/digits`: the best downstream accuracy with SAE-reconstructed activations at a fixed L0 budget.

The subject is the digits MLP (`interpgym.subjects.digits`) with its image split drawn
from the installation secret, so which images are validation/test (and the trained
weights, which depend on the train images) cannot be reproduced in the sandbox from
the public scikit-learn data. The solution sees the train split's site activations
and labels only. The trusted scorer encodes the split's activations with the agent's
SAE (loaded by interpgym's own loader), checks mean L0 <= `L0_BUDGET`, splices the
reconstruction into the classifier and scores its accuracy. Monosemanticity (purity
of each latent's top activations over the digit classes, chance-rescaled), FVU and
CE loss recovered are reported alongside.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from interpgym.harness.secret import private_seed
from interpgym.harness.task import Artifact, Budgets, Score, Solution, Split, Task
from interpgym.harness.tasks.plots import metric_scatter
from interpgym.harness.tasks.sae_common import SOLUTION, decode, encode_within_budget, load_checked_sae, sae_search_space
from interpgym.sae.metrics import TopActivations, fvu, monosemanticity
from interpgym.subjects.digits import DigitsConfig, DigitsSubject
from interpgym.subjects.digits import load as load_digits

ID, VERSION = "sae/digits", "2"
L0_BUDGET = 4.0
MAX_WIDTH = 1024

INSTRUCTIONS = f"""\
# sae/digits — downstream accuracy through a sparse bottleneck

**Model.** A small MLP (64 -> 64 -> 64 -> 10, ReLU) classifies scikit-learn's 8x8
handwritten digits (augmented by 1-pixel shifts). The SAE site is the post-ReLU
output of the first hidden layer (64 dims).

**Data.** `data/train.safetensors`: `activations` [n, 64] (float32) and `labels` [n]
(the digit, int64) of the train split. Which images are validation and test, and the
classifier's weights, are private.

**Goal.** Train an SAE such that, when the site's activations are replaced by the
SAE's reconstruction, the classifier's **accuracy** on held-out images is as high as
possible (higher is better), with **mean L0 <= {L0_BUDGET:g}** active latents per input
(over budget, width above {MAX_WIDTH}, or NaN = invalid). Reported too:
monosemanticity of the latents over digit classes, FVU, CE loss recovered.

**Artifact.** Write an SAE directory into `$INTERPGYM_ARTIFACT_DIR` exactly as
`interpgym.sae.storage.save_sae(dir, sae, meta, overwrite=True)` writes it; any
architecture in `interpgym.sae.architectures` works. Only `.json` and
`.safetensors` files are accepted.

You may change anything in `solution.py` (architecture, width, sparsity, training,
use of the labels). `params.json` holds the values chosen by parameter-only agents.
"""

SEARCH_SPACE = sae_search_space(width=(64, 1024), max_k=4)
STARTING = {"arch": "topk", "width": 128, "k": 4, "sparsity_coeff": 1.0, "lr": 1e-3, "steps": 100, "batch_size": 512}
REFERENCE = {"arch": "topk", "width": 128, "k": 4, "sparsity_coeff": 1.0, "lr": 1e-3, "steps": 1000, "batch_size": 512}


def digits_config() -> DigitsConfig:
    """The task's classifier: the default recipe with a secret image split."""
    return DigitsConfig(split_seed=private_seed(f"{ID}@{VERSION}:split"))


@functools.cache
def _subject(config: DigitsConfig) -> DigitsSubject:
    return load_digits(config=config)


def _prepare_inputs(out: Path) -> None:
    subject = _subject(digits_config())
    save_file({"activations": subject.activations("train").contiguous(),
               "labels": subject.labels("train")["digit"].contiguous()}, str(out / "train.safetensors"))
    (out / "info.json").write_text(json.dumps({"d_in": subject.d_in, "l0_budget": L0_BUDGET, "max_width": MAX_WIDTH,
                                               "classes": 10}, indent=1))


@torch.no_grad()
def _score(artifact: Artifact, split: Split, seed: int) -> Score:
    subject = _subject(digits_config())
    sae = load_checked_sae(artifact, subject.d_in, MAX_WIDTH)
    acts = subject.activations(split)
    encoded = encode_within_budget(sae, acts, L0_BUDGET, split)
    reconstruction = decode(sae, encoded.latents)
    downstream = subject.downstream(lambda _acts: reconstruction, split)
    top = TopActivations(sae.d_sae)
    top.add(encoded.latents, 0)
    metrics = {"accuracy": downstream["accuracy_spliced"], "accuracy_clean": downstream["accuracy_clean"],
               "ce_loss_recovered_zero": downstream.get("ce_loss_recovered_zero"),
               "ce_loss_recovered_mean": downstream.get("ce_loss_recovered_mean"),
               "l0": encoded.mean_l0, "l0_budget": L0_BUDGET, "fvu": fvu(acts, reconstruction),
               "width": sae.d_sae, "alive": int(encoded.alive.sum()), "arch": sae.arch, "eval_inputs": int(acts.shape[0]),
               **monosemanticity(top, subject.labels(split))}
    return Score(value=downstream["accuracy_spliced"], metrics=metrics)


def make_task() -> Task:
    return Task(
        id=ID, version=VERSION, title="Downstream digit accuracy through an SAE at L0 <= 4 (monosemanticity reported)",
        instructions=INSTRUCTIONS, editable_files={"solution.py": SOLUTION}, scorer=_score,
        prepare_inputs=_prepare_inputs, starting=Solution(params=STARTING), reference=Solution(params=REFERENCE),
        budgets=Budgets(trials=20, minutes=20.0, trial_timeout_s=180.0, trial_memory_mb=4096),
        plots=metric_scatter("monosemanticity", "accuracy", title="sae/digits: accuracy vs monosemanticity (val)",
                             xlabel="monosemanticity (base-rate lift)", ylabel="spliced accuracy (val)"),
        search_space=SEARCH_SPACE, default_params=STARTING,
    )

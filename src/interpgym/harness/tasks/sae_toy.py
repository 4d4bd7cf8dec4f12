"""`sae/toy`: recover the true features of the toy model of superposition.

The toy model (`interpgym.subjects.toy_superposition`, default shape: 256 features
in 64 dimensions, true mean L0 = 5) is instantiated with a seed derived from the
installation secret, so its true directions cannot be regenerated inside the
sandbox. The solution sees only the train split's activations and must write an SAE
in interpgym's SAELens-format directory layout (`cfg.json`, `sae_weights.safetensors`,
`interpgym_sae.json`, as `interpgym.sae.storage.save_sae` writes) into the artifact
directory. The trusted scorer loads it with `load_sae` (JSON + safetensors only) and
encodes the held-out split with interpgym's own architecture code:

* invalid if the mean L0 on the split exceeds the true mean L0 (5), if the width
  exceeds `MAX_WIDTH`, or if the weights are not finite;
* score = MCC between the decoder rows of the latents that fire on the split and the
  true directions (Hungarian matching on |cos|). Latents that never fire are left out,
  so unused decoder rows cannot pad the match.
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
from interpgym.harness.tasks.sae_common import (
    SOLUTION,
    decode,
    encode_within_budget,
    k_within_l0_budget,
    load_checked_sae,
    sae_search_space,
)
from interpgym.sae.metrics import fvu, ground_truth_metrics
from interpgym.subjects.toy_superposition import ToyConfig, ToySubject

ID, VERSION = "sae/toy", "2"
MAX_WIDTH = 1024

INSTRUCTIONS = f"""\
# sae/toy — recover the true features of a toy model of superposition

**Data.** A toy model of superposition generates activations x = sum_i a_i d_i in
R^64 from 256 unknown unit feature directions d_i. Each feature fires independently
with a Zipf-like rate (rates sum to 5: the *true mean L0* is 5) with magnitude
Uniform[0.5, 1.5]. `data/train.safetensors` holds the train split (tensor
`activations`, shape [131072, 64], float32); `data/info.json` repeats these facts.
The validation and test splits and the true directions are private.

**Goal.** Train a sparse autoencoder whose decoder recovers the true directions.

**Score** (higher is better, computed by the harness on held-out inputs):
MCC = mean over the 256 true features of |cos| to the decoder row matched to it by
the Hungarian algorithm, using only latents that fire at least once on the split.
The artifact is **invalid** (scored as a failure) if the SAE's mean L0 on the split
is above 5, its width is above {MAX_WIDTH}, or any weight is NaN/inf.

**Artifact.** Write an SAE directory into `$INTERPGYM_ARTIFACT_DIR` exactly as
`interpgym.sae.storage.save_sae(dir, sae, meta, overwrite=True)` writes it
(`cfg.json`, `sae_weights.safetensors`, `interpgym_sae.json`); any architecture
registered in `interpgym.sae.architectures` can be used (`topk`, `batchtopk`,
`relu`, `jumprelu`, `gated`, `matryoshka`). Only `.json` and `.safetensors` files
are accepted; nothing else you write is read.

**What you may change.** Everything in `solution.py`: architecture, width,
sparsity, optimiser, schedule, initialisation, even your own training loop, as long as
the result is saved in that format. `params.json` holds the values chosen by
parameter-only agents (see the search space in `interpgym tasks`); you may ignore it.
The run gets `$INTERPGYM_SEED`, one CPU thread by default, and a time and memory
limit; there is no network.
"""

# The top-k family only: its L0 is set by k, so the hard L0 budget is a constraint known
# before running. ReLU/JumpReLU SAEs reach a given L0 only through a calibrated penalty
# (the measurements are in docs/harness.md), so a parameter search over them spent most
# trials over budget; they remain open to agents that edit solution.py.
SEARCH_SPACE = sae_search_space(width=(128, 1024), max_k=8, max_steps=3000, archs=("topk", "batchtopk"))
L0_BUDGET = ToyConfig().mean_l0  # the toy model's true mean L0 (the seed does not change it)
STARTING = {"arch": "topk", "width": 256, "k": 5, "lr": 1e-3, "steps": 100, "batch_size": 1024}
# The best solution the project knows: what `interpgym sae train --subject toy --k 5` trains
# (top-k, the subject's default width 512 = twice the true features, its tuned lr 1e-2,
# 3000 steps): val MCC 0.9951 +- 0.0002 over seeds 0-2 (benchmarks/harness_references.py,
# benchmarks/results/references_sae_toy_3000.json; docs/harness_scale.md).
REFERENCE = {"arch": "topk", "width": 512, "k": 5, "lr": 1e-2, "steps": 3000, "batch_size": 1024}


def toy_config() -> ToyConfig:
    """The task's toy model: default shape, a 256-bit secret seed (all of it reaches the generators)."""
    return ToyConfig(seed=private_seed(f"{ID}@{VERSION}:subject"))


@functools.cache
def _subject(config: ToyConfig) -> ToySubject:
    return ToySubject(config)


def _prepare_inputs(out: Path) -> None:
    cfg = toy_config()
    save_file({"activations": _subject(cfg).activations("train").contiguous()}, str(out / "train.safetensors"))
    (out / "info.json").write_text(json.dumps({
        "d_in": cfg.d_in, "n_features": cfg.n_features, "true_mean_l0": cfg.mean_l0,
        "min_magnitude": cfg.min_magnitude, "max_magnitude": cfg.max_magnitude, "n_train": cfg.n_train,
    }, indent=1))


@torch.no_grad()
def _score(artifact: Artifact, split: Split, seed: int) -> Score:
    cfg = toy_config()
    subject = _subject(cfg)
    sae = load_checked_sae(artifact, cfg.d_in, MAX_WIDTH)
    acts = subject.activations(split)
    encoded = encode_within_budget(sae, acts, cfg.mean_l0, split)
    matched = ground_truth_metrics(sae.W_dec[encoded.alive].detach(), subject.ground_truth())
    metrics = {"mcc": matched["mcc"], "mmcs": matched["mmcs"], "frac_recovered": matched["frac_recovered"],
               "l0": encoded.mean_l0, "l0_budget": cfg.mean_l0, "fvu": fvu(acts, decode(sae, encoded.latents)),
               "width": sae.d_sae, "alive": int(encoded.alive.sum()), "arch": sae.arch, "eval_inputs": int(acts.shape[0])}
    return Score(value=matched["mcc"], metrics=metrics)


def make_task() -> Task:
    return Task(
        id=ID, version=VERSION, title="Recover the toy model's true features (MCC at L0 <= true L0)",
        instructions=INSTRUCTIONS, editable_files={"solution.py": SOLUTION}, scorer=_score,
        prepare_inputs=_prepare_inputs, starting=Solution(params=STARTING), reference=Solution(params=REFERENCE),
        budgets=Budgets(trials=20, minutes=20.0, trial_timeout_s=600.0, trial_memory_mb=4096),
        plots=metric_scatter("fvu", "mcc", title="sae/toy: MCC vs FVU of every ok trial (val)", xlabel="FVU (val)",
                             ylabel="MCC (val)"),
        search_space=SEARCH_SPACE, default_params=STARTING, constraints=(k_within_l0_budget(L0_BUDGET),),
        score_name="MCC",
    )

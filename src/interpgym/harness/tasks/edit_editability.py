"""`edit/editability`: change a small LM's training recipe so a fixed ROME editor edits it better, at equal capability.

The subject is `interpgym.subjects.fact_lm`: a Llama trained from scratch on templated
facts about made-up people mixed with Shakespeare. The solution trains it (inside the
sandbox) with any recipe (architecture size within bounds, the block it declares for
editing, optimiser, regulariser, data mix, steps) and writes
`weights.safetensors` (every parameter but the tied head) and `recipe.json` (the
`FactLMRecipe` it used). The trusted scorer, in the harness process:

* checks `recipe.json` (exactly the recipe's fields, numbers within `FactLMRecipe.validate`'s
  bounds) and the weights against that declared architecture (names, exact shapes,
  finite floats) before building anything;
* capability: fact recall over the whole world (rewrite template) must be at least the
  default recipe's minus `RECALL_MARGIN`, and the cross-entropy on the split's held-out
  plays at most the default recipe's times (1 + `LOSS_MARGIN`); otherwise invalid. The
  default recipe (= the starting solution) is trained once by the harness, cached;
* score = S (harmonic mean of ES, PS, NS) of `interpgym.editing.editability`'s fixed ROME
  editor at the declared edit layer, each of `N_EDITS` held-out requests edited alone:
  facts and counterfactual objects drawn from the installation secret, disjoint for val
  and test. Generation efficacy, recall and loss are reported beside it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import torch

from interpgym.core.errors import UserError
from interpgym.core.hashing import tensors_digest
from interpgym.core.threads import torch_threads
from interpgym.editing.editability import edit_requests, editability
from interpgym.harness.secret import private_seed
from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.harness.tasks.plots import metric_scatter
from interpgym.subjects.fact_lm import (
    FactLMRecipe,
    expected_shapes,
    fact_recall,
    fact_tokenizer,
    fact_world,
    heldout_loss,
    llama_config,
    train_fact_lm,
)
from interpgym.subjects.lm_loader import LanguageModel

ID, VERSION = "edit/editability", "1"
N_EDITS = 16
RECALL_MARGIN = 0.05  # absolute: recall >= default recipe's - 0.05
LOSS_MARGIN = 0.05  # relative: held-out loss <= default recipe's x 1.05

SOLUTION = """\
\"\"\"edit/editability solution: train the fact LM with the recipe in params.json, write weights and recipe.\"\"\"
import dataclasses
import json
import os

import torch
from safetensors.torch import save_file

from interpgym.subjects.fact_lm import FactLMRecipe, train_model, weights_dict

torch.set_num_threads(1)
params = json.load(open("params.json"))
recipe = dataclasses.replace(FactLMRecipe(), **params)
model = train_model(recipe, progress=False)
out = os.environ["INTERPGYM_ARTIFACT_DIR"]
save_file(weights_dict(model), os.path.join(out, "weights.safetensors"))
with open(os.path.join(out, "recipe.json"), "w") as handle:
    json.dump(dataclasses.asdict(recipe), handle)
"""

DEFAULT = {k: v for k, v in dataclasses.asdict(FactLMRecipe()).items() if k != "batch"}
# Reference: twice the MLP width, edited at block 0: S 0.892 / 0.938 (seeds 0, 1) against the default's
# 0.865 / 0.580 / 0.668 (seeds 0-2, block 1), recall 1.0 and held-out loss within 0.4% of the default's
# (benchmarks/editing_editability.py, results/editing_editability_*.json; docs/editing.md).
REFERENCE = {**DEFAULT, "d_ff": 512, "edit_layer": 0}
SEARCH_SPACE = {
    "d_model": {"type": "categorical", "choices": [32, 64, 96, 128]},
    "n_layers": {"type": "int", "low": 2, "high": 6},
    "n_heads": {"type": "categorical", "choices": [2, 4, 8]},
    "d_ff": {"type": "categorical", "choices": [64, 128, 256, 512, 1024]},
    "edit_layer": {"type": "int", "low": 0, "high": 5},
    "steps": {"type": "int", "low": 200, "high": 4000},
    "lr": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 1.0},
    "warmup": {"type": "int", "low": 0, "high": 200},
    "fact_fraction": {"type": "float", "low": 0.1, "high": 0.9},
    "templates": {"type": "int", "low": 1, "high": 4},
    "seed": {"type": "int", "low": 0, "high": 1000},
}

INSTRUCTIONS = f"""\
# {ID} — train a small LM that a fixed ROME editor edits well, at equal capability

**Model.** A Llama (`transformers.LlamaForCausalLM`, tied embeddings) over a fixed word-level vocabulary,
trained from scratch on templated facts about {len(fact_world().subjects)} made-up people (four relations: home
town, instrument, trade, colour; `interpgym.subjects.fact_lm.RELATIONS`) mixed with Shakespeare's train plays.
`interpgym.subjects.fact_lm.train_model(recipe)` is the default trainer; `FactLMRecipe` lists the knobs and
their bounds (architecture size, `edit_layer`, optimiser, weight decay, data mix `fact_fraction`, number of
fact `templates`, steps, seed).

**Artifact.** `$INTERPGYM_ARTIFACT_DIR/weights.safetensors` (every parameter of the declared architecture but
the tied `lm_head.weight`, exact names and shapes, finite) and `recipe.json` (the `FactLMRecipe` fields, as
`dataclasses.asdict` writes them; its architecture and `edit_layer` are what the scorer builds and edits).

**Validity.** Fact recall (the true object ranked first among its relation's 8 objects after the rewrite
prompt, over all facts) at least the default recipe's minus {RECALL_MARGIN}, and the cross-entropy on held-out
plays at most {1 + LOSS_MARGIN:g} x the default recipe's. Otherwise the trial is invalid.

**Score** (higher is better). A fixed ROME editor (`interpgym.editing.editability`) edits {N_EDITS} held-out
requests into your model, one at a time at your `edit_layer`; score = CounterFact's S (harmonic mean of efficacy,
paraphrase success on two other templates, neighbourhood success on five people with the same true object).

You may edit `solution.py`; `params.json` holds the recipe knobs of parameter-only agents. Training runs in the
sandbox on one CPU thread under the trial's time limit (the default recipe takes a few minutes).
"""


def checked_recipe(artifact: Artifact) -> FactLMRecipe:
    """The declared recipe: a JSON object with exactly `FactLMRecipe`'s fields, numbers within bounds (else invalid)."""
    raw = artifact.require_json("recipe")
    fields = {f.name: f.type for f in dataclasses.fields(FactLMRecipe)}
    if not isinstance(raw, dict) or set(raw) != set(fields):
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise InvalidSolution(f"recipe.json must hold exactly the fields {sorted(fields)} (got {got})")
    for name, kind in fields.items():
        value = raw[name]
        ok = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not np.isfinite(value):
            raise InvalidSolution(f"recipe.json: {name} must be a finite {kind} (got {value!r})")
    recipe = FactLMRecipe(**raw)
    try:
        recipe.validate()
    except UserError as exc:
        raise InvalidSolution(f"recipe.json: {exc}") from exc
    return recipe


def checked_model(artifact: Artifact, recipe: FactLMRecipe) -> torch.nn.Module:
    """The declared architecture with the artifact's weights: names and exact shapes checked first (else invalid)."""
    from transformers import LlamaForCausalLM

    shapes = expected_shapes(recipe)
    tensors = artifact.require_tensors("weights", list(shapes))
    extra = sorted(set(tensors) - set(shapes))
    if extra:
        raise InvalidSolution(f"weights.safetensors has unexpected tensors {extra[:5]}")
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise InvalidSolution(f"weights.safetensors: {name} has shape {tuple(tensors[name].shape)}, the declared recipe needs {shape}")
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(recipe)).float()
    missing, unexpected = model.load_state_dict({n: t.float() for n, t in tensors.items()}, strict=False)
    if set(missing) - {"lm_head.weight"} or unexpected:
        raise InvalidSolution(f"weights do not fit the declared architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    return model.eval().requires_grad_(False)


@functools.cache
def capability_bar(split: Split) -> dict[str, float]:
    """The default recipe's fact recall and held-out loss on `split` (trained once, cached by recipe hash)."""
    from interpgym.subjects.lm_loader import load_language_model

    with torch_threads(1):
        model = load_language_model(str(train_fact_lm(FactLMRecipe(**DEFAULT), progress=False))).model
        return {"recall": fact_recall(model), "loss": heldout_loss(model, split)}


def held_out_facts(split: Split) -> list:
    """`N_EDITS` world facts for `split` (disjoint for val and test), ordered by the installation secret."""
    facts = fact_world().facts
    order = np.random.default_rng(private_seed(f"{ID}@{VERSION}:facts") % (1 << 63)).permutation(len(facts))
    chosen = order[:N_EDITS] if split == "val" else order[N_EDITS : 2 * N_EDITS]
    return [facts[i] for i in chosen]


def _score(artifact: Artifact, split: Split, seed: int) -> Score:
    del seed  # deterministic given the weights
    recipe = checked_recipe(artifact)
    model = checked_model(artifact, recipe)
    digest = tensors_digest(artifact.tensors["weights"], dataclasses.asdict(recipe))
    bar = capability_bar(split)
    with torch_threads(1):
        recall, loss = fact_recall(model), heldout_loss(model, split)
        metrics: dict[str, Any] = {"recall": recall, "heldout_loss": loss, "bar_recall": bar["recall"], "bar_loss": bar["loss"]}
        if recall < bar["recall"] - RECALL_MARGIN:
            raise InvalidSolution(f"fact recall {recall:.3f} is below the default recipe's {bar['recall']:.3f} - {RECALL_MARGIN}")
        if loss > bar["loss"] * (1 + LOSS_MARGIN):
            raise InvalidSolution(f"held-out loss {loss:.4f} exceeds the default recipe's {bar['loss']:.4f} x {1 + LOSS_MARGIN:g}")
        lm = LanguageModel(model=model, tokenizer=fact_tokenizer(), identity=f"fact-lm:{digest}")
        seed_split = private_seed(f"{ID}@{VERSION}:targets:{split}") % (1 << 63)
        metrics.update(editability(lm, edit_requests(held_out_facts(split), seed_split), recipe.edit_layer))
    metrics["edit_layer"] = recipe.edit_layer
    return Score(value=metrics["s"], metrics=metrics)


def _prepare_inputs(out) -> None:
    (out / "README.txt").write_text("No data: the world, the corpus and the trainer are in interpgym.subjects.fact_lm.\n")


def make_task() -> Task:
    return Task(
        id=ID, version=VERSION, title="Train a small LM that a fixed ROME editor edits well (equal capability)",
        instructions=INSTRUCTIONS, editable_files={"solution.py": SOLUTION}, scorer=_score, prepare_inputs=_prepare_inputs,
        starting=Solution(params=dict(DEFAULT)), reference=Solution(params=dict(REFERENCE)),
        budgets=Budgets(trials=8, minutes=120.0, trial_timeout_s=1800.0, trial_memory_mb=3072),
        plots=metric_scatter("heldout_loss", "s", title="edit/editability: S vs held-out loss", xlabel="held-out loss (nats)",
                             ylabel="S of the fixed ROME editor"),
        search_space=SEARCH_SPACE, default_params=dict(DEFAULT),
    )

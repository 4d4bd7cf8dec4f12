"""`edit/single` and `edit/sequential`: edit facts into SmolLM2, scored on held-out prompts.

The solution gets a batch of edit requests (subject, relation prompt, true object, new
object; 10 for `edit/single`, 100 for `edit/sequential`, chosen from the model's known
facts with a seed from the installation secret) and the model (the packaged
SmolLM2-135M-Instruct, loaded with `interpgym.subjects.lm_loader.load_language_model`).
It writes `artifact/deltas.safetensors`: low-rank weight deltas in the format of
`interpgym.editing.deltas` (per parameter `P::left` [out, r] and `P::right` [r, in]),
at most `MAX_PARAMS` parameters of rank at most `MAX_RANK`, checked from the shapes
before anything is multiplied out.

The trusted scorer adds the deltas to its own copy of the base model (restored after
scoring) and computes CounterFact's metrics on prompts the solution never saw: efficacy
on the rewrite prompt, paraphrase success on a held-out paraphrase (val: the first, test:
the second), neighbourhood success on other subjects with the same true object (val: 2,
test: 3 other prompts), and generation-based efficacy (greedy, no teacher forcing) on
the held-out paraphrase. Score = S, the harmonic mean of ES, PS and NS.

`edit/sequential` asks for the 100 edits to be made one after another and scores the
model after the last (the artifact is the total delta). Starting solution: constrained
fine-tuning (rank-truncated to the budget); reference: ROME at layer 2.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interpgym.core.errors import UserError
from interpgym.core.hashing import config_hash
from interpgym.editing.deltas import DeltaError, checked_deltas
from interpgym.editing.facts import Fact, build_fact_set
from interpgym.editing.methods import Snapshot
from interpgym.editing.metrics import counterfact_scores, generation_efficacy
from interpgym.harness.secret import private_seed
from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.harness.trial import DATA_DIR
from interpgym.subjects.lm_loader import LanguageModel, load_language_model, model_identity

VERSION = "1"
MAX_PARAMS = 4
MODEL: str | None = None  # the packaged SmolLM2-135M-Instruct (tests point this at a tiny model)
GEN_TOKENS = 6

SOLUTION = """\
import json, os
import torch
from safetensors.torch import save_file
from interpgym.editing.deltas import to_factors
from interpgym.editing.facts import Fact
from interpgym.editing.methods import EditConfig, Editor
from interpgym.editing.targets import DeltaConfig
from interpgym.subjects.lm_loader import load_language_model

params = json.load(open("params.json"))
info = json.load(open("data/info.json"))
requests = json.load(open("data/requests.json"))
torch.manual_seed(int(os.environ.get("INTERPGYM_SEED", "0")))
lm = load_language_model(info["model"])
facts = [Fact(r["relation"], r["subject"], r["prompt"], r["true_object"], r["new_object"], (r["prompt"],), (r["prompt"],),
              (r["prompt"],)) for r in requests]
method, top = params["method"], params["layer"]
layers = (top,) if method in ("rome", "ft") else tuple(range(max(0, top - params["spread"] + 1), top + 1))
config = EditConfig(method=method, layers=layers, cov_tokens=params["cov_tokens"], memit_weight=params["memit_weight"],
                    delta=DeltaConfig(steps=params["steps"], lr=params["lr"], clamp=params["clamp"], kl_factor=params["kl_factor"]),
                    ft_steps=params["steps"], ft_linf=params["ft_linf"])
editor = Editor(lm, config, progress=False)
total = {}
batches = [facts] if params["batch"] and method in ("memit", "alphaedit", "ft") else [[f] for f in facts]
for batch in batches:  # one after another: each edit sees the model the earlier ones left
    for name, delta in editor.edit(batch).items():
        total[name] = total.get(name, 0) + delta
save_file(to_factors(total, info["max_rank"]), os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "deltas.safetensors"))
"""

SEARCH_SPACE = {
    "method": {"type": "categorical", "choices": ["rome", "memit", "alphaedit", "ft"]},
    "layer": {"type": "int", "low": 1, "high": 12},
    "spread": {"type": "int", "low": 1, "high": 4},
    "batch": {"type": "categorical", "choices": [True, False]},
    "steps": {"type": "int", "low": 5, "high": 40},
    "lr": {"type": "float", "low": 0.05, "high": 1.0},
    "clamp": {"type": "float", "low": 1.0, "high": 10.0},
    "kl_factor": {"type": "float", "low": 0.0, "high": 1.0},
    "memit_weight": {"type": "float", "low": 100.0, "high": 50000.0},
    "cov_tokens": {"type": "categorical", "choices": [10240, 20480, 51200]},
    "ft_linf": {"type": "float", "low": 1e-5, "high": 1e-2},
}
COMMON = {"spread": 3, "batch": False, "steps": 25, "lr": 0.5, "clamp": 4.0, "kl_factor": 0.0625, "memit_weight": 1500.0,
          "cov_tokens": 20480, "ft_linf": 5e-4, "layer": 2}
STARTING = {**COMMON, "method": "ft"}
REFERENCE = {**COMMON, "method": "rome"}


@functools.cache
def _lm() -> LanguageModel:
    return load_language_model(MODEL)


def task_facts(task_id: str, n_edits: int) -> list[Fact]:
    """The task's edit requests: `n_edits` known facts in an order seeded by the installation secret."""
    facts = build_fact_set(_lm(), seed=0, progress=False).facts
    if len(facts) < n_edits:
        raise RuntimeError(f"the model knows only {len(facts)} facts; {task_id} needs {n_edits}")
    order = np.random.default_rng(private_seed(f"{task_id}@{VERSION}:facts") % (1 << 63)).permutation(len(facts))
    return [facts[i] for i in order[:n_edits]]


def _held_out(fact: Fact, split: Split) -> Fact:
    if split == "val":
        return dataclasses.replace(fact, paraphrases=fact.paraphrases[:1], neighbourhood=fact.neighbourhood[:2])
    return dataclasses.replace(fact, paraphrases=fact.paraphrases[1:], neighbourhood=fact.neighbourhood[2:])


def ship_model(model: str | None, out: Path) -> str | None:
    """Copy a custom model into the trial's data (`out/model/`) and return the path the solution loads it from.

    A trial sees only its workspace and the installation (the sandbox binds nothing else),
    so a model given as a local HF directory or .gguf file travels in `data/`; `None` (the
    packaged SmolLM2, inside the installation) stays `None`. A model that is not a local
    path (an HF cache name) cannot be shipped: `UserError`.
    """
    if model is None:
        return None
    path = Path(model).expanduser()
    if not path.exists():
        raise UserError(f"edit task model {model!r} is not a local path: trials cannot see the HF cache; "
                        "pass an HF-format directory or a .gguf file")
    target = out / "model"
    if path.is_dir():
        shutil.copytree(path, target)
        return f"{DATA_DIR}/model"
    target.mkdir()
    shutil.copy2(path, target / path.name)
    return f"{DATA_DIR}/model/{path.name}"


def _prepare_inputs(task_id: str, n_edits: int, max_rank: int):
    def prepare(out: Path) -> None:
        model = ship_model(MODEL, out)
        requests = [{"relation": f.relation, "subject": f.subject, "prompt": f.prompt, "true_object": f.true_object,
                     "new_object": f.new_object} for f in task_facts(task_id, n_edits)]
        (out / "requests.json").write_text(json.dumps(requests, indent=1, ensure_ascii=False))
        lm = _lm()
        (out / "info.json").write_text(json.dumps({"model": model, "n_layers": lm.n_layers, "max_rank": max_rank,
                                                   "max_params": MAX_PARAMS, "n_edits": n_edits}, indent=1))

    return prepare


def _scorer(task_id: str, n_edits: int, max_rank: int):
    @torch.no_grad()
    def score(artifact: Artifact, split: Split, seed: int) -> Score:
        lm = _lm()
        shapes = {name: tuple(p.shape) for name, p in lm.model.named_parameters() if p.dim() == 2}
        try:
            deltas = checked_deltas(artifact.require_tensors("deltas", []), shapes, MAX_PARAMS, max_rank)
        except DeltaError as exc:
            raise InvalidSolution(str(exc)) from exc
        if not deltas:
            raise InvalidSolution("deltas.safetensors edits no parameter")
        params = dict(lm.model.named_parameters())
        layers = sorted({int(name.split(".")[2]) for name in deltas})
        snapshot = Snapshot(lm, params={name: params[name] for name in deltas})
        try:
            for name, delta in deltas.items():
                params[name].add_(delta.to(params[name].dtype).to(params[name].device))
            facts = [_held_out(f, split) for f in task_facts(task_id, n_edits)]
            metrics: dict[str, Any] = counterfact_scores(lm, facts)
            metrics.update(generation_efficacy(lm, facts, GEN_TOKENS))
            norm = float(torch.sqrt(sum(d.pow(2).sum() for d in deltas.values())))
            metrics["dw_ratio"] = norm / snapshot.norms()
        finally:
            snapshot.restore()
        metrics.update({"edited_params": len(deltas), "layers": layers, "n_edits": n_edits})
        return Score(value=metrics["s"], metrics=metrics)

    return score


def _instructions(task_id: str, n_edits: int, max_rank: int, sequential: bool) -> str:
    order = ("Make the edits **one after another** (each on the model the earlier ones left); the model is scored "
             "after the last. " if sequential else "")
    return f"""\
# {task_id} — edit {n_edits} facts into SmolLM2-135M-Instruct

`data/requests.json` lists {n_edits} edit requests: `subject`, `relation`, `prompt` (a template, `{{}}` marks the
subject), `true_object` (what the model answers now) and `new_object` (what it should answer after the edit).
`data/info.json` names the model (`null` = the packaged SmolLM2-135M-Instruct; load it with
`interpgym.subjects.lm_loader.load_language_model(info["model"])`, offline) and the budgets. {order}

**Artifact.** `artifact/deltas.safetensors` (the directory is `$INTERPGYM_ARTIFACT_DIR`): for each edited
parameter `P` (a q/k/v/o or MLP projection weight of a block, e.g. `model.layers.4.mlp.down_proj.weight`) two
float tensors `P::left` [out, r] and `P::right` [r, in]; the edit is W += left @ right. Budgets: at most
{MAX_PARAMS} parameters, rank r <= {max_rank} each (`interpgym.editing.deltas.to_factors` writes this format).
Anything else is invalid.

**Score** (higher is better), on prompts you never see: CounterFact's S = harmonic mean of efficacy (the new
object beats the true one after the rewrite prompt), paraphrase success (a held-out rephrasing) and
neighbourhood success (other subjects with the same true object keep it), all teacher-forced; generation
efficacy (greedy generation after the held-out paraphrase names the new object) and ||dW||/||W|| are reported.

**What you may change.** `solution.py`, anything: method (`interpgym.editing.methods` has rome, memit,
alphaedit, ft), layers, key/value computation, regularisation, covariance handling. `params.json` holds the
values parameter-only agents choose (see the search space). The run has no network, one CPU thread by default,
and a time and memory limit.
"""


def _version() -> str:
    """VERSION, plus the custom model's identity when there is one: the cached trial inputs (which ship it) follow the model."""
    return VERSION if MODEL is None else f"{VERSION}+{config_hash(model_identity(MODEL))}"


def _make(task_id: str, n_edits: int, max_rank: int, sequential: bool, timeout_s: float) -> Task:
    return Task(
        id=task_id,
        version=_version(),
        title=f"Edit {n_edits} facts into SmolLM2 ({'one after another' if sequential else 'one batch'}); CounterFact S",
        instructions=_instructions(task_id, n_edits, max_rank, sequential),
        editable_files={"solution.py": SOLUTION},
        scorer=_scorer(task_id, n_edits, max_rank),
        prepare_inputs=_prepare_inputs(task_id, n_edits, max_rank),
        starting=Solution(params=STARTING),
        reference=Solution(params=REFERENCE),
        budgets=Budgets(trials=10, minutes=240.0, trial_timeout_s=timeout_s, trial_memory_mb=6144),
        search_space=SEARCH_SPACE,
        default_params=STARTING,
    )


def make_single() -> Task:
    return _make("edit/single", 10, 32, sequential=False, timeout_s=1800.0)


def make_sequential() -> Task:
    return _make("edit/sequential", 100, 128, sequential=True, timeout_s=7200.0)


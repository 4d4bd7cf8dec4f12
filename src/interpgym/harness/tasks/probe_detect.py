"""`probe/detect`: a linear probe per concept on SmolLM2's residual stream, scored by OOD AUROC on unseen texts.

The solution gets mean-pooled train activations (and the texts) of each concept at the
task's layer and writes one direction per concept. The trusted scorer projects the
concept's OOD texts (another template family or source, never shown to the solution;
a secret half for val, the other half for test) and reports the mean AUROC over the
concepts. Starting solution: a random direction (AUROC ~ 0.5); reference: difference
of means.
"""

from __future__ import annotations

from pathlib import Path

from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.harness.tasks.probe_common import (
    PACKAGED_LAYER,
    checked_vectors,
    concept_acts,
    language_model,
    private_half,
    task_version,
    write_train_inputs,
)
from interpgym.probing.concepts import load_concept
from interpgym.probing.metrics import auroc

ID, BASE_VERSION = "probe/detect", "2"  # 2: shakespeare_death replaces shakespeare_verse
CONCEPTS: tuple[str, ...] = ("evaluation", "positive_sentiment", "medicine", "shakespeare_death")

INSTRUCTIONS = """\
# probe/detect — find each concept's direction in the residual stream

**Data.** `data/train.safetensors` holds, per concept C of `data/info.json`, the
mean-pooled residual-stream activations `C.x` [240, d_model] (float32) of the model and
layer named in `info.json`, and the labels `C.y` [240] (1 = concept present; rows
alternate positive, negative as contrast pairs). `data/texts.json` has the texts.
Model: {model}; layer: {layer}.

**Goal.** Write `probes.safetensors` into `$INTERPGYM_ARTIFACT_DIR` with one float32
tensor per concept, named by the concept, shape [d_model]: a direction w such that
x . w is larger when the concept is present.

**Score** (higher is better): mean over the concepts of the AUROC of x . w on the
concept's *out-of-distribution* texts (a different template family or source than
train, never shown to you; val and test are two secret halves). A missing concept,
a wrong shape, a zero or non-finite vector makes the artifact invalid.

**What you may change.** `solution.py` (numpy + safetensors are available);
`params.json` holds `method` (random | diff_means | lda) and `ridge` (for lda) chosen
by parameter-only agents.
"""

SOLUTION = """\
import json, os
import numpy as np
from safetensors.numpy import load_file, save_file

params = json.load(open("params.json"))
info = json.load(open("data/info.json"))
data = load_file("data/train.safetensors")
rng = np.random.default_rng(int(os.environ.get("INTERPGYM_SEED", "0")))
out = {}
for concept in info["concepts"]:
    x, y = data[concept + ".x"].astype(np.float64), data[concept + ".y"] > 0.5
    if params["method"] == "random":
        w = rng.standard_normal(x.shape[1])
    else:
        w = x[y].mean(0) - x[~y].mean(0)
        if params["method"] == "lda":
            cov = np.cov(x - np.where(y[:, None], x[y].mean(0), x[~y].mean(0)), rowvar=False)
            w = np.linalg.solve(cov + params["ridge"] * np.trace(cov) / len(cov) * np.eye(len(cov)), w)
    out[concept] = (w / np.linalg.norm(w)).astype(np.float32)
save_file(out, os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "probes.safetensors"))
"""

SEARCH_SPACE = {"method": {"type": "categorical", "choices": ["random", "diff_means", "lda"]},
                "ridge": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}}


def make_task(model: str | None = None, layer: int = PACKAGED_LAYER, concepts: tuple[str, ...] = CONCEPTS) -> Task:
    """The task on `model` (None: the packaged SmolLM2) at `layer`; other models get their own version and inputs."""
    version = task_version(BASE_VERSION, model, layer, concepts, CONCEPTS)

    def prepare(out: Path) -> None:
        write_train_inputs(out, model, layer, concepts)

    def score(artifact: Artifact, split: Split, seed: int) -> Score:
        d = language_model(model).d_model
        vectors = checked_vectors(artifact, "probes", concepts, d)
        per_concept = {}
        for concept in concepts:
            if float(vectors[concept].norm()) == 0.0:
                raise InvalidSolution(f"probes.safetensors: {concept} is the zero vector")
            x = concept_acts(model, layer, concept)["ood"]["mean"]
            y = load_concept(concept).splits["ood"].labels
            idx = private_half(ID, concept, len(y), split)
            scores = (x[idx] @ vectors[concept]).numpy()
            per_concept[concept] = auroc(scores, [y[i] for i in idx.tolist()])
        value = sum(per_concept.values()) / len(per_concept)
        return Score(value=value, metrics={"mean_auroc_ood": value, **{f"auroc_ood.{c}": v for c, v in per_concept.items()}})

    return Task(
        id=ID, version=version, title="Detect concepts in SmolLM2's residual stream (mean OOD AUROC)",
        instructions=INSTRUCTIONS.format(model=model or "packaged SmolLM2-135M-Instruct", layer=layer),
        editable_files={"solution.py": SOLUTION}, scorer=score, prepare_inputs=prepare,
        starting=Solution(params={"method": "random", "ridge": 1.0}),
        reference=Solution(params={"method": "diff_means", "ridge": 1.0}),
        budgets=Budgets(trials=20, minutes=15.0, trial_timeout_s=60.0, trial_memory_mb=2048),
        search_space=SEARCH_SPACE, default_params={"method": "random", "ridge": 1.0},
    )

"""`steer/concept`: a steering vector, layer and alpha per concept, judged offline on generations for held-out instructions.

The solution writes `steering.safetensors` (one [d_model] vector per concept) and
`steering.json` ({concept: {"layer": int, "alpha": float}}). The trusted scorer adds
alpha * vector to the residual stream entering block `layer` while SmolLM2 answers
held-out instructions (greedy, batched, KV-cached; val and test are the two halves of
`probing.steer_eval.instruction_halves`) and scores each answer with the offline judge
(`probing.judge`: concept, instruction relevance and fluency, each 0..2, harmonic mean).
Score = mean harmonic over concepts and instructions. Starting solution: no steering
(alpha 0); reference: difference of means, unit norm, alpha = REFERENCE_ALPHA_FACTOR x
the median residual norm (`info.json`: `residual_norm`).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.harness.tasks.probe_common import (
    PACKAGED_LAYER,
    checked_vectors,
    concept_acts,
    language_model,
    task_version,
    write_train_inputs,
)
from interpgym.probing.judge import OfflineJudge
from interpgym.probing.steer_eval import instruction_halves
from interpgym.probing.steering import format_prompt, generate, steering

ID, BASE_VERSION = "steer/concept", "2"  # 2: repetition-aware fluency; alpha factors 1/32..4; reference 0.25
CONCEPTS: tuple[str, ...] = ("positive_sentiment", "weather")
N_INSTRUCTIONS, MAX_NEW_TOKENS = 6, 20
MAX_ALPHA_FACTOR = 16.0  # |alpha| x |vector| may not exceed this many median residual norms
# The alpha factor the steering protocol (alpha chosen on the select half, grid 1/16..4) picked for
# diff_means on SmolLM2 layer 15 for 9 of 11 concepts, positive_sentiment and weather included, in
# benchmarks/results/probing_steer.json (2026-11-29 run; the earlier 0.5..4 grid picked its edge 0.5).
REFERENCE_ALPHA_FACTOR = 0.25

INSTRUCTIONS = """\
# steer/concept — make the model talk about a concept while still answering

**Data.** As in probe/detect: `data/train.safetensors` has per concept C the mean-pooled
residual activations `C.x` [240, d_model] and labels `C.y`; `data/texts.json` the texts;
`data/info.json` the concepts, the layer they were read at, and `residual_norm` (the
median norm of a token's residual there). Model: {model}; layer: {layer}.

**Goal.** Write into `$INTERPGYM_ARTIFACT_DIR`: `steering.safetensors` with one float32
vector [d_model] per concept (named by the concept) and `steering.json`:
`{{"C": {{"layer": L, "alpha": a}}, ...}}`. The harness adds a * vector to the residual
stream entering block L at every position while the model answers held-out
instructions, then judges each answer offline (0..2 each: is the concept present, does
it answer the instruction, is it fluent; combined by harmonic mean, 0 if any is 0).

**Score** (higher is better): mean harmonic score over concepts and instructions (val
and test use disjoint instructions). Invalid: a missing concept, wrong shape, non-finite
values, a layer out of range, or |alpha| * |vector| above {max_factor} residual norms.

**What you may change.** `solution.py`; `params.json` holds `method` (none | diff_means)
and `alpha_factor` (alpha in units of `residual_norm` for a unit vector).
"""

SOLUTION = """\
import json, os
import numpy as np
from safetensors.numpy import load_file, save_file

params = json.load(open("params.json"))
info = json.load(open("data/info.json"))
data = load_file("data/train.safetensors")
vectors, config = {}, {}
for concept in info["concepts"]:
    x, y = data[concept + ".x"].astype(np.float64), data[concept + ".y"] > 0.5
    w = x[y].mean(0) - x[~y].mean(0)
    vectors[concept] = (w / np.linalg.norm(w)).astype(np.float32)
    alpha = 0.0 if params["method"] == "none" else params["alpha_factor"] * info["residual_norm"]
    config[concept] = {"layer": info["layer"], "alpha": alpha}
out = os.environ["INTERPGYM_ARTIFACT_DIR"]
save_file(vectors, os.path.join(out, "steering.safetensors"))
json.dump(config, open(os.path.join(out, "steering.json"), "w"))
"""

SEARCH_SPACE = {"method": {"type": "categorical", "choices": ["none", "diff_means"]},
                "alpha_factor": {"type": "float", "low": 1 / 32, "high": 4.0, "log": True}}


def make_task(model: str | None = None, layer: int = PACKAGED_LAYER, concepts: tuple[str, ...] = CONCEPTS,
              n_instructions: int = N_INSTRUCTIONS, max_new_tokens: int = MAX_NEW_TOKENS) -> Task:
    """The task on `model` (None: the packaged SmolLM2) at `layer`; other settings get their own version and inputs."""
    version = task_version(BASE_VERSION, model, layer, concepts, CONCEPTS)
    if (n_instructions, max_new_tokens) != (N_INSTRUCTIONS, MAX_NEW_TOKENS):
        version += f"-{n_instructions}x{max_new_tokens}"

    def residual_norm() -> float:
        return float(concept_acts(model, layer, concepts[0])["train"]["tokens"].norm(dim=-1).median())

    def prepare(out: Path) -> None:
        write_train_inputs(out, model, layer, concepts, {"residual_norm": residual_norm()})

    @functools.cache
    def judge_for(split: Split) -> tuple[OfflineJudge, list[str]]:
        lm = language_model(model)
        select, report = instruction_halves(n_instructions, 0)
        instructions = select if split == "val" else report
        unsteered, _ = generate(
            lm.model, lm.tokenizer, [format_prompt(lm.tokenizer, i) for i in instructions], max_new_tokens=max_new_tokens
        )
        return OfflineJudge.build(lm.model, lm.tokenizer, concepts, instructions, unsteered), instructions

    def score(artifact: Artifact, split: Split, seed: int) -> Score:
        lm = language_model(model)
        vectors = checked_vectors(artifact, "steering", concepts, lm.d_model)
        config = artifact.require_json("steering")
        if not isinstance(config, dict):
            raise InvalidSolution("steering.json must be an object {concept: {layer, alpha}}")
        limit = MAX_ALPHA_FACTOR * residual_norm()
        judge, instructions = judge_for(split)
        prompts = [format_prompt(lm.tokenizer, i) for i in instructions]
        metrics, total = {}, []
        for concept in concepts:
            entry = config.get(concept)
            if not isinstance(entry, dict) or not isinstance(entry.get("layer"), int) or isinstance(entry.get("layer"), bool) \
                    or not isinstance(entry.get("alpha"), (int, float)) or isinstance(entry.get("alpha"), bool):
                raise InvalidSolution(f"steering.json: {concept} needs an integer layer and a numeric alpha")
            c_layer, alpha = entry["layer"], float(entry["alpha"])
            if not 0 <= c_layer < lm.n_layers:
                raise InvalidSolution(f"steering.json: {concept} layer {c_layer} is outside 0..{lm.n_layers - 1}")
            if not math.isfinite(alpha) or abs(alpha) * float(vectors[concept].norm()) > limit:
                raise InvalidSolution(f"steering.json: {concept} alpha x |vector| must be finite and <= {limit:.1f}")
            with steering(lm.model, vectors[concept], alpha, c_layer):
                responses, _ = generate(lm.model, lm.tokenizer, prompts, max_new_tokens=max_new_tokens)
            scores = judge.score(concept, instructions, responses)
            for key in ("concept", "instruction", "fluency", "harmonic"):
                metrics[f"{key}.{concept}"] = sum(s[key] for s in scores) / len(scores)
            total += [s["harmonic"] for s in scores]
        value = sum(total) / len(total)
        return Score(value=value, metrics={"mean_harmonic": value, **metrics})

    return Task(
        id=ID, version=version, title="Steer SmolLM2 towards a concept while staying relevant and fluent (offline judge)",
        instructions=INSTRUCTIONS.format(model=model or "packaged SmolLM2-135M-Instruct", layer=layer, max_factor=MAX_ALPHA_FACTOR),
        editable_files={"solution.py": SOLUTION}, scorer=score, prepare_inputs=prepare,
        starting=Solution(params={"method": "none", "alpha_factor": 1.0}),
        reference=Solution(params={"method": "diff_means", "alpha_factor": REFERENCE_ALPHA_FACTOR}),
        budgets=Budgets(trials=12, minutes=30.0, trial_timeout_s=60.0, trial_memory_mb=2048),
        search_space=SEARCH_SPACE, default_params={"method": "none", "alpha_factor": 1.0},
    )

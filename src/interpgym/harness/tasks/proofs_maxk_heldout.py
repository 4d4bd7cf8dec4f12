"""`proofs/maxk-heldout`: code that writes proof programs for max-of-K models it has not seen before.

The solution's code runs in the sandbox and receives the weights of several max-of-K
models trained with the default recipe (v = 64, K = 4, d_model = 32, 3000 steps) from
seeds derived from the installation secret (`harness.secret.private_seed`), so nobody can
train them in advance: `data/models/<split>_<i>.safetensors`, plus the public seed-0
model as `data/dev.safetensors` to develop on. For each model it must write a proof
program (`interpgym.proofs.lang`) into `artifact/programs.json` = {"<split>_<i>": PROGRAM}.

The trusted scorer checks each program of the split with the kernel on that model's
weights (FLOPs counted, certified set audited against brute force). Per model, the FLOP
budget is the kernel's cost of the reference program on that model (the reference's
own search run in the harness). Score = the mean certified bound over the split's
models; invalid if a program is missing, rejected by the kernel or over its budget.
A program whose hints were fitted to one model and not computed from the weights it is
given (the mechanism) certifies little on the others.

The models are fixed per installation, so the score is deterministic; the reference's
spread over the held-out models (`bound_spread` in the metrics) is the scale on which
two solutions' differences should be read.
"""

from __future__ import annotations

import functools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from interpgym.harness.secret import private_seed
from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.harness.tasks.plots import metric_scatter
from interpgym.harness.tasks.proofs_common import check_and_audit, language_guide
from interpgym.harness.tasks.proofs_maxk import REFERENCE_OPTIONS, STARTING_OPTIONS, strategy_names, strategy_with
from interpgym.proofs.lang.export import strategy_program
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, train_maxk

ID, VERSION = "proofs/maxk-heldout", "1"
SPLITS: tuple[Split, ...] = ("val", "test")


@dataclass(frozen=True)
class HeldoutSpec:
    """The recipe of the held-out models and how many each split has."""

    recipe: MaxKConfig = MaxKConfig()
    per_split: int = 2

    def names(self, split: str) -> list[str]:
        return [f"{split}_{i}" for i in range(self.per_split)]

    def config(self, name: str) -> MaxKConfig:
        """The model `name` ("val_0", ...): the recipe with a seed only the installation's secret gives."""
        seed = private_seed(f"{ID}@{VERSION}:{self.recipe}:{name}") % (1 << 31)
        return MaxKConfig(**{**self.recipe.__dict__, "seed": seed})


DEFAULT = HeldoutSpec()


@functools.cache
def _weights(spec: HeldoutSpec, name: str) -> MaxKWeights:
    config = spec.config(name) if name != "dev" else spec.recipe
    return train_maxk(config, progress=False).weights


@functools.cache
def reference_budget(spec: HeldoutSpec, name: str) -> int:
    """The kernel's FLOPs for the reference program on model `name` (its search run here: free)."""
    program = strategy_program(strategy_with(REFERENCE_OPTIONS), _weights(spec, name))
    return check_and_audit(program, _weights(spec, name), f"{ID}:{spec}:{name}")["flops"]


def instructions(spec: HeldoutSpec) -> str:
    r = spec.recipe
    return f"""\
# proofs/maxk-heldout — write the code that proves max-of-K models you have not seen

**Models.** 1-layer, 1-head, attention-only transformers reading K = {r.k} tokens from a
vocabulary of v = {r.vocab} and predicting their maximum (d_model = {r.d_model}, {r.steps} AdamW steps).
`data/dev.safetensors` is the public seed-{r.seed} model to develop on. `data/models/` holds
{2 * spec.per_split} more, trained with the same recipe from seeds derived from this
installation's secret: `val_0 .. val_{spec.per_split - 1}` score the val split, `test_*` the test split.

**Goal.** For every model in `data/models/`, write a proof program (below) certifying the
largest lower bound on its accuracy over all v^K inputs, at no more kernel FLOPs than the
reference program on that model (`eqke=mean+max_diff, direct=exact, attn=drop_average`,
hints from its own search). Compute your hints from the weights you are given: hints
fitted to one model certify little on another.

**Artifact.** `$INTERPGYM_ARTIFACT_DIR/programs.json` = `{{"val_0": PROGRAM, ...}}`, one
program per model file (key = file name without `.safetensors`). The harness checks each
with the trusted kernel; score = mean certified bound over the split's models (higher
is better). A missing, rejected or over-budget program makes the trial invalid.

{language_guide()}
You may edit `solution.py` only; `params.json` holds the choice of parameter-only
agents (`strategy`: the registered strategy whose program the template writes).
"""


SOLUTION = """\
\"\"\"proofs/maxk-heldout solution: for every model given, write a proof program computed from its weights.\"\"\"
import json
import os
from pathlib import Path

from interpgym.proofs.lang.export import strategy_program
from interpgym.subjects.maxk import load_weights

params = json.load(open("params.json"))
programs = {}
for path in sorted(Path("data/models").glob("*.safetensors")):
    weights = load_weights(path)
    programs[path.stem] = strategy_program(params["strategy"], weights)  # search on this model's weights
with open(os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "programs.json"), "w") as f:
    json.dump(programs, f)
"""


def _prepare_inputs(spec: HeldoutSpec, out: Path) -> None:
    (out / "models").mkdir()
    save_file({k: v.contiguous() for k, v in _weights(spec, "dev").as_dict().items()}, str(out / "dev.safetensors"))
    for split in SPLITS:
        for name in spec.names(split):
            tensors = {k: v.contiguous() for k, v in _weights(spec, name).as_dict().items()}
            save_file(tensors, str(out / "models" / f"{name}.safetensors"))
    r = spec.recipe
    (out / "info.json").write_text(json.dumps({
        "recipe": {"vocab": r.vocab, "k": r.k, "d_model": r.d_model, "d_head": r.d_head, "steps": r.steps},
        "models": {split: spec.names(split) for split in SPLITS},
        "flop_budget": {name: reference_budget(spec, name) for split in SPLITS for name in spec.names(split)},
        "strategies": strategy_names()}, indent=1))


def _score(spec: HeldoutSpec, artifact: Artifact, split: Split, seed: int) -> Score:
    programs = artifact.require_json("programs")
    if not isinstance(programs, dict):
        raise InvalidSolution('programs.json must be an object {"val_0": PROGRAM, ...}')
    per_model: dict[str, dict[str, Any]] = {}
    for name in spec.names(split):
        if name not in programs:
            raise InvalidSolution(f"programs.json has no program for model {name} (keys: {sorted(programs)[:8]})")
        w = _weights(spec, name)
        try:
            verdict = check_and_audit(programs[name], w, f"{ID}:{spec}:{name}")
        except InvalidSolution as exc:
            raise InvalidSolution(f"model {name}: {exc}") from exc
        budget = reference_budget(spec, name)
        if verdict["flops"] > budget:
            raise InvalidSolution(f"model {name}: the check costs {verdict['flops']:,} FLOPs, over its budget of {budget:,}")
        per_model[name] = {"bound": verdict["bound"], "flops": verdict["flops"], "flop_budget": budget}
    bounds = [m["bound"] for m in per_model.values()]
    return Score(value=statistics.fmean(bounds), metrics={
        "bound_min": min(bounds), "bound_max": max(bounds),
        "bound_spread": statistics.pstdev(bounds), "flops": max(m["flops"] for m in per_model.values()),
        "models": per_model})


def make_task(spec: HeldoutSpec = DEFAULT) -> Task:
    version = VERSION if spec == DEFAULT else f"{VERSION}+{spec.recipe.vocab}x{spec.recipe.k}x{spec.per_split}"
    return Task(
        id=ID, version=version, title="Write the code that proves held-out max-of-K models (secret seeds)",
        instructions=instructions(spec), editable_files={"solution.py": SOLUTION},
        scorer=functools.partial(_score, spec), prepare_inputs=functools.partial(_prepare_inputs, spec),
        starting=Solution(params={"strategy": strategy_with(*STARTING_OPTIONS)}),
        reference=Solution(params={"strategy": strategy_with(REFERENCE_OPTIONS)}),
        budgets=Budgets(trials=12, minutes=20.0, trial_timeout_s=300.0, trial_memory_mb=3072),
        plots=metric_scatter("flops", "bound_min", title="proofs/maxk-heldout: worst held-out bound vs FLOPs",
                             xlabel="FLOPs (largest over models)", ylabel="smallest certified bound"),
        search_space={"strategy": {"type": "categorical", "choices": strategy_names()}},
        default_params={"strategy": strategy_with(*STARTING_OPTIONS)},
    )

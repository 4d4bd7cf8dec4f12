"""`proofs/maxk` v2: write a proof program; the tightest certified bound within a FLOP budget.

The model is the default max-of-K subject (v = 64, K = 4, d_model = 32, seed 0). The
solution writes a *proof program* (`interpgym.proofs.lang`, `docs/proof_language.md`) to
`artifact/proof.json`: JSON data, never code, whose numeric hints come from any proof
search the solution likes. The trusted scorer checks it with the kernel
(`interpgym.proofs.lang.kernel.check_program`) in the harness process: every number the
certificate depends on is recomputed from the weights, the FLOPs of that check are
counted by `interpgym.core.flops.FlopCounter`, and the certified set is audited per input
against brute force (a failure there would be a kernel bug and is raised, not scored).

* the FLOP budget is the kernel's cost of the budget proof's program
  (`subcubic` with `eqke=mean+max_diff, direct=exact, attn=drop_average`, hints from its
  own search), measured on the same model, and must be below the cubic program's cost
  (checked);
* the reference (normalised 1) is the best registered strategy within the budget, found
  by exhausting the 16 options (`eqke=max_diff, direct=exact, attn=mean+diff`); the
  language-only proof `program/valid-cases` beats it (docs/proof_language.md);
* invalid if the program is rejected by the kernel (the rule and location are in the
  message), or its check costs more than the budget;
* `{"strategy": NAME}` (version 1's artifact) still works: the scorer exports the
  registered strategy as a program (`proofs.lang.export`) and checks that;
* score = the certified lower bound on accuracy over all v^K inputs.

The bound is a deterministic property of (program, weights): val = test (see
docs/harness.md). `proofs/maxk-heldout` asks the same on models from secret seeds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.harness.tasks.plots import metric_scatter
from interpgym.harness.tasks.proofs_common import check_and_audit, language_guide
from interpgym.proofs.lang.export import cubic_program, strategy_program
from interpgym.proofs.registry import strategies
from interpgym.subjects.maxk import MaxKConfig, MaxKModel, MaxKWeights, train_maxk

ID, VERSION = "proofs/maxk", "2"
MODEL = MaxKConfig()  # the paper's default config, seed 0
EXCLUDED = ("brute-force",)

INSTRUCTIONS = """\
# proofs/maxk — write a proof program: the tightest certified bound within a FLOP budget

**Model.** A 1-layer, 1-head, attention-only transformer reads K = 4 tokens from a
vocabulary of v = 64 and predicts their maximum at the last position (no LayerNorm,
zero biases; weights in `data/weights.safetensors` with `W_E, W_pos, W_Q, W_K, W_V,
W_O, W_U` in TransformerLens conventions, single head squeezed; `data/info.json`).

**Theorem.** Accuracy over all v^K = 16,777,216 inputs (argmax of the last-position
logits equals the max token; ties count as wrong) is at least b.

**Goal.** Write a proof program that certifies the largest b while the kernel's check
of it costs no more FLOPs than the budget proof's program
(`eqke=mean+max_diff, direct=exact, attn=drop_average`): the exact budget is
`flop_budget` in `data/info.json` (far below the cubic program's cost, also listed).

**Artifact.** Write `$INTERPGYM_ARTIFACT_DIR/proof.json` = a proof program (below).
The harness checks it with the trusted kernel, counts the FLOPs of the check (matmul =
out x (2 inner - 1), elementwise 1 per element) and scores the certified bound b
(higher is better). Rejected by the kernel or over budget = invalid (the message names
the rule and step). `{"strategy": NAME}` with a registered strategy name (list in
`data/info.json`) still works: the harness exports that strategy as a program.

{guide}
You may edit `solution.py` only; `params.json` holds the choice of parameter-only
agents (`strategy`: the registered strategy whose program the template writes).
"""

SOLUTION = """\
\"\"\"proofs/maxk solution: write a proof program (here: a registered strategy's, hints from its search).\"\"\"
import json
import os

from interpgym.proofs.lang.export import strategy_program
from interpgym.subjects.maxk import load_weights

params = json.load(open("params.json"))
weights = load_weights("data/weights.safetensors")
program = strategy_program(params["strategy"], weights)  # runs the strategy's proof search (free)
with open(os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "proof.json"), "w") as f:
    json.dump(program, f)
"""

# Baselines by their options (the registry's spelling of variant names is the family's business).
# Starting: the first of these the registry has (a weak but sound subcubic proof).
STARTING_OPTIONS = ({"eqke": "svd", "direct": "mean_query+max_diff", "attn": "drop_average"},
                    {"eqke": "max_diff", "direct": "mean_query+max_diff", "attn": "drop_average"})
# The budget: what the kernel's check of this proof's program costs on the task's model.
BUDGET_OPTIONS = {"eqke": "mean+max_diff", "direct": "exact", "attn": "drop_average"}
# The reference: the best registered strategy within that budget, found by exhausting the 16
# options (`benchmarks/harness_references.py --task proofs/maxk`; checked by a slow test).
REFERENCE_OPTIONS = {"eqke": "max_diff", "direct": "exact", "attn": "mean+diff"}


def strategy_names() -> list[str]:
    return [name for name in strategies() if name not in EXCLUDED]


def _options(name: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=([^,/]+)", name))


def strategy_with(*candidates: dict[str, str]) -> str:
    """The registered subcubic strategy carrying exactly the first of `candidates` the registry has."""
    names = [name for name in strategy_names() if name.startswith("subcubic")]
    for options in candidates:
        matches = [name for name in names if _options(name) == options]
        if len(matches) == 1:
            return matches[0]
    raise RuntimeError(f"proofs/maxk: none of the strategies {candidates} is registered (have {names})")


@functools.cache
def _model() -> MaxKModel:
    return train_maxk(MODEL, progress=False)


@functools.cache
def _strategy_program(name: str) -> str:
    return json.dumps(strategy_program(name, _model().weights))


def program_of(proof: Any, weights_for_export: MaxKWeights | None) -> Any:
    """The program an artifact's proof.json stands for: itself, or a registered strategy's program."""
    if isinstance(proof, dict) and set(proof) == {"strategy"}:
        name = proof["strategy"]
        if not isinstance(name, str):
            raise InvalidSolution('proof.json must be a proof program or {"strategy": NAME}')
        if name in EXCLUDED:
            raise InvalidSolution(f"{name} is not allowed: its cost is far above the budget")
        if name not in strategies():
            raise InvalidSolution(f"unknown strategy {name!r}; see data/info.json for the list")
        if weights_for_export is None:
            return json.loads(_strategy_program(name))
        return strategy_program(name, weights_for_export)
    return proof


@functools.lru_cache(maxsize=8)
def _verify_program(text: str) -> dict[str, Any]:
    return check_and_audit(json.loads(text), _model().weights, f"{ID}:model")


def _verify(name: str) -> tuple[float, int, dict]:
    """A registered strategy's program, checked by the kernel: (bound, FLOPs, metrics)."""
    verdict = _verify_program(_strategy_program(name))
    return verdict["bound"], verdict["flops"], verdict


@functools.cache
def flop_budget() -> int:
    """The kernel's cost of the reference program on the task's model (checked to be below the cubic program's)."""
    budget = _verify(strategy_with(BUDGET_OPTIONS))[1]
    cubic = _verify_program(json.dumps(cubic_program()))["flops"]
    if budget >= cubic:
        raise RuntimeError(f"proofs/maxk: the reference costs {budget:,} FLOPs, not below the cubic program's {cubic:,}")
    return budget


def _prepare_inputs(out: Path) -> None:
    model = _model()
    save_file({k: v.contiguous() for k, v in model.weights.as_dict().items()}, str(out / "weights.safetensors"))
    (out / "info.json").write_text(json.dumps({"config": {"vocab": MODEL.vocab, "k": MODEL.k, "d_model": MODEL.d_model,
                                                          "d_head": MODEL.d_head, "seed": MODEL.seed,
                                                          "steps": MODEL.steps},
                                               "flop_budget": flop_budget(),
                                               "cubic_flops": _verify_program(json.dumps(cubic_program()))["flops"],
                                               "strategies": strategy_names()}, indent=1))


def _score(artifact: Artifact, split: Split, seed: int) -> Score:
    proof = artifact.require_json("proof")
    program = program_of(proof, None)
    text = json.dumps(program, sort_keys=True)
    verdict = _verify_program(text)
    budget = flop_budget()
    if verdict["flops"] > budget:
        raise InvalidSolution(f"verification costs {verdict['flops']:,} FLOPs, over the budget of {budget:,}")
    label = proof["strategy"] if isinstance(proof, dict) and "strategy" in proof else "program"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Score(value=verdict["bound"], metrics={"strategy": label, "program_sha": digest, "flop_budget": budget,
                                                  "complexity": "program", **verdict})


def make_task() -> Task:
    return Task(
        id=ID, version=VERSION, title="Write a proof program: tightest certified max-of-K bound within a FLOP budget",
        instructions=INSTRUCTIONS.replace("{guide}", language_guide()), editable_files={"solution.py": SOLUTION},
        scorer=_score, prepare_inputs=_prepare_inputs,
        starting=Solution(params={"strategy": strategy_with(*STARTING_OPTIONS)}),
        reference=Solution(params={"strategy": strategy_with(REFERENCE_OPTIONS)}),
        budgets=Budgets(trials=12, minutes=10.0, trial_timeout_s=120.0, trial_memory_mb=3072),
        plots=metric_scatter("flops", "bound", title="proofs/maxk: certified bound vs verification FLOPs",
                             xlabel="FLOPs", ylabel="certified accuracy bound"),
        search_space={"strategy": {"type": "categorical", "choices": strategy_names()}},
        default_params={"strategy": strategy_with(*STARTING_OPTIONS)},
    )

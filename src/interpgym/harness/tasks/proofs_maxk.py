"""`proofs/maxk`: the tightest certified accuracy bound for a fixed max-of-K model within a FLOP budget.

The model is the default max-of-K subject (v = 64, K = 4, d_model = 32, seed 0). The
solution names a proof strategy (with its options, which are part of the strategy
name in `interpgym.proofs.registry`) in `artifact/proof.json`. The trusted scorer runs
that strategy's verification itself, in the harness process, with FLOPs counted by
`interpgym.core.flops.FlopCounter`, so neither the bound nor the cost can be faked:

* the FLOP budget is the verification cost of the budget proof
  (`subcubic` with `eqke=mean+max_diff, direct=exact, attn=drop_average`), measured by
  the same counter on the same model, and must be below the cubic proof's cost
  (checked): the question is "the tightest bound at no more cost than that proof";
* the reference (normalised 1) is the best strategy within the budget, found by
  exhausting the 16 options (`benchmarks/harness_references.py --task proofs/maxk`:
  `eqke=max_diff, direct=exact, attn=mean+diff`, bound 0.877 vs 0.823 for the budget
  proof; checked by a slow test);
* invalid if the name is unknown, is `brute-force`, or the verification costs more
  than the budget;
* score = the certified lower bound on accuracy over all v^K inputs.

The bound is a deterministic property of (strategy, weights): there is no sampling
noise and no held-out data, so the val and test scores are the same number (the
split exists for the harness's uniformity; a strategy chosen on val cannot overfit).
Results are cached per strategy in the harness process.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from safetensors.torch import save_file

from interpgym.core.threads import torch_threads
from interpgym.harness.tasks.plots import metric_scatter
from interpgym.harness.task import Artifact, Budgets, InvalidSolution, Score, Solution, Split, Task
from interpgym.proofs.registry import strategies
from interpgym.subjects.maxk import MaxKConfig, MaxKModel, train_maxk

ID, VERSION = "proofs/maxk", "2"
MODEL = MaxKConfig()  # the paper's default config, seed 0
EXCLUDED = ("brute-force",)

INSTRUCTIONS = f"""\
# proofs/maxk — the tightest certified accuracy bound within a FLOP budget

**Model.** A 1-layer, 1-head, attention-only transformer reads K = 4 tokens from a
vocabulary of v = 64 and predicts their maximum at the last position (no LayerNorm,
zero biases; weights in `data/weights.safetensors` with `W_E, W_pos, W_Q, W_K, W_V,
W_O, W_U` in TransformerLens conventions, single head squeezed; `data/info.json`).

**Theorem.** Accuracy over all v^K = 16,777,216 inputs (argmax of the last-position
logits equals the max token; ties count as wrong) is at least b.

**Goal.** Choose the proof strategy (and its options) that certifies the largest b
while its verification costs no more FLOPs than the budget proof
(`eqke=mean+max_diff, direct=exact, attn=drop_average`): the exact budget is
`flop_budget` in `data/info.json` (far below the cubic proof's cost, which is also
listed; brute force is not allowed).

**Artifact.** Write `$INTERPGYM_ARTIFACT_DIR/proof.json` = `{{"strategy": NAME}}`
where NAME is a strategy of `interpgym.proofs.registry.strategies()` (the subcubic
family encodes its options in the name, e.g.
`subcubic/eqke=max_diff,direct=exact,attn=mean+diff`; the exact list is in `data/info.json`). The harness runs the
verification itself and counts its FLOPs (matmul = out x (2 inner - 1), elementwise
1 per element); the score is the certified bound b (higher is better). Over budget,
unknown or `brute-force` = invalid. You may run the strategies yourself inside the
sandbox (`from interpgym.proofs.registry import strategies`;
`interpgym.subjects.maxk.load_weights("data/weights.safetensors")`) to explore.

You may edit `solution.py` only; `params.json` holds the choice of parameter-only
agents (`strategy`).
"""

SOLUTION = """\
\"\"\"proofs/maxk solution: name the proof strategy for the harness to verify.\"\"\"
import json
import os

params = json.load(open("params.json"))
with open(os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "proof.json"), "w") as f:
    json.dump({"strategy": params["strategy"]}, f)
"""

# Baselines by their options (the registry's spelling of variant names is the family's business).
# Starting: the first of these the registry has (a weak but sound subcubic proof).
STARTING_OPTIONS = ({"eqke": "svd", "direct": "mean_query+max_diff", "attn": "drop_average"},
                    {"eqke": "max_diff", "direct": "mean_query+max_diff", "attn": "drop_average"})
# The budget proof: its verification cost is the FLOP budget.
BUDGET_OPTIONS = {"eqke": "mean+max_diff", "direct": "exact", "attn": "drop_average"}
# Reference: the best of the search space within the budget, by exhaustion (see the module docs).
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
def _verify(name: str) -> tuple[float, int, dict]:
    with torch_threads(1):
        result = strategies()[name](_model().weights)
    return result.bound, int(result.flops), {"wall_s": result.wall_s, "unexplained_dim": result.unexplained_dim,
                                             "complexity": result.complexity, "certified": result.certified,
                                             "total": result.total}


@functools.cache
def flop_budget() -> int:
    """The budget proof's verification FLOPs on the task's model (checked to be below the cubic proof's)."""
    budget = _verify(strategy_with(BUDGET_OPTIONS))[1]
    cubic = _verify("cubic")[1] if "cubic" in strategies() else None
    if cubic is not None and budget >= cubic:
        raise RuntimeError(f"proofs/maxk: the budget proof costs {budget:,} FLOPs, not below the cubic proof's {cubic:,}")
    return budget


def _prepare_inputs(out: Path) -> None:
    model = _model()
    save_file({k: v.contiguous() for k, v in model.weights.as_dict().items()}, str(out / "weights.safetensors"))
    (out / "info.json").write_text(json.dumps({"config": {"vocab": MODEL.vocab, "k": MODEL.k, "d_model": MODEL.d_model,
                                                          "d_head": MODEL.d_head, "seed": MODEL.seed,
                                                          "steps": MODEL.steps},
                                               "flop_budget": flop_budget(),
                                               "cubic_flops": _verify("cubic")[1] if "cubic" in strategies() else None,
                                               "strategies": strategy_names()}, indent=1))


def _score(artifact: Artifact, split: Split, seed: int) -> Score:
    proof = artifact.require_json("proof")
    name = proof.get("strategy") if isinstance(proof, dict) else None
    if not isinstance(name, str):
        raise InvalidSolution('proof.json must be {"strategy": NAME}')
    if name in EXCLUDED:
        raise InvalidSolution(f"{name} is not allowed: its cost is far above the budget")
    if name not in strategies():
        raise InvalidSolution(f"unknown strategy {name!r}; see data/info.json for the list")
    bound, flops, extra = _verify(name)
    budget = flop_budget()
    if flops > budget:
        raise InvalidSolution(f"verification costs {flops:,} FLOPs, over the budget of {budget:,} ({name})")
    return Score(value=bound, metrics={"strategy": name, "bound": bound, "flops": flops, "flop_budget": budget, **extra})


def _short_name(name: str) -> str:
    """A strategy name short enough to label a point: the option values only (e.g. `svd/mean_query+max_diff/...`)."""
    options = _options(name)
    return "/".join(options.values()) if options else name


def make_task() -> Task:
    return Task(
        id=ID, version=VERSION, title="Tightest certified max-of-K accuracy bound within a FLOP budget",
        instructions=INSTRUCTIONS, editable_files={"solution.py": SOLUTION}, scorer=_score,
        prepare_inputs=_prepare_inputs, starting=Solution(params={"strategy": strategy_with(*STARTING_OPTIONS)}),
        reference=Solution(params={"strategy": strategy_with(REFERENCE_OPTIONS)}),
        budgets=Budgets(trials=12, minutes=10.0, trial_timeout_s=60.0, trial_memory_mb=2048),
        plots=metric_scatter("flops", "bound", title="proofs/maxk: certified bound vs verification FLOPs (ok trials)",
                             xlabel="verification FLOPs", ylabel="certified accuracy bound (val = test)",
                             vline=flop_budget, vline_label="FLOP budget (over it: invalid)",
                             label="strategy", label_text=_short_name),
        score_name="certified accuracy bound",
        search_space={"strategy": {"type": "categorical", "choices": strategy_names()}},
        default_params={"strategy": strategy_with(*STARTING_OPTIONS)},
    )

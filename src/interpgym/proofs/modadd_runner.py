"""Run the modular-addition proofs (and their training checkpoints); build the contract JSON.

The JSON has the shape of `proofs maxk`'s:

    {"model": {"seed", "p", "d_model", "n_heads", "d_mlp", "attention", "train_steps", "weights"},
     "exact_accuracy": float,
     "results": [ProofResult.row(exact_accuracy), ...],
     "checkpoints": [{"step", "exact_accuracy", "results": [...]}, ...]}   # only if asked

Brute force always runs (it is the truth); every other result is audited against it
before it is reported: its bound may not exceed the exact accuracy and its certified set
of inputs must lie inside the correct set, else `UnsoundProofError` (a bug, not a user error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from interpgym.core.progress import progress_bar
from interpgym.core.selection import parse_selection
from interpgym.proofs.modadd_brute_force import NAME as BRUTE_FORCE
from interpgym.proofs.modadd_brute_force import brute_force
from interpgym.proofs.modadd_integration import STRATEGIES as INTEGRATION_STRATEGIES
from interpgym.proofs.modadd_quadrature import NAME as QUADRATURE
from interpgym.proofs.modadd_quadrature import quadrature_proof
from interpgym.proofs.modadd_readout import STRATEGIES as READOUT_STRATEGIES
from interpgym.proofs.result import ProofResult
from interpgym.proofs.runner import ModelProofs, UnsoundProofError
from interpgym.subjects.modadd import ModAddConfig, ModAddModel, ModAddWeights, train_modadd

STRATEGIES: dict[str, Callable[[ModAddWeights], ProofResult]] = {BRUTE_FORCE: brute_force, QUADRATURE: quadrature_proof,
                                                                 **READOUT_STRATEGIES, **INTEGRATION_STRATEGIES}


def resolve(selection: str) -> list[str]:
    """Strategy names for `--strategies` ('all' or a comma list), in registry order; `UserError` for unknown names."""
    return parse_selection(selection, list(STRATEGIES), flag="--strategies", what="strategy")


def audit(result: ProofResult, correct: torch.Tensor) -> None:
    """Raise `UnsoundProofError` unless `result`'s certified set lies inside the correct set `correct`."""
    if result.certified > int(correct.sum()):
        raise UnsoundProofError(f"{result.strategy} certifies {result.certified} inputs but only {int(correct.sum())} are correct")
    mask = result.extra["certified_mask"]
    if int(mask.sum()) != result.certified:
        raise UnsoundProofError(f"{result.strategy}: certified count {result.certified} != its certified set's size {int(mask.sum())}")
    wrong = mask & ~correct
    if bool(wrong.any()):
        index = int(wrong.nonzero()[0, 0])
        p = int(round(correct.numel() ** 0.5))
        raise UnsoundProofError(f"{result.strategy} certifies input (a={index // p}, b={index % p}), which the model gets wrong")


def prove(w: ModAddWeights, names: list[str]) -> ModelProofs:
    """Brute force and the strategies `names` on `w`, each audited. Brute force is reused if asked for."""
    exact = brute_force(w)
    correct = exact.correct
    results = []
    for name in names:
        result = exact if name == BRUTE_FORCE else STRATEGIES[name](w)
        audit(result, correct)
        results.append(result)
    return ModelProofs(exact_accuracy=exact.bound, results=results)


def model_info(model: ModAddModel) -> dict[str, Any]:
    """The contract's "model" object."""
    c = model.config
    return {"seed": c.seed, "p": c.p, "d_model": c.d_model, "n_heads": c.n_heads, "d_mlp": c.d_mlp,
            "attention": c.attention, "train_steps": c.steps, "weights": str(model.weights_path)}


def modadd_report(config: ModAddConfig, selection: str = "all", *, checkpoints: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train (or load) the model for `config`, run the selected strategies, return the contract JSON."""
    config.validate()
    names = resolve(selection)
    model = train_modadd(config, progress=progress)
    prove(ModAddWeights.random(5, 4, 1, 4, 4, torch.Generator().manual_seed(0)), names)  # warm-up: library start-up not timed
    final = prove(model.weights, names)
    report: dict[str, Any] = {"model": model_info(model), "exact_accuracy": final.exact_accuracy, "results": final.rows()}
    if checkpoints:
        steps = model.checkpoint_steps()
        stages = []
        with progress_bar(enabled=progress, transient=True) as bar:
            task = bar.add_task("proving checkpoints", total=len(steps))
            for step in steps:
                stage = prove(model.checkpoint(step), names)
                stages.append({"step": step, "exact_accuracy": stage.exact_accuracy, "results": stage.rows()})
                bar.advance(task)
        report["checkpoints"] = stages
    return report


__all__ = ["modadd_report", "prove", "audit", "resolve", "model_info", "STRATEGIES"]

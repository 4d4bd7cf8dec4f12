"""Run proof strategies on a max-of-K model (and its training checkpoints); build the contract JSON.

The JSON (`maxk_report`) is exactly the contract of `interpgym proofs maxk`:

    {"model": {"seed", "vocab", "k", "d_model", "train_steps", "weights"},
     "exact_accuracy": float,
     "results": [ProofResult.row(exact_accuracy), ...],
     "checkpoints": [{"step", "exact_accuracy", "results": [...]}, ...]}   # only if asked

Brute force always runs (it gives the exact accuracy every bound is normalised by); if
it is also a requested strategy its result is reused, not recomputed. Every result is
audited against brute force before it is reported: its bound may not exceed the exact
accuracy, and every input its certificate covers must be truly correct. A failed
audit is a bug in a strategy and raises `UnsoundProofError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress

from interpgym.core.progress import progress_bar
from interpgym.core.threads import cpu_threads
from interpgym.proofs.brute_force import brute_force
from interpgym.proofs.certificates import certified_mask
from interpgym.proofs.cubic import cubic
from interpgym.proofs.inputs import tokens_of
from interpgym.proofs.registry import BRUTE_FORCE, resolve, strategies
from interpgym.proofs.result import ProofResult
from interpgym.subjects.maxk import MaxKConfig, MaxKModel, MaxKWeights, train_maxk

AUDIT_CHUNK = 1 << 18


class UnsoundProofError(AssertionError):
    """A strategy certified an input the model gets wrong: a bug, never a user error."""


@dataclass
class ModelProofs:
    """Exact accuracy and every requested strategy's result for one set of weights."""

    exact_accuracy: float
    results: list[ProofResult]

    def rows(self) -> list[dict[str, Any]]:
        return [r.row(self.exact_accuracy) for r in self.results]


def audit(result: ProofResult, correct: torch.Tensor, vocab: int, k: int) -> None:
    """Raise `UnsoundProofError` unless `result` is consistent with brute force's per-input `correct`.

    Checks the count, and that no input the model gets wrong is covered by the
    certificate (equivalently: the certified set lies inside the correct set). Cost
    O(number of wrong inputs), chunked.
    """
    exact = int(correct.sum())
    if result.certified > exact:
        raise UnsoundProofError(f"{result.strategy} certifies {result.certified} inputs but only {exact} are correct")
    if result.ok is None or result.ok_pure is None:
        return
    wrong_index = (~correct).nonzero()[:, 0]
    for begin in range(0, wrong_index.shape[0], AUDIT_CHUNK):
        tokens = tokens_of(wrong_index[begin : begin + AUDIT_CHUNK], vocab, k)
        covered = certified_mask(result.ok, result.ok_pure, tokens)
        if bool(covered.any()):
            first = tokens[covered.nonzero()[0, 0]].tolist()
            raise UnsoundProofError(f"{result.strategy} certifies input {first}, which the model gets wrong")


def prove(w: MaxKWeights, names: list[str], *, advance: Callable[[int], None] | None = None) -> ModelProofs:
    """Run brute force and the strategies `names` (registry names) on `w`, auditing each result.

    On CPU everything runs on one intra-op thread: these tensors are small, so threads
    mostly add synchronisation, and one thread makes wall times comparable.
    """
    table = strategies()
    with cpu_threads(1, w.W_E.device):
        exact = brute_force(w, advance=advance)
        correct = exact.correct
        results = []
        for name in names:
            result = exact if name == BRUTE_FORCE else table[name](w)
            audit(result, correct, w.vocab, w.k)
            results.append(result)
    return ModelProofs(exact_accuracy=exact.bound, results=results)


def warm_up() -> None:
    """Run the proofs once on a tiny random model so one-time library start-up is not timed."""
    generator = torch.Generator().manual_seed(0)
    tiny = MaxKWeights.random(vocab=4, k=2, d_model=4, d_head=4, generator=generator)
    brute_force(tiny)
    cubic(tiny)


def model_info(model: MaxKModel) -> dict[str, Any]:
    """The contract's "model" object."""
    c = model.config
    return {"seed": c.seed, "vocab": c.vocab, "k": c.k, "d_model": c.d_model, "train_steps": c.steps,
            "weights": str(model.weights_path)}


def _prove_with_bar(bar: Progress, label: str, w: MaxKWeights, names: list[str]) -> ModelProofs:
    task = bar.add_task(label, total=w.vocab**w.k)
    try:
        return prove(w, names, advance=lambda n: bar.advance(task, n))
    finally:
        bar.remove_task(task)


def maxk_report(
    config: MaxKConfig,
    selection: str = "all",
    *,
    checkpoints: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or load) the model for `config`, run the selected strategies, return the contract JSON."""
    config.validate()
    names = resolve(selection)
    model = train_maxk(config, progress=progress)
    warm_up()
    with progress_bar(enabled=progress, transient=True, console=console) as bar:
        final = _prove_with_bar(bar, f"brute force + {len(names)} strategies (final model)", model.weights, names)
        report: dict[str, Any] = {"model": model_info(model), "exact_accuracy": final.exact_accuracy, "results": final.rows()}
        if checkpoints:
            steps = model.checkpoint_steps()
            overall = bar.add_task("checkpoints", total=len(steps))
            stages = []
            for step in steps:
                stage = _prove_with_bar(bar, f"step {step}", model.checkpoint(step), names)
                stages.append({"step": step, "exact_accuracy": stage.exact_accuracy, "results": stage.rows()})
                bar.advance(overall)
            report["checkpoints"] = stages
    return report


__all__ = ["maxk_report", "prove", "audit", "warm_up", "model_info", "ModelProofs", "UnsoundProofError"]

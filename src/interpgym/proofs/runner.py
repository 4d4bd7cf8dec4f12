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

from interpgym.core.errors import UserError
from interpgym.core.progress import progress_bar
from interpgym.core.threads import cpu_threads
from interpgym.proofs.brute_force import brute_force
from interpgym.proofs.certificates import certified_mask, input_cases
from interpgym.proofs.checkpoint_runs import prove_checkpoints, prove_with_bar, same_weights, warm_up
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
    O(number of wrong inputs), chunked. `audit_all` checks several results in one pass.
    """
    audit_all([result], correct, vocab, k)


def audit_all(results: list[ProofResult], correct: torch.Tensor, vocab: int, k: int) -> None:
    """`audit` for every result in `results`, decoding each chunk of wrong inputs once for all of them.

    A result that certifies nothing needs no per-input check, and per result only the wrong
    inputs whose case (m, q, n) holds some certified input are checked in full. Cost
    O(number of wrong inputs x (1 + number of results)), chunked.
    """
    exact = int(correct.sum())
    for result in results:
        if result.certified > exact:
            raise UnsoundProofError(f"{result.strategy} certifies {result.certified} inputs but only {exact} are correct")
    to_check = [r for r in results if r.ok is not None and r.ok_pure is not None and r.certified > 0]
    if not to_check:
        return
    live_cases = []  # [m, q, n]: does the case hold any certified input?
    for r in to_check:
        live = r.ok.any(dim=2)
        live[:, :, k - 1] = r.ok_pure
        live_cases.append(live)
    wrong_index = (~correct).nonzero()[:, 0]
    for begin in range(0, wrong_index.shape[0], AUDIT_CHUNK):
        tokens = tokens_of(wrong_index[begin : begin + AUDIT_CHUNK], vocab, k)
        m, q, _, _, n = input_cases(tokens)
        for result, live in zip(to_check, live_cases, strict=True):
            suspects = tokens[live[m, q, n]]
            covered = certified_mask(result.ok, result.ok_pure, suspects)
            if bool(covered.any()):
                first = suspects[covered.nonzero()[0, 0]].tolist()
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
        results = [exact if name == BRUTE_FORCE else table[name](w) for name in names]
        audit_all(results, correct, w.vocab, w.k)
    return ModelProofs(exact_accuracy=exact.bound, results=results)


def accuracy_stage(w: MaxKWeights, names: list[str], *, advance: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One checkpoint's JSON stage (without its step): exact accuracy and the rows of `prove`."""
    proofs = prove(w, names, advance=advance)
    return {"exact_accuracy": proofs.exact_accuracy, "results": proofs.rows()}


def checkpoint_steps(saved: list[int], stride: int = 1) -> list[int]:
    """Every `stride`-th of the `saved` checkpoint steps (in order), the first and the last always included."""
    if stride < 1:
        raise UserError(f"--stride must be >= 1 (got {stride})")
    chosen = saved[::stride]
    if saved and chosen[-1] != saved[-1]:
        chosen.append(saved[-1])
    return chosen


def model_info(model: MaxKModel) -> dict[str, Any]:
    """The contract's "model" object."""
    c = model.config
    return {"seed": c.seed, "vocab": c.vocab, "k": c.k, "d_model": c.d_model, "train_steps": c.steps,
            "weights": str(model.weights_path)}


def maxk_report(
    config: MaxKConfig,
    selection: str = "all",
    *,
    checkpoints: bool = False,
    stride: int = 1,
    jobs: int = 1,
    progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or load) the model for `config`, run the selected strategies, return the contract JSON.

    With `checkpoints`, every `stride`-th saved checkpoint is proved too (`checkpoint_steps`), by
    `jobs` processes (`checkpoint_runs.prove_checkpoints`: the same numbers as one)."""
    config.validate()
    names = resolve(selection)
    model = train_maxk(config, progress=progress)
    warm_up()
    with progress_bar(enabled=progress, transient=True, console=console) as bar:
        final = prove_with_bar(bar, f"brute force + {len(names)} strategies (final model)", model.weights, names, prove)
        report: dict[str, Any] = {"model": model_info(model), "exact_accuracy": final.exact_accuracy, "results": final.rows()}
        if checkpoints:
            final_stage = {"exact_accuracy": final.exact_accuracy, "results": report["results"]}
            steps = checkpoint_steps(model.checkpoint_steps(), stride)
            report["checkpoints"] = prove_checkpoints(model, steps, final_stage, accuracy_stage, names, bar, jobs=jobs)
    return report


__all__ = ["maxk_report", "prove", "accuracy_stage", "prove_with_bar", "audit", "audit_all", "checkpoint_steps", "same_weights", "warm_up",
           "model_info", "ModelProofs", "UnsoundProofError"]

"""Run loss proofs on a max-of-K model (and its checkpoints); build the `--theorem loss` JSON.

    {"model": {...as for accuracy...}, "theorem": "loss", "exact_loss": float,
     "results": [LossResult.row(exact_loss), ...],
     "checkpoints": [{"step", "exact_loss", "results": [...]}, ...]}   # only if asked

Strategy names: those of the accuracy theorem (`registry`: brute-force, cubic and the
subcubic variants), then the hybrid proofs (`loss_hybrid`: cubic + brute force on the
inputs whose cubic bound is loose). Brute force always runs (its exact loss normalises every bound:
`normalized` = exact loss / bound, 1 is tight). Every bound is audited: a bound below
the exact loss is a bug and raises `UnsoundProofError`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from interpgym.core.progress import progress_bar
from interpgym.core.selection import parse_selection
from interpgym.core.threads import torch_threads
from interpgym.proofs import loss_brute_force, loss_cubic
from interpgym.proofs.checkpoint_runs import prove_checkpoints, prove_with_bar
from interpgym.proofs.loss_bounds import LossResult
from interpgym.proofs.loss_hybrid import HYBRID_LOSS_STRATEGIES
from interpgym.proofs.loss_subcubic import LOSS_STRATEGIES
from interpgym.proofs.runner import UnsoundProofError, checkpoint_steps, model_info
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, train_maxk

LossStrategy = Callable[[MaxKWeights], LossResult]


def loss_strategies() -> dict[str, LossStrategy]:
    """Every loss strategy by name: the accuracy registry's names in its order, then the hybrids."""
    table: dict[str, LossStrategy] = {loss_brute_force.NAME: loss_brute_force.brute_force_loss, loss_cubic.NAME: loss_cubic.cubic_loss}
    table.update(LOSS_STRATEGIES)
    table.update(HYBRID_LOSS_STRATEGIES)
    return table


def resolve_loss(selection: str) -> list[str]:
    """Loss strategy names for `all` or a comma-separated list; `UserError` naming any unknown one."""
    return parse_selection(selection, list(loss_strategies()), flag="--strategies", what="strategy")


@dataclass
class ModelLossProofs:
    exact_loss: float
    results: list[LossResult]

    def rows(self) -> list[dict[str, Any]]:
        return [r.row(self.exact_loss) for r in self.results]


def audit_loss(result: LossResult, exact: float) -> None:
    """Raise `UnsoundProofError` if `result`'s bound is below the exact loss."""
    if result.bound < exact:
        raise UnsoundProofError(f"{result.strategy} bounds the loss by {result.bound} but the exact loss is {exact}")


def prove_loss(w: MaxKWeights, names: list[str], *, advance: Callable[[int], None] | None = None) -> ModelLossProofs:
    """Brute force (exact loss) and the loss strategies `names` on `w`, each audited."""
    table = loss_strategies()
    with torch_threads(1) if w.W_E.device.type == "cpu" else nullcontext():
        exact = loss_brute_force.brute_force_loss(w, advance=advance)
        exact_loss = exact.exact_loss
        results = []
        for name in names:
            result = exact if name == loss_brute_force.NAME else table[name](w)
            audit_loss(result, exact_loss)
            results.append(result)
    return ModelLossProofs(exact_loss=exact_loss, results=results)


def loss_stage(w: MaxKWeights, names: list[str], *, advance: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One checkpoint's JSON stage (without its step): exact loss and the rows of `prove_loss`."""
    proofs = prove_loss(w, names, advance=advance)
    return {"exact_loss": proofs.exact_loss, "results": proofs.rows()}


def loss_report(
    config: MaxKConfig, selection: str = "all", *, checkpoints: bool = False, stride: int = 1, jobs: int = 1, progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or load) the model for `config`, run the selected loss proofs, return the JSON above
    (with `checkpoints`, on every `stride`-th saved checkpoint too, `runner.checkpoint_steps`, by `jobs` processes)."""
    config.validate()
    names = resolve_loss(selection)
    model = train_maxk(config, progress=progress)
    with progress_bar(enabled=progress, transient=True, console=console) as bar:
        final = prove_with_bar(bar, f"loss: brute force + {len(names)} strategies (final model)", model.weights, names, prove_loss)
        report: dict[str, Any] = {"model": model_info(model), "theorem": "loss", "exact_loss": final.exact_loss, "results": final.rows()}
        if checkpoints:
            final_stage = {"exact_loss": final.exact_loss, "results": report["results"]}
            steps = checkpoint_steps(model.checkpoint_steps(), stride)
            report["checkpoints"] = prove_checkpoints(model, steps, final_stage, loss_stage, names, bar, jobs=jobs)
    return report


__all__ = ["loss_report", "loss_stage", "resolve_loss", "prove_loss", "audit_loss", "loss_strategies", "ModelLossProofs"]

"""Run the multi-head max-of-K proofs (`heads`) and build the `proofs maxk --heads H` JSON.

Same shape as the one-head accuracy contract (`runner`), with "heads" and "d_head" in
"model". Brute force always runs; every certificate is audited per input against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from interpgym.core.errors import UserError
from interpgym.core.progress import progress_bar
from interpgym.proofs import heads_subcubic
from interpgym.proofs.checkpoint_runs import prove_checkpoints, prove_with_bar
from interpgym.proofs.heads import BRUTE_FORCE, HEADS_STRATEGIES, heads_brute_force
from interpgym.proofs.runner import ModelProofs, audit_all, checkpoint_steps
from interpgym.subjects.maxk_heads import MaxKHeadsConfig, MaxKHeadsModel, MaxKHeadsWeights, train_maxk_heads

STRATEGIES = {
    **HEADS_STRATEGIES,
    heads_subcubic.JOINT: lambda w: heads_subcubic.heads_subcubic(w, joint=True),
    heads_subcubic.INDEPENDENT: lambda w: heads_subcubic.heads_subcubic(w, joint=False),
}


def resolve_heads(selection: str) -> list[str]:
    """Strategy names for `all` or a comma list; `UserError` naming an unknown one."""
    known = [BRUTE_FORCE, *STRATEGIES]
    if selection.strip() == "all":
        return known
    names = list(dict.fromkeys(p.strip() for p in selection.split(",") if p.strip()))
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise UserError(f"--strategies with --heads > 1: choose 'all' or from {', '.join(known)} (got {selection!r})")
    return names


def prove_heads(w: MaxKHeadsWeights, names: list[str], advance: Any = None) -> ModelProofs:
    """Brute force plus the named strategies on `w`, each audited per input."""
    exact = heads_brute_force(w, advance=advance)
    results = [exact if name == BRUTE_FORCE else STRATEGIES[name](w) for name in names]
    audit_all(results, exact.correct, w.vocab, w.k)
    return ModelProofs(exact_accuracy=exact.bound, results=results)


def heads_model_info(model: MaxKHeadsModel) -> dict[str, Any]:
    c = model.config
    return {"seed": c.seed, "vocab": c.vocab, "k": c.k, "d_model": c.d_model, "train_steps": c.steps,
            "weights": str(model.weights_path), "heads": c.n_heads, "d_head": c.d_head}


def heads_stage(w: MaxKHeadsWeights, names: list[str], *, advance: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One checkpoint's JSON stage (without its step): exact accuracy and the rows of `prove_heads`."""
    proofs = prove_heads(w, names, advance=advance)
    return {"exact_accuracy": proofs.exact_accuracy, "results": proofs.rows()}


def heads_report(config: MaxKHeadsConfig, selection: str = "all", *, checkpoints: bool = False, stride: int = 1, jobs: int = 1,
                 progress: bool = True, console: Console | None = None) -> dict[str, Any]:
    """Train (or load) the H-head model, run the selected proofs (with `checkpoints`, on every
    `stride`-th saved checkpoint too, by `jobs` processes), return the JSON."""
    config.validate()
    names = resolve_heads(selection)
    model = train_maxk_heads(config, progress=progress)
    with progress_bar(enabled=progress, transient=True, console=console) as bar:
        final = prove_with_bar(bar, f"{config.n_heads} heads: brute force + {len(names)} strategies", model.weights, names, prove_heads)
        report: dict[str, Any] = {"model": heads_model_info(model), "exact_accuracy": final.exact_accuracy, "results": final.rows()}
        if checkpoints:
            final_stage = {"exact_accuracy": final.exact_accuracy, "results": report["results"]}
            steps = checkpoint_steps(model.checkpoint_steps(), stride)
            report["checkpoints"] = prove_checkpoints(model, steps, final_stage, heads_stage, names, bar, jobs=jobs)
    return report


__all__ = ["STRATEGIES", "heads_report", "heads_stage", "prove_heads", "resolve_heads", "heads_model_info"]

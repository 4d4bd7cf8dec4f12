"""`interpgym proofs modadd`: certified accuracy of the modular-addition model, per proof strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from interpgym.core.outputs import check_output_path


def modadd_title(report: dict[str, Any]) -> str:
    m = report["model"]
    return (f"modular addition proofs (p={m['p']}, d_mlp={m['d_mlp']}, attention={m['attention']}, seed={m['seed']}): "
            f"exact accuracy {report['exact_accuracy']:.6f}")


def run_modadd_proofs(
    p: int = 59,
    seed: int = 0,
    steps: int | None = None,
    attention: str = "uniform",
    strategies: str = "all",
    checkpoints: bool = False,
    plot: Optional[Path] = None,
    json_path: Optional[Path] = None,
    console: Optional[Console] = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train/load the model, run the proofs, print the table, write the JSON (and PNGs). Returns the JSON.

    Every argument is checked (and every output path probed) before any training."""
    check_output_path(json_path, "--json")
    check_output_path(plot, "--plot")
    from interpgym.proofs.cli import checkpoints_table, results_table
    from interpgym.proofs.modadd_runner import modadd_report, resolve
    from interpgym.subjects.modadd import ModAddConfig

    console = console or Console()
    config = (
        ModAddConfig(p=p, seed=seed, attention=attention)
        if steps is None
        else ModAddConfig(p=p, seed=seed, attention=attention, steps=steps)
    )
    config.validate()
    resolve(strategies)
    report = modadd_report(config, strategies, checkpoints=checkpoints, progress=progress)
    console.print(results_table(report, console.width, title=modadd_title(report)))
    if checkpoints:
        console.print(checkpoints_table(report))
    _write_outputs(report, plot, json_path, console)
    return report


def _write_outputs(report: dict[str, Any], plot: Optional[Path], json_path: Optional[Path], console: Console) -> None:
    """Pareto plot (and, with checkpoints, bound vs step) at `plot`, JSON at `json_path`; OS errors become `UserError`."""
    from interpgym.core.errors import UserError
    from interpgym.core.jsonio import write_json_atomic
    from interpgym.proofs.pareto import plot_pareto
    from interpgym.proofs.training_plot import TrainingPanel, plot_training, training_curve_path

    m = report["model"]
    try:
        if plot is not None:
            rows = [dict(r, seed=m["seed"]) for r in report["results"]]
            plot_pareto(rows, plot, title=f"modular addition proofs, p={m['p']}, seed {m['seed']}")
            console.print(f"Pareto plot: {plot}")
            if "checkpoints" in report:
                path = training_curve_path(plot)
                panel = TrainingPanel("certified accuracy lower bound", "exact_accuracy", report["checkpoints"])
                plot_training([panel], path, title=f"modular addition bounds during training, p={m['p']}, seed {m['seed']}")
                console.print(f"training curves: {path}")
        if json_path is not None:
            write_json_atomic(json_path, report)
            console.print(f"JSON: {json_path}")
    except OSError as exc:
        raise UserError(f"cannot write output: {exc}") from exc


__all__ = ["run_modadd_proofs", "modadd_title"]

"""CLI pieces for the loss theorem and the training-curve plot of `interpgym proofs maxk`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.proofs.heads_runner import heads_report
from interpgym.proofs.loss_runner import loss_report
from interpgym.proofs.pareto import plot_pareto
from interpgym.proofs.training_plot import TrainingPanel, plot_training, training_curve_path
from interpgym.subjects.maxk import MaxKConfig
from interpgym.subjects.maxk_heads import MaxKHeadsConfig

THEOREMS = ("accuracy", "loss")


def check_theorem(theorem: str) -> str:
    """The theorem name, or `UserError`."""
    if theorem not in THEOREMS:
        raise UserError(f"--theorem must be one of {', '.join(THEOREMS)} (got {theorem!r})")
    return theorem


def loss_table(report: dict[str, Any], width: int = 100) -> Table:
    """Rich table of the final model's loss bounds; strategy names wrap between their parts."""
    from interpgym.proofs.cli import wrap_at_slashes  # cli imports this module

    m = report["model"]
    table = Table(title=f"max-of-{m['k']} loss proofs (v={m['vocab']}, d_model={m['d_model']}, seed={m['seed']}): "
                        f"exact loss {report['exact_loss']:.6g}")
    table.add_column("strategy", overflow="fold", ratio=3)
    for column in ("loss bound", "exact/bound", "FLOPs", "wall s", "unexpl. dim"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in report["results"]:
        table.add_row(
            wrap_at_slashes(r["strategy"], max(20, width - 66)),
            f"{r['bound']:.6g}",
            f"{r['normalized']:.4f}",
            f"{r['flops']:.3g}",
            f"{r['wall_s']:.3f}",
            f"{r['unexplained_dim']:.3g}",
        )
    return table


def training_panel(report: dict[str, Any]) -> TrainingPanel:
    """The training-curve panel of an accuracy or loss report with checkpoints."""
    if report.get("theorem") == "loss":
        return TrainingPanel("certified loss upper bound (log scale)", "exact_loss", report["checkpoints"], log_y=True)
    return TrainingPanel("certified accuracy lower bound", "exact_accuracy", report["checkpoints"])


def write_plots(report: dict[str, Any], plot: Path, console: Console) -> None:
    """Pareto plot of the final model at `plot`; with checkpoints also bound vs step beside it."""
    m = report["model"]
    rows = [dict(r, seed=m["seed"]) for r in report["results"]]
    label = "loss" if report.get("theorem") == "loss" else "accuracy"
    ylabel = "normalised bound (exact loss / bound)" if label == "loss" else "normalised bound (bound / exact accuracy)"
    plot_pareto(rows, plot, title=f"max-of-{m['k']} {label} proofs, v={m['vocab']}, seed {m['seed']}", ylabel=ylabel)
    console.print(f"Pareto plot: {plot}")
    if "checkpoints" in report:
        path = training_curve_path(plot)
        plot_training([training_panel(report)], path, title=f"max-of-{m['k']} {label} bounds during training, seed {m['seed']}")
        console.print(f"training curves: {path}")


def run_maxk_heads_proofs(
    config: MaxKHeadsConfig, strategies: str, checkpoints: bool, plot: Optional[Path], json_path: Optional[Path],
    console: Console, progress: bool = True, stride: int = 1, jobs: int = 1,
) -> dict[str, Any]:
    """`proofs maxk --heads H` (H >= 2): prove, print, write JSON and plots (paths already checked)."""
    from interpgym.proofs.cli import results_table  # cli imports this module

    report = heads_report(config, strategies, checkpoints=checkpoints, stride=stride, jobs=jobs, progress=progress)
    return print_and_write(report, results_table(report, console.width), plot, json_path, console)


def run_maxk_loss_proofs(
    config: MaxKConfig, strategies: str, checkpoints: bool, plot: Optional[Path], json_path: Optional[Path],
    console: Console, progress: bool = True, stride: int = 1, jobs: int = 1,
) -> dict[str, Any]:
    """`proofs maxk --theorem loss`: prove, print, write JSON and plots (paths already checked)."""
    report = loss_report(config, strategies, checkpoints=checkpoints, stride=stride, jobs=jobs, progress=progress)
    return print_and_write(report, loss_table(report, console.width), plot, json_path, console)


def print_and_write(
    report: dict[str, Any], table: Table, plot: Optional[Path], json_path: Optional[Path], console: Console
) -> dict[str, Any]:
    """Print `table`, write the plots and JSON of `report`; return `report`."""
    console.print(table)
    write_outputs(report, plot, json_path, console)
    return report


def write_outputs(report: dict[str, Any], plot: Optional[Path], json_path: Optional[Path], console: Console) -> None:
    """Write the plots (if `plot`) and the JSON (if `json_path`); an OS error becomes a `UserError`."""
    try:
        if plot is not None:
            write_plots(report, plot, console)
        if json_path is not None:
            write_json_atomic(json_path, report)
            console.print(f"JSON: {json_path}")
    except OSError as exc:
        raise UserError(f"cannot write output: {exc}") from exc


__all__ = [
    "run_maxk_loss_proofs",
    "run_maxk_heads_proofs",
    "loss_table",
    "write_plots",
    "write_outputs",
    "training_panel",
    "check_theorem",
    "THEOREMS",
]

"""Bound vs training step, one line per strategy, one panel per theorem (accuracy, loss)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from interpgym.proofs.pareto import save_figure_atomic


@dataclass(frozen=True)
class TrainingPanel:
    """One theorem's checkpoints (`[{"step", exact_key, "results": [rows]}]`) and how to draw them."""

    title: str
    exact_key: str  # "exact_accuracy" or "exact_loss"
    stages: Sequence[dict[str, Any]]
    log_y: bool = False


def training_curve_path(plot: Path) -> Path:
    """Where `--checkpoints --plot PNG` writes the training curves: PNG's name with `-training`."""
    return plot.with_name(f"{plot.stem}-training{plot.suffix or '.png'}")


def plot_training(panels: Sequence[TrainingPanel], path: str | Path, *, title: str = "") -> Path:
    """PNG of bound vs step per strategy (exact value in black), panels side by side; written atomically."""
    fig = Figure(figsize=(7 * len(panels) + 3, 5.5), dpi=110)
    FigureCanvasAgg(fig)
    palette = colormaps["tab20"]
    for index, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), index + 1)
        steps = [s["step"] for s in panel.stages]
        names = list(dict.fromkeys(r["strategy"] for s in panel.stages for r in s["results"]))
        for i, name in enumerate(names):
            points = [(s["step"], r["bound"]) for s in panel.stages for r in s["results"] if r["strategy"] == name]
            ax.plot([p[0] for p in points], [p[1] for p in points], label=name, color=palette(i % 20), linewidth=1.2, marker=".")
        ax.plot(steps, [s[panel.exact_key] for s in panel.stages], color="black", linestyle="--", linewidth=1.5, label="exact")
        if panel.log_y:
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(panel.title)
        ax.grid(True, alpha=0.3)
        if index == len(panels) - 1:
            ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    if title:
        fig.suptitle(title)
    return save_figure_atomic(fig, Path(path))


__all__ = ["TrainingPanel", "plot_training", "training_curve_path"]

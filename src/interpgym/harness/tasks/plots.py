"""Task plots for the report: one scatter of two trial metrics over every ok trial of a task's campaigns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def metric_scatter(x: str, y: str, *, title: str, xlabel: str, ylabel: str, xlog: bool = False,
                   vline: float | Callable[[], float] | None = None, vline_label: str = "",
                   label: str | None = None, label_text: Callable[[Any], str] = str) -> Callable[[list[Any], Path], list[Path]]:
    """A `Task.plots` hook: metric `y` vs metric `x` of every ok trial, one colour per agent.

    `vline` (a number, or a function giving it when the plot is drawn) marks a limit on
    x, e.g. a budget; `label` names a metric whose value (through `label_text`) is
    written next to each distinct point, e.g. the proof strategy.
    """

    def plot(campaigns: list[Any], out_dir: Path) -> list[Path]:
        points: dict[str, list[tuple[float, float]]] = {}
        names: dict[tuple[float, float], str] = {}
        for campaign in campaigns:
            for trial in campaign.trials:
                if trial.status == "ok" and x in trial.metrics and y in trial.metrics:
                    point = (float(trial.metrics[x]), float(trial.metrics[y]))
                    points.setdefault(campaign.agent, []).append(point)
                    if label is not None and label in trial.metrics:
                        names[point] = label_text(trial.metrics[label])
        if not points:
            return []
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        for agent, xy in sorted(points.items()):
            ax.scatter([p[0] for p in xy], [p[1] for p in xy], label=agent, s=18, alpha=0.8)
        for (px, py), text in sorted(names.items()):
            ax.annotate(text, (px, py), xytext=(3, 3), textcoords="offset points", fontsize=6, alpha=0.8)
        limit = vline() if callable(vline) else vline
        if limit is not None:
            ax.axvline(limit, color="red", linestyle="--", linewidth=1, label=vline_label)
        if xlog:
            ax.set_xscale("log")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{x}-vs-{y}.png"
        fig.savefig(path)
        plt.close(fig)
        return [path]

    return plot

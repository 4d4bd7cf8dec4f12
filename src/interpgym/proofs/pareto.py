"""The Pareto view of proofs: verification FLOPs against normalised bound, frontier marked.

A point (flops, normalised bound) is on the Pareto frontier if no other point is at
least as cheap and at least as tight, and strictly better in one of the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from interpgym.core.outputs import atomic_output
from interpgym.core.pareto import pareto_front

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_pareto(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    title: str = "max-of-K proofs",
    ylabel: str = "normalised bound (bound / exact accuracy)",
) -> Path:
    """Write a PNG of FLOPs (log x) vs normalised bound, one colour per strategy, frontier as a step line.

    `rows` are contract result rows (`strategy`, `flops`, `normalized`), optionally with
    a `seed`. The file is written atomically.
    """
    path = Path(path)
    fig = Figure(figsize=(11, 5.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    palette = colormaps["tab20"]
    for i, name in enumerate(strategies):
        mine = [r for r in rows if r["strategy"] == name]
        ax.scatter([max(r["flops"], 1) for r in mine], [r["normalized"] for r in mine], label=name, s=30, alpha=0.85,
                   color=palette(i % 20), marker=_MARKERS[i % len(_MARKERS)])
    points = [(max(float(r["flops"]), 1.0), float(r["normalized"])) for r in rows]
    front = pareto_front([(flops, -bound) for flops, bound in points])  # cheaper and tighter is better
    if front:
        xs = [points[i][0] for i in front]
        ys = [points[i][1] for i in front]
        ax.step(xs, ys, where="post", color="black", linewidth=1.2, label="Pareto frontier")
        ax.scatter(xs, ys, facecolors="none", edgecolors="black", s=90, linewidths=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("verification FLOPs (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return save_figure_atomic(fig, path)


def save_figure_atomic(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as PNG to `path` atomically (temp file + rename; nothing half-written)."""
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


__all__ = ["plot_pareto", "save_figure_atomic"]

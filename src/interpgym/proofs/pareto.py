"""The Pareto view of proofs: verification FLOPs against normalised bound, frontier marked.

A point (flops, normalised bound) is on the Pareto frontier if no other point is at
least as cheap and at least as tight, and strictly better in one of the two.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, value) points not dominated by another (lower cost, higher value is better).

    Returned in increasing cost. Cost O(n log n).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


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
    front = pareto_front(points)
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


def save_figure_atomic(fig: Figure, path: Path) -> Path:
    """Write `fig` as PNG to `path` atomically (temp file + rename), creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["pareto_front", "plot_pareto", "save_figure_atomic"]

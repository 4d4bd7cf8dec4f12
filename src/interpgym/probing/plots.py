"""Plots of the probing tables (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _save(fig, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def heatmap(rows: list[dict], value: str, title: str, path: Path, filter_key: str | None = None, filter_value: str | None = None) -> None:
    """Concept x method heat map of `value` over `rows` (optionally only rows with row[filter_key] == filter_value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if filter_key is None or r[filter_key] == filter_value]
    concepts = list(dict.fromkeys(r["concept"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    grid = np.full((len(concepts), len(methods)), np.nan)
    for r in rows:
        v = r[value]
        grid[concepts.index(r["concept"]), methods.index(r["method"])] = np.nan if v is None else v
    fig, ax = plt.subplots(figsize=(1.2 * len(methods) + 2, 0.45 * len(concepts) + 1.5))
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
    ax.set_yticks(range(len(concepts)), concepts)
    for i in range(len(concepts)):
        for j in range(len(methods)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", color="w", fontsize=7)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    _save(fig, path)
    plt.close(fig)


def detection_heatmap(result: dict, path: Path) -> None:
    heatmap(result["results"], "auroc_ood", f"OOD AUROC (mean pooling), layer {result['layer']}", path, "pooling", "mean")

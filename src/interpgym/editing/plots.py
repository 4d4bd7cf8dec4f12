"""Sequential-editing curves: S and retention against the number of edits, one line per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interpgym.core.outputs import atomic_output


def plot_curves(curves: dict[str, list[dict[str, Any]]], path: Path, title: str = "sequential editing") -> Path:
    """Two panels (S, retention) vs edits on a log axis; `curves` maps a method to its `curve` list. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method, curve in curves.items():
        xs = [p["n_edits"] for p in curve]
        for ax, key in zip(axes, ("s", "retention"), strict=True):
            ax.plot(xs, [p[key] if p[key] is not None else float("nan") for p in curve], marker="o", label=method)
    for ax, label in zip(axes, ("S (harmonic mean of ES, PS, NS) of the edits so far", "retention of unedited facts"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("edits made")
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:  # all or nothing, usual permissions
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path

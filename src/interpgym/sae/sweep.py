"""Sparsity sweeps: several sparsity settings per architecture, their L0 / FVU (/ MCC) and frontiers.

A point is on its architecture's frontier when no other point of the same
architecture has both lower-or-equal L0 and lower-or-equal FVU with one of them
strictly lower (Pareto-optimal for "sparser and more faithful"; `core.pareto`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interpgym.core.errors import UserError
from interpgym.core.outputs import atomic_output
from interpgym.core.pareto import pareto_front
from interpgym.core.progress import progress_bar
from interpgym.core.selection import parse_selection

if TYPE_CHECKING:
    from interpgym.sae.runs import SubjectSpec

# torch-backed modules (architectures, runs, evaluate) are imported inside the functions, so
# that the command line can check --points and its output paths before paying for them.

K_MULTIPLIERS = (0.4, 0.6, 1.0, 1.6, 2.4)
COEFF_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def sweep_settings(arch: str, base_k: int, points: int) -> list[dict[str, Any]]:
    """The sparsity settings tried for `arch`: k around `base_k`, or the coefficient around its default."""
    from interpgym.sae.architectures import architecture

    cls = architecture(arch)
    if cls.uses_k:
        ks = sorted({max(1, round(base_k * m)) for m in _spread(K_MULTIPLIERS, points)})
        return [{"k": k, "sparsity_coeff": None} for k in ks]
    assert cls.default_sparsity_coeff is not None
    return [{"k": None, "sparsity_coeff": cls.default_sparsity_coeff * m} for m in _spread(COEFF_MULTIPLIERS, points)]


def _spread(values: Sequence[float], points: int) -> list[float]:
    if points >= len(values):
        return list(values)
    if points == 1:
        return [values[len(values) // 2]]
    return [values[round(i * (len(values) - 1) / (points - 1))] for i in range(points)]


MAX_POINTS = len(K_MULTIPLIERS)


def parse_archs(archs: str) -> list[str]:
    """'all' (every registered architecture, sorted) or a comma-separated list of them."""
    from interpgym.sae.architectures import ARCHITECTURES

    return parse_selection(archs, sorted(ARCHITECTURES), flag="--archs", what="SAE architecture")


def check_points(points: int) -> None:
    """`UserError` unless 1 <= points <= MAX_POINTS (the sparsity settings there are to try)."""
    if not 1 <= points <= MAX_POINTS:
        raise UserError(f"--points must be between 1 and {MAX_POINTS} (got {points})")


def run_sweep(
    spec: SubjectSpec,
    archs: list[str],
    *,
    points: int = 5,
    width: int | None = None,
    steps: int = 3000,
    batch_size: int = 1024,
    lr: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate every (architecture, sparsity) point; JSON-able result with frontiers."""
    from interpgym.sae.evaluate import evaluate_sae
    from interpgym.sae.runs import cached_sae, sae_config_for, train_config_for

    check_points(points)
    subject = spec.load()
    train_cfg = train_config_for(subject, lr=lr, steps=steps, batch_size=batch_size, seed=spec.seed)
    base_k = subject.sae_defaults.k or 32
    plan = [(arch, setting) for arch in archs for setting in sweep_settings(arch, base_k, points)]
    runs: list[dict[str, Any]] = []
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task("sweep", total=len(plan))
        for arch, setting in plan:
            bar.update(
                task,
                description=f"sweep {arch} " + (f"k={setting['k']}" if setting["k"] else f"coeff={setting['sparsity_coeff']:.3g}"),
            )
            sae_cfg = sae_config_for(subject, arch, width, setting["k"], setting["sparsity_coeff"])
            loaded = cached_sae(subject, spec, sae_cfg, train_cfg)
            report = evaluate_sae(loaded.sae, subject, downstream=True)
            runs.append(
                {
                    "arch": arch,
                    "width": sae_cfg.d_sae,
                    "k": loaded.sae.k,
                    "sparsity_coeff": loaded.sae.sparsity_coeff if loaded.sae.uses_sparsity_coeff else None,
                    "eval_inputs": report.eval_inputs,
                    "train_seconds": loaded.meta.get("wall_seconds"),
                    "metrics": report.metrics,
                }
            )
            bar.advance(task)
    frontiers = {}
    for arch in archs:
        indices = [i for i, run in enumerate(runs) if run["arch"] == arch]
        front = pareto_front([(runs[i]["metrics"]["l0"], runs[i]["metrics"]["fvu"]) for i in indices])
        frontiers[arch] = [indices[i] for i in front]
        for i in indices:
            runs[i]["on_frontier"] = i in frontiers[arch]
    return {"subject": spec.to_dict(), "train_config": train_cfg.to_dict(), "runs": runs, "frontiers": frontiers,
            "true_mean_l0": getattr(subject, "true_mean_l0", None)}


def sweep_x_range(runs: list[dict[str, Any]], true_l0: float | None) -> tuple[float, float] | None:
    """The L0 axis range of the sweep plot: the non-degenerate points (L0 > 0, FVU < 1) and the
    true L0, with a margin. Degenerate points (nothing fires, or nothing reconstructed) are
    still drawn but would otherwise stretch the axis by decades. None if no point qualifies."""
    usable = [run["metrics"]["l0"] for run in runs
              if 0 < run["metrics"]["l0"] < float("inf") and run["metrics"].get("fvu", 0.0) < 1.0]
    if true_l0:
        usable.append(true_l0)
    return (min(usable) / 1.5, max(usable) * 1.5) if usable else None


def plot_sweep(result: dict[str, Any], path: str | Path) -> None:
    """L0 vs FVU (and vs MCC when present) per architecture, frontier drawn as a line; PNG at `path`.

    The toy subject's true mean L0 is a dashed vertical line; the x range covers the
    non-degenerate points (L0 > 0, FVU < 1) and the true L0.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    has_mcc = any("mcc" in run["metrics"] for run in runs)
    true_l0 = result.get("true_mean_l0")
    x_range = sweep_x_range(runs, true_l0)
    fig, axes = plt.subplots(1, 2 if has_mcc else 1, figsize=(11 if has_mcc else 6, 4.2), squeeze=False)
    panels = [("fvu", "FVU (lower is better)")] + ([("mcc", "MCC vs ground truth (higher is better)")] if has_mcc else [])
    colors = plt.get_cmap("tab10")
    for col, (metric, label) in enumerate(panels):
        ax = axes[0][col]
        for index, (arch, front) in enumerate(result["frontiers"].items()):
            arch_runs = sorted((run for run in runs if run["arch"] == arch), key=lambda run: run["metrics"]["l0"])
            xs = [run["metrics"]["l0"] for run in arch_runs]
            ys = [run["metrics"].get(metric, float("nan")) for run in arch_runs]
            ax.scatter(xs, ys, color=colors(index), alpha=0.45, s=22)
            front_runs = [runs[i] for i in front]
            ax.plot(
                [run["metrics"]["l0"] for run in front_runs],
                [run["metrics"].get(metric, float("nan")) for run in front_runs],
                marker="o",
                color=colors(index),
                label=arch,
            )
        ax.set_xscale("log")
        if true_l0:
            ax.axvline(true_l0, color="black", linestyle="--", linewidth=1, label=f"true mean L0 ({true_l0:g})")
        if x_range is not None:
            ax.set_xlim(*x_range)
        ax.set_xlabel("L0 (mean active latents, held-out)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if metric == "fvu":
            ax.set_yscale("log")
    axes[0][0].legend(title="frontier (line) / all points", fontsize=8)
    fig.suptitle(f"SAE sparsity sweep on {result['subject']['name']}")
    fig.tight_layout()
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)

"""Campaign plots for the report: score versus trial, with every trial status marked.

Uses matplotlib's object API on the Agg canvas (no pyplot global state, no display),
and writes PNGs without a timestamp or version in their metadata, so the same campaign
gives the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from interpgym.harness.records import CampaignRecord

# One marker and colour per failure status, so a glance tells crashes from timeouts.
_FAILURE_STYLE: dict[str, tuple[str, str]] = {
    "invalid": ("X", "#d62728"),
    "crash": ("v", "#9467bd"),
    "timeout": ("s", "#8c564b"),
    "oom": ("D", "#e377c2"),
}
_OK_COLOUR = "#1f77b4"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def plot_campaign(campaign: CampaignRecord, path: Path, noise_floor: float | None = None) -> Path:
    """Write a score-vs-trial PNG of `campaign` to `path` and return `path`.

    Plots normalised validation scores when every ok trial has one (0 = starting, 1 =
    reference, dashed; the reference's noise band shaded when `noise_floor` is given),
    else raw validation scores. Ok trials are dots, with the best-so-far line when normalised;
    failed trials are marked on a strip below the scores, one marker per status; the
    final test score, when there is one, is a star after the last trial.
    """
    trials = sorted(campaign.trials, key=lambda trial: trial.n)
    ok = [trial for trial in trials if trial.status == "ok"]
    normalised = bool(ok) and all(_finite(trial.normalized) for trial in ok)

    def score(trial: object) -> float | None:
        value = trial.normalized if normalised else trial.val_score  # type: ignore[attr-defined]
        return value if _finite(value) else None

    figure = Figure(figsize=(7.0, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    points = [(trial.n, score(trial)) for trial in ok if score(trial) is not None]
    values = [value for _, value in points]
    test = campaign.normalized_test if normalised else campaign.test_score
    test = test if _finite(test) else None
    reference_lines = [0.0, 1.0] if normalised else []
    span_values = values + reference_lines + ([test] if test is not None else [])
    low, high = (min(span_values), max(span_values)) if span_values else (0.0, 1.0)
    pad = 0.08 * (high - low or 1.0)
    strip = low - 2.5 * pad  # where failed trials are drawn

    if normalised:
        axes.axhline(0.0, color="grey", linestyle="--", linewidth=1, label="starting (0)")
        axes.axhline(1.0, color="black", linestyle="--", linewidth=1, label="reference (1)")
        if noise_floor:
            axes.axhspan(1.0 - noise_floor, 1.0 + noise_floor, color="grey", alpha=0.15, label="reference noise")
    if points:
        xs, ys = zip(*points)
        axes.plot(xs, ys, "o", color=_OK_COLOUR, markersize=4, label="ok")
        if normalised:  # higher is better; raw scores carry no direction here, so no best line
            best_so_far = [max(ys[: i + 1]) for i in range(len(ys))]
            axes.step(xs, best_so_far, where="post", color=_OK_COLOUR, linewidth=1.5, alpha=0.7, label="best so far")
    for status, (marker, colour) in _FAILURE_STYLE.items():
        xs = [trial.n for trial in trials if trial.status == status]
        if xs:
            axes.plot(xs, [strip] * len(xs), marker, color=colour, markersize=6, linestyle="none", label=status)
    if test is not None:
        last = trials[-1].n if trials else 0
        axes.plot([last + 1], [test], "*", color="#ff7f0e", markersize=13, label="test (best trial)")
    axes.set_ylim(strip - pad, high + pad)
    axes.set_xlabel("trial")
    axes.set_ylabel("normalised val score" if normalised else "val score")
    axes.set_title(f"{campaign.task} v{campaign.task_version} · {campaign.agent} · {campaign.campaign_id}", fontsize=9)
    axes.grid(alpha=0.3)
    if trials or test is not None:
        axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        axes.text(0.5, 0.5, "no trials yet", transform=axes.transAxes, ha="center", va="center")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


"""Campaign plots for the report: score versus trial, with every trial status marked.

Uses matplotlib's object API on the Agg canvas (no pyplot global state, no display),
and writes PNGs without a timestamp or version in their metadata, so the same campaign
gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from interpgym.harness.records import CampaignRecord
from interpgym.harness.study import AgentCurves

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


def plot_campaign(campaign: CampaignRecord, path: Path, noise_floor: float | None = None,
                  score_name: str = "score") -> Path:
    """Write a score-vs-trial PNG of `campaign` to `path` and return `path`.

    Plots normalised validation scores when every ok trial has one (0 = starting, 1 =
    reference, dashed; the reference's noise band shaded when `noise_floor` is given),
    else raw validation scores; the y axis names the task's metric (`score_name`). Ok
    trials are dots, with the best-so-far line (drawn to the last trial) when normalised;
    failed trials are marked on a strip below the scores, one row per status; the final
    test score, when there is one, is a star at the trial it was scored from (the best
    val trial).
    """
    trials = sorted(campaign.trials, key=lambda trial: trial.n)
    ok = [trial for trial in trials if trial.status == "ok"]
    normalised = bool(ok) and all(_finite(trial.normalized) for trial in ok)

    def score(trial: object) -> float | None:
        value = trial.normalized if normalised else trial.val_score  # type: ignore[attr-defined]
        return value if _finite(value) else None

    figure = Figure(figsize=(7.0, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes, strip = figure.subplots(2, 1, sharex=True, height_ratios=[4, 1])
    points = [(trial.n, score(trial)) for trial in ok if score(trial) is not None]
    test = campaign.normalized_test if normalised else campaign.test_score
    test = test if _finite(test) else None

    if normalised:
        axes.axhline(0.0, color="grey", linestyle="--", linewidth=1, label="starting (0)")
        axes.axhline(1.0, color="black", linestyle="--", linewidth=1, label="reference (1)")
        if noise_floor:
            axes.axhspan(1.0 - noise_floor, 1.0 + noise_floor, color="grey", alpha=0.15, label="reference noise")
    if points:
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, "o", color=_OK_COLOUR, markersize=4, label="ok trial")
        if normalised:  # higher is better; raw scores carry no direction here, so no best line
            best_so_far = [max(ys[: i + 1]) for i in range(len(ys))]
            # Carried on to the last trial (failed ones included), and at least half a trial
            # wide, so even a single ok trial's line is visible as its legend promises.
            end = max(trials[-1].n, xs[-1] + 0.5)
            axes.step([*xs, end], [*best_so_far, best_so_far[-1]], where="post", color=_OK_COLOUR, linewidth=1.5,
                      alpha=0.7, label="best so far")
    if test is not None and campaign.best_trial is not None:
        axes.plot([campaign.best_trial], [test], "*", color="#ff7f0e", markersize=13, linestyle="none",
                  label=f"test score of trial {campaign.best_trial}")
    if not trials:
        axes.text(0.5, 0.5, "no trials yet", transform=axes.transAxes, ha="center", va="center")
    axes.set_ylabel(f"normalised val {score_name}\n(0 = starting, 1 = reference)" if normalised
                    else f"val {score_name} (raw)", fontsize=8)
    axes.set_title(f"{campaign.task} v{campaign.task_version} · {campaign.agent} · {campaign.campaign_id}", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)

    # Failed trials have no score: one row per status on a strip below, never on the score axis.
    statuses = list(_FAILURE_STYLE)
    for row, status in enumerate(statuses):
        marker, colour = _FAILURE_STYLE[status]
        xs = [trial.n for trial in trials if trial.status == status]
        if xs:
            strip.plot(xs, [row] * len(xs), marker, color=colour, markersize=6, linestyle="none")
    strip.set_yticks(range(len(statuses)), statuses, fontsize=7)
    strip.set_ylim(-0.7, len(statuses) - 0.3)
    strip.invert_yaxis()
    strip.grid(axis="x", alpha=0.3)
    strip.set_xlabel("trial")
    strip.xaxis.set_major_locator(MaxNLocator(integer=True))
    if trials:
        strip.set_xlim(trials[0].n - 0.7, trials[-1].n + 0.7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path



def plot_budget_curves(curves: Sequence[AgentCurves], path: Path, title: str, noise_floor: float | None = None) -> Path:
    """Write the study's budget curves as one PNG at `path` and return it: best-so-far
    normalised val vs trials (left) and vs wall time (right), mean over each agent's
    campaigns with a ±SEM band; the reference (1) dashed, its noise band shaded."""
    figure = Figure(figsize=(10.0, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    by_trial, by_time = figure.subplots(1, 2, sharey=True)
    for index, agent in enumerate(curves):
        colour = f"C{index % 10}"
        label = f"{agent.agent} ({agent.agent_kind}, {len(agent.campaign_ids)} campaigns)"
        for axes, points, key in ((by_trial, agent.by_trial, "trials"), (by_time, agent.by_time, "seconds")):
            xs = [p[key] / (60.0 if key == "seconds" else 1.0) for p in points if p["mean"] is not None]
            ys = [p["mean"] for p in points if p["mean"] is not None]
            sems = [p["sem"] or 0.0 for p in points if p["mean"] is not None]
            if not xs:
                continue
            axes.plot(xs, ys, marker="o" if key == "trials" else None, markersize=3, color=colour,
                      label=label if key == "trials" else None)
            axes.fill_between(xs, [y - s for y, s in zip(ys, sems, strict=True)], [y + s for y, s in zip(ys, sems, strict=True)],
                              color=colour, alpha=0.2, linewidth=0)
    for axes in (by_trial, by_time):
        axes.axhline(0.0, color="grey", linestyle="--", linewidth=1)
        axes.axhline(1.0, color="black", linestyle="--", linewidth=1)
        if noise_floor:
            axes.axhspan(1.0 - noise_floor, 1.0 + noise_floor, color="grey", alpha=0.15)
        axes.grid(alpha=0.3)
    by_trial.set_xlabel("trials")
    by_trial.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_time.set_xlabel("wall time (minutes, sum of trial times)")
    by_trial.set_ylabel("best normalised val so far\n(0 = starting, 1 = reference; mean ± SEM)", fontsize=8)
    by_trial.legend(fontsize=7, loc="lower right")
    figure.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path

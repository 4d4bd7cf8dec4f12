"""The study: several campaigns per agent on one task, compared by how scores grow with budget.

`budget_curves(campaigns)` turns finished campaigns into, per agent, the best-so-far
normalised val score after each trial and against wall time (mean and SEM over the
agent's campaigns), with final normalised test scores (mean, SEM) and the fraction of
trials per status -- the comparison RE-Bench makes between agents and people (who is
ahead at 2 hours, who at 32). Before its first scored trial a campaign stands at the
starting solution (normalised 0): the agent could always submit that. `run_study`
runs the campaigns (different seeds per agent) and pools them with the external
(human / AI) campaigns already recorded for the task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from interpgym.harness.records import STATUSES, CampaignRecord

TIME_POINTS = 20  # wall-time grid points of the curves


def mean_sem(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(mean, standard error of the mean); SEM None with fewer than 2 values, both None with none."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def best_so_far(campaign: CampaignRecord) -> list[tuple[float, float]]:
    """(cumulative wall seconds, best normalised val so far) after each trial, starting from 0."""
    points, best, elapsed = [], 0.0, 0.0
    for trial in sorted(campaign.trials, key=lambda t: t.n):
        elapsed += trial.wall_s
        if trial.status == "ok" and trial.normalized is not None and math.isfinite(trial.normalized):
            best = max(best, trial.normalized)
        points.append((elapsed, best))
    return points


@dataclass
class AgentCurves:
    """One agent's budget curves and final scores over its campaigns (see the module docs)."""

    agent: str
    agent_kind: str
    campaign_ids: list[str]
    by_trial: list[dict[str, Any]] = field(default_factory=list)  # {"trials", "mean", "sem", "campaigns"}
    by_time: list[dict[str, Any]] = field(default_factory=list)  # {"seconds", "mean", "sem"}
    test_mean: float | None = None
    test_sem: float | None = None
    test_scores: int = 0
    status_fractions: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"agent": self.agent, "agent_kind": self.agent_kind, "campaign_ids": self.campaign_ids,
                "by_trial": self.by_trial, "by_time": self.by_time,
                "test": {"mean": self.test_mean, "sem": self.test_sem, "campaigns": self.test_scores},
                "status_fractions": self.status_fractions}


def budget_curves(campaigns: Sequence[CampaignRecord]) -> list[AgentCurves]:
    """Per agent (name, kind) of `campaigns` (one task version): its curves, sorted by agent name.

    By trial: at trial t, over the campaigns that ran at least t trials. By time: on a
    grid of `TIME_POINTS` up to the longest campaign's total wall time, each campaign
    at its best so far by then (held after it ends).
    """
    groups: dict[tuple[str, str], list[CampaignRecord]] = {}
    for c in campaigns:
        groups.setdefault((c.agent, c.agent_kind), []).append(c)
    horizon = max((sum(t.wall_s for t in c.trials) for c in campaigns), default=0.0)
    grid = [horizon * (i + 1) / TIME_POINTS for i in range(TIME_POINTS)] if horizon > 0 else []
    result = []
    for (agent, kind), members in sorted(groups.items()):
        members = sorted(members, key=lambda c: (c.started_at, c.campaign_id))
        curves = AgentCurves(agent=agent, agent_kind=kind, campaign_ids=[c.campaign_id for c in members])
        paths = [best_so_far(c) for c in members]
        for t in range(1, max((len(p) for p in paths), default=0) + 1):
            values = [p[t - 1][1] for p in paths if len(p) >= t]
            mean, sem = mean_sem(values)
            curves.by_trial.append({"trials": t, "mean": mean, "sem": sem, "campaigns": len(values)})
        for seconds in grid:
            values = [max([b for s, b in p if s <= seconds], default=0.0) for p in paths]
            mean, sem = mean_sem(values)
            curves.by_time.append({"seconds": seconds, "mean": mean, "sem": sem})
        tests = [c.normalized_test for c in members if c.normalized_test is not None and math.isfinite(c.normalized_test)]
        curves.test_mean, curves.test_sem = mean_sem(tests)
        curves.test_scores = len(tests)
        trials = [t for c in members for t in c.trials]
        curves.status_fractions = {s: (sum(t.status == s for t in trials) / len(trials) if trials else 0.0)
                                   for s in STATUSES}
        result.append(curves)
    return result


def run_study(task_id: str, agents: Sequence[str], *, campaigns: int, trials: int | None, minutes: float | None,
              seed: int = 0, workers: int = 1, store: Any = None,
              on_campaign: Callable[[CampaignRecord], None] | None = None) -> tuple[list[CampaignRecord], list[AgentCurves]]:
    """Run `campaigns` campaigns per agent (seeds seed, seed+1, ...), then the curves of those
    plus the finished external (human / AI) campaigns recorded for the task's version."""
    from interpgym.core.errors import UserError
    from interpgym.harness.campaign import run_campaign
    from interpgym.harness.store import RunStore
    from interpgym.harness.tasks import get_task

    if campaigns < 1:
        raise UserError(f"--campaigns must be >= 1 (got {campaigns})")
    if not agents:
        raise UserError("--agents needs at least one agent, e.g. --agents optuna,random")
    from interpgym.harness.agents.registry import AGENTS

    unknown = [a for a in agents if a not in AGENTS]
    if unknown:  # before any campaign runs, not after the first agent's
        raise UserError(f"unknown agent(s) {', '.join(unknown)}; choose from: {', '.join(AGENTS)} "
                        "(external campaigns recorded for the task are included automatically)")
    task = get_task(task_id)
    store = store or RunStore()
    ran = []
    for agent in agents:
        for i in range(campaigns):
            record = run_campaign(task_id, agent, trials=trials, minutes=minutes, seed=seed + i, store=store,
                                  workers=workers)
            ran.append(record)
            if on_campaign is not None:
                on_campaign(record)
    external = [c for c in store.campaigns(task_id) if c.agent_kind in ("ai", "human") and c.status == "finished"
                and c.task_version == task.version and c.campaign_id not in {r.campaign_id for r in ran}]
    pooled = ran + external
    return pooled, budget_curves(pooled)

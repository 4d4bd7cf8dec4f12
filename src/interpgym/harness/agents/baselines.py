"""The `starting` and `reference` agents: a task's baseline solutions, run through the normal trial path."""

from __future__ import annotations

from interpgym.harness.agents.base import TaskView
from interpgym.harness.records import AgentKind, Proposal, TrialRecord
from interpgym.harness.task import Solution


class BaselineAgent:
    """Proposes the same baseline solution every trial (repeat it across seeds to measure noise)."""

    kind: AgentKind = "builtin"

    def __init__(self, name: str, solution: Solution) -> None:
        self.name = name
        self.solution = solution

    def propose(self, task: TaskView, history: list[TrialRecord]) -> Proposal:
        return Proposal(params=self.solution.params, files=self.solution.files, note=f"{self.name} baseline")

"""The agent interface."""

from __future__ import annotations

from typing import Any, Protocol

from interpgym.harness.records import AgentKind, Proposal, TrialRecord


class TaskView(Protocol):
    """What an agent may see of a task: never the scorer or the test split."""

    id: str
    version: str
    instructions: str
    direction: str  # "max" | "min"
    editable_files: dict[str, str]  # path -> starting text
    search_space: dict[str, Any] | None
    constraints: tuple[Any, ...]  # `interpgym.harness.task.Constraint`s on the search-space parameters


class Agent(Protocol):
    """Proposes the next trial from the task view and the history of its own trials.

    Raising `BudgetExhausted` ends the campaign cleanly (e.g. LLM token budget spent).
    Agents may also take `pending` (proposals still running on other workers, see
    `run_campaign`'s `workers`); the campaign passes it only to agents that declare it.
    """

    name: str
    kind: AgentKind

    def propose(self, task: TaskView, history: list[TrialRecord]) -> Proposal: ...


class BudgetExhausted(Exception):
    """The agent has no budget left for another proposal."""

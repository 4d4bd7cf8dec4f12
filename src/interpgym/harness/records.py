"""Plain records passed between the harness pieces (store, agents, leaderboard, report).

These are the interfaces: the store persists them, agents read `TrialRecord` history
and return a `Proposal`, the leaderboard and report consume `CampaignRecord`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

Status = Literal["ok", "invalid", "crash", "timeout", "oom"]
STATUSES: tuple[Status, ...] = ("ok", "invalid", "crash", "timeout", "oom")
AgentKind = Literal["builtin", "ai", "human"]


@dataclass
class Proposal:
    """What an agent submits for one trial: parameters, or new contents of editable files, or both.

    `files` maps a workspace-relative path to its full new text. `note` is free text the
    agent wants recorded (e.g. its reasoning). `usage` reports tokens / cost spent
    producing this proposal (LLM agents), so the harness can enforce budgets.
    `malformed`, when set, says why the agent's reply broke its format: the harness then
    records the trial `invalid` with this text as its error, without running anything.
    """

    params: dict[str, Any] | None = None
    files: dict[str, str] | None = None
    note: str = ""
    usage: dict[str, float] = field(default_factory=dict)
    malformed: str | None = None


@dataclass
class TrialRecord:
    """One finished trial, as recorded (one row of the store)."""

    n: int
    status: Status
    val_score: float | None
    normalized: float | None
    params: dict[str, Any] | None = None
    files: dict[str, str] | None = None
    diff: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    peak_mem_mb: float | None = None
    error: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Budgets:
    """Campaign and per-trial budgets a task ships with (CLI options may lower or raise them).

    Typed everywhere in the harness; it becomes a dict only at the store boundary
    (`as_dict` to write, `from_dict` to read).
    """

    trials: int = 20
    minutes: float = 30.0
    trial_timeout_s: float = 300.0
    trial_memory_mb: int = 4096

    def as_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "minutes": self.minutes,
                "trial_timeout_s": self.trial_timeout_s, "trial_memory_mb": self.trial_memory_mb}

    @classmethod
    def from_dict(cls, stored: dict[str, Any] | None) -> Budgets:
        """The budgets a store row recorded; a key it lacks (an older row) takes the default."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in (stored or {}).items() if key in names})


@dataclass
class CampaignRecord:
    """A campaign: one agent working on one task version, and its trials."""

    campaign_id: str
    task: str
    task_version: str
    agent: str
    agent_kind: AgentKind
    seed: int
    budgets: Budgets
    harness_version: str
    status: Literal["running", "finished"] = "running"
    trials: list[TrialRecord] = field(default_factory=list)
    best_val: float | None = None
    best_trial: int | None = None
    test_score: float | None = None
    normalized_test: float | None = None
    started_at: float = 0.0
    finished_at: float | None = None

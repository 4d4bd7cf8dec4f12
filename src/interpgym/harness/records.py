"""Plain records passed between the harness pieces (store, agents, leaderboard, report).

These are the interfaces: the store persists them, agents read `TrialRecord` history
and return a `Proposal`, the leaderboard and report consume `CampaignRecord`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class CampaignRecord:
    """A campaign: one agent working on one task version, and its trials."""

    campaign_id: str
    task: str
    task_version: str
    agent: str
    agent_kind: AgentKind
    seed: int
    budgets: dict[str, Any]
    harness_version: str
    status: Literal["running", "finished"] = "running"
    trials: list[TrialRecord] = field(default_factory=list)
    best_val: float | None = None
    best_trial: int | None = None
    test_score: float | None = None
    normalized_test: float | None = None
    started_at: float = 0.0
    finished_at: float | None = None

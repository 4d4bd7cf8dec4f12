"""Agents by name. `make_agent` builds one for a campaign; the `external` agent has no loop (see `harness.external`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interpgym.core.errors import UserError
from interpgym.core.optional import import_feature
from interpgym.harness.agents.base import Agent
from interpgym.harness.agents.baselines import BaselineAgent
from interpgym.harness.agents.search import OptunaAgent, RandomAgent
from interpgym.harness.task import Task

AGENTS = ("starting", "reference", "random", "optuna", "llm")


def make_agent(name: str, task: Task, *, seed: int, starting_val: float | None = None,
               options: Mapping[str, Any] | None = None, already_spent: Mapping[str, float] | None = None) -> Agent:
    """The agent `name` for a campaign on `task` (`UserError` for an unknown name)."""
    options = dict(options or {})
    if name == "starting":
        return BaselineAgent("starting", task.starting)
    if name == "reference":
        return BaselineAgent("reference", task.reference)
    if name == "random":
        return RandomAgent(seed)
    if name == "optuna":
        return OptunaAgent(seed, starting_score=starting_val)
    if name == "llm":
        LLMAgent = import_feature("interpgym.harness.agents.llm", "the llm agent").LLMAgent
        return LLMAgent(seed=seed, already_spent=already_spent, **options)
    raise UserError(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)} (external: use `interpgym task init`)")

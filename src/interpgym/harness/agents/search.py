"""Parameter-only agents over a task's search space: `random` and `optuna` (TPE).

Both are pure functions of (seed, history): a resumed campaign proposes exactly what
an uninterrupted one would have. Trials that did not score (invalid, crash, timeout,
oom) are reported to TPE as scoring `worst_score(...)`: no better than the worst of
the starting solution and every scored trial, which is how the leaderboard counts
them, so TPE learns to avoid e.g. settings that break the sparsity budget.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna

from interpgym.core.errors import UserError
from interpgym.harness.agents.base import TaskView
from interpgym.harness.records import AgentKind, Proposal, TrialRecord


def _require_space(task: TaskView, agent: str) -> dict[str, dict[str, Any]]:
    if not task.search_space:
        raise UserError(f"task {task.id} has no search space, so the {agent!r} agent cannot work on it; use llm or external")
    return task.search_space


def _sample_random(spec: dict[str, Any], rng: np.random.Generator) -> Any:
    if spec["type"] == "categorical":
        return spec["choices"][int(rng.integers(len(spec["choices"])))]
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if spec["type"] == "int":
        if log:
            return int(min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high + 1) - 1e-12)) - 0.5))))
        return int(rng.integers(low, high + 1))
    return float(math.exp(rng.uniform(math.log(low), math.log(high)))) if log else float(rng.uniform(low, high))


class RandomAgent:
    """Independent uniform (log-uniform where `log`) samples; trial n uses the generator seeded (seed, n)."""

    name = "random"
    kind: AgentKind = "builtin"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def propose(self, task: TaskView, history: list[TrialRecord]) -> Proposal:
        space = _require_space(task, self.name)
        rng = np.random.default_rng([self.seed, len(history) + 1])
        return Proposal(params={name: _sample_random(spec, rng) for name, spec in space.items()})


def _distribution(spec: dict[str, Any]) -> optuna.distributions.BaseDistribution:
    if spec["type"] == "categorical":
        return optuna.distributions.CategoricalDistribution(spec["choices"])
    if spec["type"] == "int":
        return optuna.distributions.IntDistribution(spec["low"], spec["high"], log=spec.get("log", False))
    return optuna.distributions.FloatDistribution(spec["low"], spec["high"], log=spec.get("log", False))


def worst_score(history: list[TrialRecord], direction: str, starting: float | None) -> float:
    """The value reported to the optimiser for a trial that did not score."""
    scored = [t.val_score for t in history if t.status == "ok" and t.val_score is not None]
    if starting is not None:
        scored.append(starting)
    if not scored:
        return 0.0
    return min(scored) if direction == "max" else max(scored)


class OptunaAgent:
    """Optuna's TPE sampler, seeded; the study is rebuilt from the history on every proposal.

    A point already tried is not proposed again while an untried one can be found.
    """

    name = "optuna"
    kind: AgentKind = "builtin"

    def __init__(self, seed: int, starting_score: float | None = None, n_startup_trials: int = 5,
                 max_reasks: int = 20) -> None:
        self.seed = seed
        self.starting_score = starting_score
        self.n_startup_trials = n_startup_trials
        self.max_reasks = max_reasks

    def propose(self, task: TaskView, history: list[TrialRecord]) -> Proposal:
        space = _require_space(task, self.name)
        distributions = {name: _distribution(spec) for name, spec in space.items()}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # Hashed, not consecutive, seeds: MT19937 streams from nearby integer seeds start correlated.
        proposal_seed = int(np.random.SeedSequence([self.seed, len(history)]).generate_state(1)[0])
        sampler = optuna.samplers.TPESampler(seed=proposal_seed, n_startup_trials=self.n_startup_trials)
        study = optuna.create_study(direction="maximize" if task.direction == "max" else "minimize", sampler=sampler)
        fallback = worst_score(history, task.direction, self.starting_score)
        for trial in history:
            params = trial.params or {}
            if set(params) != set(distributions) or any(
                not distributions[k]._contains(distributions[k].to_internal_repr(v)) for k, v in params.items()
            ):
                continue  # not a point of this space (e.g. an edited-files trial): nothing to learn from
            value = trial.val_score if trial.status == "ok" and trial.val_score is not None else fallback
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
        # Every trial of a campaign runs with the campaign's seed, so re-proposing a point
        # already tried only repeats its result: ask again (TPE's own draws first, then
        # uniform ones) for an untried point; repeat only when the space is exhausted.
        tried = [t.params for t in history if t.params]
        params = dict(study.ask(distributions).params)
        for _ in range(self.max_reasks):
            if params not in tried:
                break
            params = dict(study.ask(distributions).params)
        rng = np.random.default_rng([self.seed, len(history) + 1, 1])
        for _ in range(self.max_reasks):
            if params not in tried:
                break
            params = {name: _sample_random(spec, rng) for name, spec in space.items()}
        return Proposal(params=params)

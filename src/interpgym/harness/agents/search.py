"""Parameter-only agents over a task's search space: `random` and `optuna` (TPE).

Both are pure functions of (seed, history, pending): a resumed campaign proposes
exactly what an uninterrupted one would have, and with one worker (nothing pending)
the proposals are the sequential ones.

Constraints. A task may declare constraints on its parameters known before running
(e.g. `sae/toy`'s top-k `k <= 5`, the L0 budget). `random` samples only the valid
region (rejection sampling, seeded); `optuna` records every trial that did not score
(invalid, crash, timeout, oom) and every declared-constraint violation as an
*infeasible* trial (Optuna's constraint values: > 0 violated), which TPE ranks below
every feasible one, so it learns from invalid trials; its proposals that violate a
declared constraint are told back as infeasible and asked again. Failed trials also
get the value `worst_score(...)` (no better than the worst of the starting solution
and every scored trial), as the leaderboard counts them.

Batches (`pending`: proposals still running on other workers) use Optuna's constant
liar: running trials count as bad ones, so TPE spreads a batch instead of proposing
one point N times; `random` draws trial n from the generator seeded (seed, n).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna

from interpgym.core.errors import UserError
from interpgym.harness.agents.base import TaskView
from interpgym.harness.records import AgentKind, Proposal, TrialRecord

MAX_REJECTIONS = 1000  # draws tried for a valid point before giving up (the valid region is then tiny)


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

    def propose(self, task: TaskView, history: list[TrialRecord], pending: list[Proposal] = ()) -> Proposal:
        space = _require_space(task, self.name)
        rng = np.random.default_rng([self.seed, len(history) + len(pending) + 1])
        return Proposal(params=sample_valid(task, space, rng))


def violations(task: TaskView, params: dict[str, Any]) -> dict[str, float]:
    """Declared constraint name -> violation (> 0: violated) of `params`; {} for a task without constraints."""
    return {c.name: c.violation(params) for c in getattr(task, "constraints", ()) or ()}


def sample_valid(task: TaskView, space: dict[str, dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    """A uniform sample of the part of `space` that meets the task's declared constraints (rejection sampling).

    Raises `UserError` if no valid point turns up in `MAX_REJECTIONS` draws.
    """
    for _ in range(MAX_REJECTIONS):
        params = {name: _sample_random(spec, rng) for name, spec in space.items()}
        if all(v <= 0 for v in violations(task, params).values()):
            return params
    raise UserError(f"task {task.id}: no point of its search space met its constraints in {MAX_REJECTIONS} draws")


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

    def propose(self, task: TaskView, history: list[TrialRecord], pending: list[Proposal] = ()) -> Proposal:
        space = _require_space(task, self.name)
        distributions = {name: _distribution(spec) for name, spec in space.items()}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # Hashed, not consecutive, seeds: MT19937 streams from nearby integer seeds start correlated.
        proposal_seed = int(np.random.SeedSequence([self.seed, len(history) + len(pending)]).generate_state(1)[0])
        sampler = optuna.samplers.TPESampler(seed=proposal_seed, n_startup_trials=self.n_startup_trials,
                                             constant_liar=True)
        study = optuna.create_study(direction="maximize" if task.direction == "max" else "minimize", sampler=sampler)
        fallback = worst_score(history, task.direction, self.starting_score)

        def in_space(params: dict[str, Any] | None) -> bool:
            return params is not None and set(params) == set(distributions) and all(
                distributions[k]._contains(distributions[k].to_internal_repr(v)) for k, v in params.items())

        for trial in history:
            if not in_space(trial.params):
                continue  # not a point of this space (e.g. an edited-files trial): nothing to learn from
            scored = trial.status == "ok" and trial.val_score is not None
            constraints = {k: v for k, v in violations(task, trial.params).items() if v > 0}
            if not scored:
                constraints["scored"] = 1.0  # invalid, crash, timeout, oom: infeasible, learn to avoid it
            study.add_trial(optuna.trial.create_trial(
                params=trial.params, distributions=distributions, value=trial.val_score if scored else fallback,
                constraints=constraints or None))
        for proposal in pending:  # running on other workers: the constant liar spreads the batch
            if in_space(proposal.params):
                study.add_trial(optuna.trial.create_trial(params=proposal.params, distributions=distributions,
                                                          state=optuna.trial.TrialState.RUNNING))
        # Every trial of a campaign runs with the campaign's seed, so re-proposing a point
        # already tried (or running) only repeats its result: ask again for an untried point
        # that meets the declared constraints (TPE's own draws first, told back as infeasible
        # when they break a constraint, then valid uniform ones); repeat only when exhausted.
        tried = [t.params for t in history if t.params] + [p.params for p in pending if p.params]

        def acceptable(params: dict[str, Any]) -> bool:
            return params not in tried and all(v <= 0 for v in violations(task, params).values())

        params: dict[str, Any] = {}
        for _ in range(self.max_reasks):
            asked = study.ask(distributions)
            params = dict(asked.params)
            broken = {k: v for k, v in violations(task, params).items() if v > 0}
            if broken:
                for name, value in broken.items():
                    asked.set_constraint(name, value)
                study.tell(asked, fallback)
                continue
            if params not in tried:
                return Proposal(params=params)
        rng = np.random.default_rng([self.seed, len(history) + len(pending) + 1, 1])
        for _ in range(self.max_reasks):
            params = sample_valid(task, space, rng)
            if acceptable(params):
                break
        return Proposal(params=params)

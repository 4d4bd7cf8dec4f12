"""Campaigns: an agent proposes, the harness runs and scores, the store records; then the test score.

`run_campaign` is resumable: everything it needs is in the store, so `resume=ID` after
a crash or SIGKILL continues at the next trial number (a trial that was running when
the process died is simply run again; finished ones are never re-run or duplicated).
Budgets: `trials` (count) and `minutes` (sum of recorded trial wall times, proposal
included); the per-trial timeout never extends past what is left of `minutes`.
Finalisation scores the best validation trial's kept artifact once on the test split.
"""

from __future__ import annotations

import difflib
import inspect
import json
import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from interpgym.core.cache import get_or_build, home
from interpgym.core.errors import UserError
from interpgym.harness.agents.base import Agent, BudgetExhausted
from interpgym.harness.agents.registry import make_agent
from interpgym.harness.executors import LocalExecutor, TrialExecutor, execute_proposal  # noqa: F401 (re-exported)
from interpgym.harness.records import Budgets, CampaignRecord, Proposal, TrialRecord
from interpgym.harness.sandbox import Limits
from interpgym.harness.secret import secret_id
from interpgym.harness.store import RunStore
from interpgym.harness.task import InvalidSolution, Solution, Task
from interpgym.harness.tasks import get_task
from interpgym.harness.trial import TrialOutcome, inputs_dir, run_trial, score_artifact

HARNESS_VERSION = "1"
NOISE_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class BaselineScores:
    """Val and test scores of the starting and reference solutions (scored once, cached)."""

    starting_val: float
    starting_test: float
    reference_val: float
    reference_test: float

    def normalize(self, score: float | None, split: str) -> float | None:
        """(s - s_start) / (s_ref - s_start) on `split`; None if undefined (no score, or equal baselines)."""
        start = self.starting_val if split == "val" else self.starting_test
        ref = self.reference_val if split == "val" else self.reference_test
        if score is None or ref == start:
            return None
        return (score - start) / (ref - start)


def _score_baseline(task: Task, solution: Solution, seed: int) -> dict[str, Any]:
    outcome = run_trial(task, files=solution.files, params=solution.params, seed=seed, splits=("val", "test"))
    if outcome.status != "ok":
        raise RuntimeError(f"task {task.key}: baseline failed with status {outcome.status}: {outcome.error}")
    return {split: {"value": s.value, "metrics": s.metrics} for split, s in outcome.scores.items()}


def baseline_run(task: Task, name: str, seed: int = 0) -> dict[str, Any]:
    """Baseline `name` ("starting" | "reference") scored on val and test at `seed`: run once, cached."""
    solution = {"starting": task.starting, "reference": task.reference}[name]
    config = {"task": task.id, "version": task.version, "spec": task.spec_hash, "baseline": name, "seed": seed,
              "secret": secret_id(), "harness": HARNESS_VERSION}

    def build(out: Path) -> None:
        (out / "scores.json").write_text(json.dumps(_score_baseline(task, solution, seed), indent=1))

    return json.loads((get_or_build("harness-baselines", config, build) / "scores.json").read_text())


def baselines(task: Task) -> BaselineScores:
    """The normalisation anchors of `task` (baselines at seed 0)."""
    start, ref = baseline_run(task, "starting"), baseline_run(task, "reference")
    return BaselineScores(start["val"]["value"], start["test"]["value"], ref["val"]["value"], ref["test"]["value"])


def reference_test_scores(task: Task, seeds: tuple[int, ...] = NOISE_SEEDS) -> list[float]:
    """The reference solution's test score at each of `seeds` (>= 3 for a noise floor; cached)."""
    return [baseline_run(task, "reference", s)["test"]["value"] for s in seeds]


def noise_floors(task_ids: list[str]) -> dict[str, float]:
    """Per task: the leaderboard's noise floor (normalised spread of the reference over `NOISE_SEEDS`)."""
    from interpgym.harness.leaderboard import noise_floor

    floors = {}
    for task_id in task_ids:
        task = get_task(task_id)
        base = baselines(task)
        floors[task_id] = noise_floor(reference_test_scores(task), base.starting_test, base.reference_test)
    return floors


def _diff(task: Task, files: dict[str, str] | None) -> str:
    if not files:
        return ""
    chunks = []
    for path, text in sorted(files.items()):
        before = task.editable_files.get(path, "")
        chunks.extend(difflib.unified_diff(before.splitlines(True), text.splitlines(True), f"a/{path}", f"b/{path}"))
    return "".join(chunks)


def artifact_path(campaign_id: str, n: int) -> Path:
    return home() / "runs" / campaign_id / f"trial-{n:04d}"


def record_trial(store: RunStore, task: Task, campaign_id: str, n: int, proposal: Proposal, outcome: TrialOutcome,
                 wall_s: float, base: BaselineScores) -> TrialRecord:
    """Build the `TrialRecord` of a finished trial and commit it (one transaction)."""
    val = outcome.scores.get("val")
    metrics = dict(val.metrics) if val else {}
    trial = TrialRecord(
        n=n, status=outcome.status, val_score=val.value if val else None,
        normalized=base.normalize(val.value if val else None, "val"), params=proposal.params,
        files=proposal.files, diff=_diff(task, proposal.files), metrics=metrics, wall_s=wall_s,
        peak_mem_mb=outcome.peak_mem_mb, error=outcome.error, note=proposal.note,
    )
    store.add_trial(campaign_id, trial, usage=dict(proposal.usage), isolation=outcome.isolation)
    return trial


def best_trial(task: Task, trials: list[TrialRecord]) -> TrialRecord | None:
    """The ok trial with the best val score (earliest on ties)."""
    best = None
    for trial in trials:
        if trial.status == "ok" and trial.val_score is not None and (best is None or task.better(trial.val_score, best.val_score)):
            best = trial
    return best


def finalize(store: RunStore, task: Task, campaign_id: str) -> CampaignRecord:
    """Score the best val trial once on test and mark the campaign finished (idempotent)."""
    record = store.campaign(campaign_id)
    if record.status == "finished":
        return record
    best = best_trial(task, record.trials)
    test_value, normalized_test, test_metrics = None, None, None
    if best is not None:
        try:
            score = score_artifact(task, artifact_path(campaign_id, best.n), "test", record.seed)
            test_value, test_metrics = score.value, score.metrics
            normalized_test = baselines(task).normalize(test_value, "test")
        except (InvalidSolution, OSError) as exc:
            test_metrics = {"error": f"test scoring failed: {exc}"}
    store.finish_campaign(campaign_id, best_trial=best.n if best else None, best_val=best.val_score if best else None,
                          test_score=test_value, normalized_test=normalized_test, test_metrics=test_metrics)
    return store.campaign(campaign_id)


def check_seed(seed: int) -> int:
    """`seed` if it is a valid campaign seed (a non-negative integer), else a `UserError`."""
    if seed < 0:
        raise UserError(f"--seed must be >= 0 (got {seed})")
    return seed


def resolve_budgets(task: Task, trials: int | None, minutes: float | None, agent: str) -> Budgets:
    """The task's budgets with the CLI's `--trials` / `--minutes` applied (one trial for the baseline agents)."""
    budgets = task.budgets
    if agent in ("starting", "reference"):
        budgets = replace(budgets, trials=1)
    if trials is not None:
        if trials < 1:
            raise UserError(f"--trials must be >= 1 (got {trials})")
        budgets = replace(budgets, trials=trials)
    if minutes is not None:
        if not minutes > 0:
            raise UserError(f"--minutes must be > 0 (got {minutes})")
        budgets = replace(budgets, minutes=minutes)
    return budgets


def _check_resume(existing: CampaignRecord, resume: str, task_id: str | None, agent_name: str | None) -> None:
    """A resumed campaign keeps its task and agent: a different one asked for is a `UserError` naming both."""
    asked_task = task_id and task_id != existing.task
    asked_agent = agent_name and agent_name not in (existing.agent, existing.agent.split(":")[0])
    if asked_task or asked_agent:
        asked = " ".join(part for part in (f"task {task_id}" if asked_task else "",
                                           f"agent {agent_name}" if asked_agent else "") if part)
        raise UserError(f"campaign {resume} runs agent {existing.agent} on task {existing.task}, not {asked}; "
                        f"resume it as `campaign run {existing.task} --resume {resume}` (without --agent) "
                        "or start a new campaign")


def _propose(agent: Agent, task: Task, history: list[TrialRecord], pending: list[Proposal]) -> Proposal:
    """The agent's next proposal; agents that accept `pending` see the proposals still running."""
    if pending and "pending" in inspect.signature(agent.propose).parameters:
        return agent.propose(task, history, pending=pending)  # type: ignore[call-arg]
    return agent.propose(task, history)


def run_campaign(
    task_id: str | None,
    agent_name: str | None,
    *,
    trials: int | None = None,
    minutes: float | None = None,
    seed: int = 0,
    resume: str | None = None,
    store: RunStore | None = None,
    agent_options: Mapping[str, Any] | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    agent: Agent | None = None,
    workers: int = 1,
    executor: TrialExecutor | None = None,
) -> CampaignRecord:
    """Run (or resume) a campaign to its budget, then finalise it. Returns the finished record.

    Up to `workers` trials are in flight at once (on `executor`, default: sandboxed
    processes on this machine); the agent proposes while earlier trials run, and sees
    the proposals still running (`pending`) if it takes them. Trials are committed to the
    store in trial-number order by this process alone, so a kill at any moment loses at
    most the trials in flight (finished ones not yet committed rerun on resume) and never
    records one twice. With `workers=1` the sequence of proposals and results is exactly
    the sequential one. On resume, `task_id`/`agent_name` (if given) must match the
    campaign's, else `UserError`.
    """
    if workers < 1:
        raise UserError(f"--workers must be >= 1 (got {workers})")
    store = store or RunStore()
    if resume:
        existing = store.campaign(resume)
        _check_resume(existing, resume, task_id, agent_name)
        task = get_task(existing.task)
        if existing.task_version != task.version:
            raise UserError(f"campaign {resume} ran {existing.task}@{existing.task_version} but this installation has "
                            f"version {task.version}; start a new campaign")
        campaign_id, seed, budgets, agent_name = resume, existing.seed, existing.budgets, existing.agent
        agent_options = store.campaign_options(resume)
    else:
        if not task_id:
            raise UserError("a task id is needed to start a campaign")
        agent_name = agent_name or "optuna"
        task = get_task(task_id)
        budgets = resolve_budgets(task, trials, minutes, agent_name)
        check_seed(seed)
    base = baselines(task)
    spent: dict[str, float] = {}
    if resume:
        for usage in store.trial_usage(campaign_id):
            for key, value in usage.items():
                spent[key] = spent.get(key, 0.0) + value
    if agent is None:
        agent = make_agent(agent_name.split(":")[0], task, seed=seed, starting_val=base.starting_val,
                           options=agent_options, already_spent=spent)
    if not resume:
        campaign_id = store.create_campaign(
            task=task.id, task_version=task.version, agent=agent.name, agent_kind=agent.kind, seed=seed,
            budgets=budgets, harness_version=HARNESS_VERSION, options=dict(agent_options or {}))
    history = store.trials(campaign_id)
    inputs_dir(task)  # build the read-only inputs once, before workers race for them
    own_executor = executor is None
    executor = executor or LocalExecutor(workers)
    in_flight: dict[int, tuple[Future, Proposal, float]] = {}
    finished: dict[int, tuple[Proposal, TrialOutcome, float]] = {}
    next_n, exhausted = len(history) + 1, False
    try:
        while True:
            while not exhausted and len(in_flight) < workers and next_n <= budgets.trials:
                used = sum(t.wall_s for t in history) + sum(wall for _, _, wall in finished.values())
                remaining_s = budgets.minutes * 60 - used
                if remaining_s <= 0:
                    exhausted = True
                    break
                start = time.perf_counter()
                try:
                    # Pending: every proposal not committed yet (running, or done but waiting for an
                    # earlier trial number), in trial-number order.
                    pending = [item[1] for _, item in sorted({**in_flight, **{
                        n: (None, p, None) for n, (p, _, _) in finished.items()}}.items())]
                    proposal = _propose(agent, task, history, pending)
                except BudgetExhausted:
                    exhausted = True
                    break
                limits = Limits(timeout_s=min(budgets.trial_timeout_s, max(remaining_s, 1.0)),
                                memory_mb=budgets.trial_memory_mb)
                future = executor.submit(task, proposal, seed=seed, limits=limits,
                                         keep_to=artifact_path(campaign_id, next_n))
                in_flight[next_n] = (future, proposal, start)
                next_n += 1
            if not in_flight:
                break
            wait([future for future, _, _ in in_flight.values()], return_when=FIRST_COMPLETED)
            for n in [n for n, (future, _, _) in in_flight.items() if future.done()]:
                future, proposal, start = in_flight.pop(n)
                finished[n] = (proposal, future.result(), time.perf_counter() - start)
            while len(history) + 1 in finished:  # commit in trial-number order
                n = len(history) + 1
                proposal, outcome, wall_s = finished.pop(n)
                trial = record_trial(store, task, campaign_id, n, proposal, outcome, wall_s, base)
                history.append(trial)
                prune_artifacts(task, campaign_id, history)
                if on_trial is not None:
                    on_trial(trial)
    finally:
        if own_executor:
            executor.shutdown()
    return finalize(store, task, campaign_id)


def prune_artifacts(task: Task, campaign_id: str, history: list[TrialRecord]) -> None:
    """Keep only the best committed trial's artifact (the test split needs no other); trials
    not in `history` yet (in flight) are left alone."""
    best = best_trial(task, history)
    keep = artifact_path(campaign_id, best.n).name if best is not None else None
    committed = {artifact_path(campaign_id, t.n).name for t in history}
    for other in artifact_path(campaign_id, 0).parent.glob("trial-*"):
        # Trials still running (or finished, not yet committed) keep theirs: one may become the best.
        if other.name != keep and other.name.removesuffix(".tmp") in committed:
            shutil.rmtree(other, ignore_errors=True)


def task_plots(campaigns: list[CampaignRecord], out_dir: Path) -> dict[str, list[Path]]:
    """The tasks' own plots (for the report) of `campaigns`, written under `out_dir`."""
    plots: dict[str, list[Path]] = {}
    for task_id in sorted({c.task for c in campaigns}):
        task = get_task(task_id)
        if task.plots is not None:
            directory = out_dir / task_id.replace("/", "-")
            directory.mkdir(parents=True, exist_ok=True)
            plots[task_id] = task.plots([c for c in campaigns if c.task == task_id], directory)
    return plots


def trial_json(trial: TrialRecord) -> dict[str, Any]:
    """One trial of the campaign JSON: what was tried (params or diff, note), how it went, its val metrics."""
    return {"n": trial.n, "status": trial.status, "val_score": trial.val_score, "normalized": trial.normalized,
            "wall_s": trial.wall_s, "peak_mem_mb": trial.peak_mem_mb, "error": trial.error,
            "params": trial.params, "diff": trial.diff, "note": trial.note, "metrics": trial.metrics}


def summary(record: CampaignRecord, store: RunStore | None = None) -> dict[str, Any]:
    """The campaign JSON of the CLI contract (stable keys).

    `best.test_error` says why a finished campaign has no test score (e.g. its best val
    SAE is over the L0 budget on the test split: the test result is then a failure).
    """
    task = get_task(record.task)
    base = baselines(task)
    test_metrics = (store or RunStore()).test_metrics(record.campaign_id) or {}
    return {
        "campaign_id": record.campaign_id,
        "task": record.task,
        "task_version": record.task_version,
        "agent": record.agent,
        "agent_kind": record.agent_kind,
        "seed": record.seed,
        "status": record.status,
        "budgets": record.budgets.as_dict(),
        "harness_version": record.harness_version,
        "trials": [trial_json(t) for t in record.trials],
        "best": {"trial": record.best_trial, "val": record.best_val,
                 "normalized_val": base.normalize(record.best_val, "val"),
                 "test": record.test_score, "normalized_test": record.normalized_test,
                 "test_metrics": {k: v for k, v in test_metrics.items() if k != "error"},
                 "test_error": test_metrics.get("error")},
        "baselines": {"starting": {"val": base.starting_val, "test": base.starting_test},
                      "reference": {"val": base.reference_val, "test": base.reference_test}},
    }

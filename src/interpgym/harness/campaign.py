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
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpgym.core.cache import get_or_build, home
from interpgym.core.errors import UserError
from interpgym.harness.agents.base import Agent, BudgetExhausted
from interpgym.harness.agents.registry import make_agent
from interpgym.harness.records import CampaignRecord, Proposal, TrialRecord
from interpgym.harness.sandbox import Limits
from interpgym.harness.secret import secret_id
from interpgym.harness.store import RunStore
from interpgym.harness.task import InvalidSolution, Solution, Task
from interpgym.harness.tasks import get_task
from interpgym.harness.trial import TrialOutcome, run_trial, score_artifact

HARNESS_VERSION = "1"
NOISE_SEEDS = (0, 1, 2)
MALFORMED_PREFIX = "malformed reply: "  # the llm agent's marker for a reply that broke its format


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


def execute_proposal(task: Task, proposal: Proposal, *, seed: int, limits: Limits, keep_to: Path) -> TrialOutcome:
    """Run one proposal as a trial on val; malformed proposals are `invalid` without running."""
    if proposal.files is None and proposal.params is None and proposal.note.startswith(MALFORMED_PREFIX):
        return TrialOutcome(status="invalid", error=proposal.note)
    return run_trial(task, files=proposal.files, params=proposal.params, seed=seed, splits=("val",),
                     limits=limits, keep_artifact_to=keep_to)


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


def resolve_budgets(task: Task, trials: int | None, minutes: float | None, agent: str) -> dict[str, Any]:
    budgets = task.budgets.as_dict()
    if agent in ("starting", "reference"):
        budgets["trials"] = 1
    if trials is not None:
        if trials < 1:
            raise UserError(f"--trials must be >= 1 (got {trials})")
        budgets["trials"] = trials
    if minutes is not None:
        if not minutes > 0:
            raise UserError(f"--minutes must be > 0 (got {minutes})")
        budgets["minutes"] = minutes
    return budgets


def run_campaign(
    task_id: str,
    agent_name: str,
    *,
    trials: int | None = None,
    minutes: float | None = None,
    seed: int = 0,
    resume: str | None = None,
    store: RunStore | None = None,
    agent_options: Mapping[str, Any] | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    agent: Agent | None = None,
) -> CampaignRecord:
    """Run (or resume) a campaign to its budget, then finalise it. Returns the finished record."""
    store = store or RunStore()
    if resume:
        existing = store.campaign(resume)
        if task_id and task_id != existing.task:
            raise UserError(f"campaign {resume} is on {existing.task}, not {task_id}")
        task = get_task(existing.task)
        if existing.task_version != task.version:
            raise UserError(f"campaign {resume} ran {existing.task}@{existing.task_version} but this installation has "
                            f"version {task.version}; start a new campaign")
        campaign_id, seed, budgets, agent_name = resume, existing.seed, existing.budgets, existing.agent
        agent_options = store.campaign_options(resume)
    else:
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
    while len(history) < budgets["trials"]:
        remaining_s = budgets["minutes"] * 60 - sum(t.wall_s for t in history)
        if remaining_s <= 0:
            break
        start = time.perf_counter()
        try:
            proposal = agent.propose(task, history)
        except BudgetExhausted:
            break
        limits = Limits(timeout_s=min(budgets["trial_timeout_s"], max(remaining_s, 1.0)),
                        memory_mb=budgets["trial_memory_mb"])
        n = len(history) + 1
        outcome = execute_proposal(task, proposal, seed=seed, limits=limits, keep_to=artifact_path(campaign_id, n))
        trial = record_trial(store, task, campaign_id, n, proposal, outcome, time.perf_counter() - start, base)
        history.append(trial)
        prune_artifacts(task, campaign_id, history)
        if on_trial is not None:
            on_trial(trial)
    return finalize(store, task, campaign_id)


def prune_artifacts(task: Task, campaign_id: str, history: list[TrialRecord]) -> None:
    """Keep only the best trial's artifact: the test split needs no other."""
    best = best_trial(task, history)
    keep = artifact_path(campaign_id, best.n).name if best is not None else None
    for other in artifact_path(campaign_id, 0).parent.glob("trial-*"):
        if other.name != keep:
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
        "budgets": record.budgets,
        "harness_version": record.harness_version,
        "trials": [{"n": t.n, "status": t.status, "val_score": t.val_score, "normalized": t.normalized,
                    "wall_s": t.wall_s, "peak_mem_mb": t.peak_mem_mb, "error": t.error} for t in record.trials],
        "best": {"trial": record.best_trial, "val": record.best_val,
                 "normalized_val": base.normalize(record.best_val, "val"),
                 "test": record.test_score, "normalized_test": record.normalized_test,
                 "test_metrics": {k: v for k, v in test_metrics.items() if k != "error"},
                 "test_error": test_metrics.get("error")},
        "baselines": {"starting": {"val": base.starting_val, "test": base.starting_test},
                      "reference": {"val": base.reference_val, "test": base.reference_test}},
    }

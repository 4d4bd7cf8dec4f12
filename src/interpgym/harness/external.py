"""The `external` agent: a person or a coding agent works in a directory; the harness scores on request.

`init_workspace` creates a campaign (agent name and declared kind `human`/`ai`) and a
directory with the editable files, the instructions, the read-only inputs and, for
tasks with a search space, `params.json`. `score_workspace` runs one trial on the val
split from the directory's current editable files (a fresh copy: nothing else in the
directory is used), records it and counts it against the trial budget;
`submit_workspace` ends the campaign with the test score of the best val trial.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from interpgym.core.errors import UserError, require
from interpgym.harness.campaign import (
    HARNESS_VERSION, baselines, check_seed, execute_proposal, finalize, prune_artifacts, record_trial, resolve_budgets, artifact_path,
)
from interpgym.harness.records import CampaignRecord, Proposal, TrialRecord
from interpgym.harness.sandbox import Limits
from interpgym.harness.store import RunStore
from interpgym.harness.tasks import get_task
from interpgym.harness.trial import DATA_DIR, inputs_dir

MARKER = ".interpgym-campaign.json"


def init_workspace(task_id: str, directory: Path, *, kind: str, name: str, seed: int = 0,
                   trials: int | None = None, minutes: float | None = None, store: RunStore | None = None) -> str:
    """Create the campaign and its working directory; return the campaign id."""
    require(kind in ("human", "ai"), f"--as must be human or ai (got {kind!r})")
    require(bool(name.strip()), "give the agent a name: --as human|ai NAME")
    directory = Path(directory)
    require(not directory.exists() or directory.is_dir(), f"{directory} is a file; pick a new directory for the workspace")
    require(not directory.exists() or not any(directory.iterdir()),
            f"{directory} is not empty; pick a new directory for the workspace")
    task = get_task(task_id)
    check_seed(seed)
    budgets = resolve_budgets(task, trials, minutes, "external")
    store = store or RunStore()
    baselines(task)  # fail early (and cache) before the person starts working
    # Build the workspace under a temp name first: a directory that cannot be written must
    # fail before a campaign is recorded (no dangling "running" campaign, no half a workspace).
    staging = directory.with_name(directory.name + ".interpgym-tmp")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for rel, text in task.editable_files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(text)
        (staging / "INSTRUCTIONS.md").write_text(task.instructions)
        shutil.copytree(inputs_dir(task), staging / DATA_DIR)
        (staging / DATA_DIR / "MANIFEST.json").unlink(missing_ok=True)
        if task.search_space:
            (staging / "params.json").write_text(json.dumps(task.starting.params or task.default_params, indent=1))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"cannot create the workspace {directory}: {exc.strerror or exc}; choose a writable path") from None
    campaign_id = store.create_campaign(task=task.id, task_version=task.version, agent=name, agent_kind=kind,
                                        seed=seed, budgets=budgets, harness_version=HARNESS_VERSION)
    (staging / MARKER).write_text(json.dumps({"campaign_id": campaign_id, "task": task.id, "version": task.version}))
    if directory.exists():
        directory.rmdir()
    staging.rename(directory)
    return campaign_id


def _campaign_of(directory: Path, store: RunStore) -> CampaignRecord:
    marker = Path(directory) / MARKER
    require(marker.is_file(), f"{directory} is not a task workspace (no {MARKER}); create one with `interpgym task init`")
    try:
        campaign_id = json.loads(marker.read_text())["campaign_id"]
    except (ValueError, KeyError) as exc:
        raise UserError(f"{marker} is corrupt; create a new workspace with `interpgym task init`") from exc
    return store.campaign(campaign_id)


def _proposal_from(directory: Path, task: Any) -> Proposal:
    files = {}
    for rel in task.editable_files:
        path = Path(directory) / rel
        require(path.is_file(), f"{path} is missing; restore it (every editable file must exist)")
        files[rel] = path.read_text()
    params = None
    if task.search_space and (Path(directory) / "params.json").is_file():
        try:
            params = json.loads((Path(directory) / "params.json").read_text())
        except ValueError as exc:
            raise UserError(f"{directory}/params.json is not valid JSON: {exc}") from exc
    return Proposal(files=files, params=params)


def score_workspace(directory: Path, *, store: RunStore | None = None, note: str = "") -> TrialRecord:
    """Run and record one val trial from the directory's editable files."""
    store = store or RunStore()
    record = _campaign_of(directory, store)
    require(record.status == "running", f"campaign {record.campaign_id} is already submitted; start a new one with `interpgym task init`")
    require(len(record.trials) < record.budgets["trials"],
            f"trial budget spent ({record.budgets['trials']}); submit with `interpgym task submit {directory}`")
    task = get_task(record.task)
    require(task.version == record.task_version, f"task {task.id} changed version since this workspace was made")
    proposal = _proposal_from(directory, task)
    proposal.note = note
    n = len(record.trials) + 1
    start = time.perf_counter()
    outcome = execute_proposal(task, proposal, seed=record.seed,
                               limits=Limits(timeout_s=record.budgets["trial_timeout_s"], memory_mb=record.budgets["trial_memory_mb"]),
                               keep_to=artifact_path(record.campaign_id, n))
    trial = record_trial(store, task, record.campaign_id, n, proposal, outcome, time.perf_counter() - start, baselines(task))
    prune_artifacts(task, record.campaign_id, [*record.trials, trial])
    return trial


def submit_workspace(directory: Path, *, store: RunStore | None = None) -> CampaignRecord:
    """End the workspace's campaign: the best val trial is scored once on test."""
    store = store or RunStore()
    record = _campaign_of(directory, store)
    return finalize(store, get_task(record.task), record.campaign_id)

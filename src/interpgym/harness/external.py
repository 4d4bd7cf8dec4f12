"""The `external` agent: a person or a coding agent works in a directory; the harness scores on request.

`init_workspace` creates a campaign (agent name and declared kind `human`/`ai`) and a
directory with the editable files, the instructions, the read-only inputs and, for
tasks with a search space, `params.json`. `score_workspace` runs one trial on the val
split from the directory's current editable files (a fresh copy: nothing else in the
directory is used), records it and counts it against the trial budget;
`submit_workspace` ends the campaign with the test score of the best val trial.

A workspace is bound to its campaign: the store keeps the directory's real path and the
hash of a random token that only the workspace's marker file holds, so a marker edited
to name another campaign (or copied into another directory) is refused. Scoring and
submitting hold the campaign's lock, so two `task score` runs on one campaign cannot
interleave (each trial number, and its kept artifact, belongs to exactly one run).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interpgym.core.cache import home
from interpgym.core.errors import UserError, require
from interpgym.harness.campaign import (
    HARNESS_VERSION,
    artifact_path,
    baselines,
    check_seed,
    execute_proposal,
    finalize,
    prune_artifacts,
    record_trial,
    resolve_budgets,
)
from interpgym.harness.records import CampaignRecord, Proposal, TrialRecord
from interpgym.harness.sandbox import Limits
from interpgym.harness.store import RunStore
from interpgym.harness.tasks import get_task
from interpgym.harness.trial import DATA_DIR, MAX_EDITABLE_BYTES, inputs_dir

MARKER = ".interpgym-campaign.json"


def init_workspace(task_id: str, directory: Path, *, kind: str, name: str, seed: int = 0,
                   trials: int | None = None, minutes: float | None = None, store: RunStore | None = None) -> str:
    """Create the campaign and its working directory; return the campaign id."""
    require(kind in ("human", "ai"), f"--as must be human or ai (got {kind!r})")
    require(bool(name.strip()), "give the agent a name: --as human|ai NAME")
    check_seed(seed)
    directory = Path(directory)
    require(not directory.exists() or directory.is_dir(), f"{directory} is a file; pick a new directory for the workspace")
    require(not directory.exists() or not any(directory.iterdir()),
            f"{directory} is not empty; pick a new directory for the workspace")
    task = get_task(task_id)
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
    token = secrets.token_hex(16)
    campaign_id = store.create_campaign(task=task.id, task_version=task.version, agent=name, agent_kind=kind,
                                        seed=seed, budgets=budgets, harness_version=HARNESS_VERSION,
                                        options={"workspace": str(directory.resolve()), "token_sha256": _digest(token)})
    (staging / MARKER).write_text(json.dumps({"campaign_id": campaign_id, "task": task.id, "version": task.version,
                                              "token": token}))
    if directory.exists():
        directory.rmdir()
    staging.rename(directory)
    return campaign_id


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _campaign_of(directory: Path, store: RunStore) -> CampaignRecord:
    """The campaign this workspace was created for (`UserError` if the marker is missing, edited or moved)."""
    marker = Path(directory) / MARKER
    require(marker.is_file() and not marker.is_symlink(),
            f"{directory} is not a task workspace (no {MARKER}); create one with `interpgym task init`")
    try:
        if marker.stat().st_size > 4096:
            raise ValueError("oversized")
        content = json.loads(marker.read_text())
        campaign_id, token = str(content["campaign_id"]), str(content["token"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise UserError(f"{marker} is corrupt; create a new workspace with `interpgym task init`") from exc
    record = store.campaign(campaign_id)
    binding = store.campaign_options(campaign_id)
    if not secrets.compare_digest(str(binding.get("token_sha256", "")), _digest(token)):
        raise UserError(f"{marker} does not belong to campaign {campaign_id} (edited or copied marker); "
                        "work in the directory `interpgym task init` made for you")
    if binding.get("workspace") != str(Path(directory).resolve()):
        raise UserError(f"campaign {campaign_id} was created for {binding.get('workspace')}, not {Path(directory).resolve()}; "
                        "move the workspace back there")
    return record


@contextmanager
def campaign_lock(campaign_id: str) -> Iterator[None]:
    """Hold campaign `campaign_id`'s exclusive lock (`UserError` at once if another process holds it)."""
    lock_dir = home() / "runs" / campaign_id
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"campaign {campaign_id} is being scored or submitted by another process; "
                            "wait for it to finish, then try again") from None
        yield
    finally:
        os.close(fd)


def _read_workspace_file(path: Path, what: str) -> str:
    """The text of a regular file in the agent's workspace: never a link (it could name a file only the
    harness may read), never more than `MAX_EDITABLE_BYTES` (checked before reading)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise UserError(f"{path} is missing; restore it ({what})") from None
    require(stat.S_ISREG(info.st_mode), f"{path} must be a regular file, not a link or a folder ({what})")
    require(info.st_size <= MAX_EDITABLE_BYTES,
            f"{path} is {info.st_size >> 10} KiB; editable files are limited to {MAX_EDITABLE_BYTES >> 10} KiB")
    # Open without following links or blocking on a FIFO swapped in after the check, then re-check what was opened.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        require(stat.S_ISREG(os.fstat(fd).st_mode), f"{path} must be a regular file ({what})")
        data = handle.read(MAX_EDITABLE_BYTES + 1)
    require(len(data) <= MAX_EDITABLE_BYTES, f"{path} grew while it was read; try again")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None


def _proposal_from(directory: Path, task: Any) -> Proposal:
    files = {rel: _read_workspace_file(Path(directory) / rel, "every editable file must exist")
             for rel in task.editable_files}
    params = None
    params_path = Path(directory) / "params.json"
    if task.search_space and os.path.lexists(params_path):
        try:
            params = json.loads(_read_workspace_file(params_path, "parameters"))
        except ValueError as exc:
            raise UserError(f"{directory}/params.json is not valid JSON: {exc}") from exc
    return Proposal(files=files, params=params)


def score_workspace(directory: Path, *, store: RunStore | None = None, note: str = "") -> TrialRecord:
    """Run and record one val trial from the directory's editable files."""
    store = store or RunStore()
    campaign_id = _campaign_of(directory, store).campaign_id
    with campaign_lock(campaign_id):
        return _score_locked(directory, store.campaign(campaign_id), store, note)


def _score_locked(directory: Path, record: CampaignRecord, store: RunStore, note: str) -> TrialRecord:
    require(record.status == "running", f"campaign {record.campaign_id} is already submitted; start a new one with `interpgym task init`")
    require(len(record.trials) < record.budgets.trials,
            f"trial budget spent ({record.budgets.trials}); submit with `interpgym task submit {directory}`")
    task = get_task(record.task)
    require(task.version == record.task_version, f"task {task.id} changed version since this workspace was made")
    proposal = _proposal_from(directory, task)
    proposal.note = note
    n = len(record.trials) + 1
    start = time.perf_counter()
    outcome = execute_proposal(task, proposal, seed=record.seed,
                               limits=Limits(timeout_s=record.budgets.trial_timeout_s, memory_mb=record.budgets.trial_memory_mb),
                               keep_to=artifact_path(record.campaign_id, n))
    trial = record_trial(store, task, record.campaign_id, n, proposal, outcome, time.perf_counter() - start, baselines(task))
    prune_artifacts(task, record.campaign_id, [*record.trials, trial])
    return trial


def submit_workspace(directory: Path, *, store: RunStore | None = None) -> CampaignRecord:
    """End the workspace's campaign: the best val trial is scored once on test."""
    store = store or RunStore()
    record = _campaign_of(directory, store)
    with campaign_lock(record.campaign_id):
        return finalize(store, get_task(record.task), record.campaign_id)

"""Where trials run: `LocalExecutor` (sandboxed processes on this machine) and, in
`interpgym.harness.ray_backend`, Ray tasks on a cluster.

An executor takes a proposal and returns a `concurrent.futures.Future` of its
`TrialOutcome` (val split scored, artifact kept at `keep_to` when ok). It never
touches the run store: the campaign loop alone commits trials, in trial-number order.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from interpgym.harness.records import Proposal
from interpgym.harness.sandbox import Limits
from interpgym.harness.task import Task
from interpgym.harness.trial import TrialOutcome, run_trial


class TrialExecutor(Protocol):
    """Runs proposals as trials, several at a time."""

    def submit(self, task: Task, proposal: Proposal, *, seed: int, limits: Limits, keep_to: Path) -> Future: ...

    def shutdown(self) -> None: ...


def execute_proposal(task: Task, proposal: Proposal, *, seed: int, limits: Limits, keep_to: Path) -> TrialOutcome:
    """Run one proposal as a trial on val; malformed proposals, and params that break a
    constraint the task declares, are `invalid` without running (the error names it)."""
    if proposal.malformed is not None:
        return TrialOutcome(status="invalid", error=proposal.malformed)
    violated = task.violated_constraint(proposal.params)
    if violated:
        return TrialOutcome(status="invalid", error=violated)
    return run_trial(task, files=proposal.files, params=proposal.params, seed=seed, splits=("val",),
                     limits=limits, keep_artifact_to=keep_to)


class LocalExecutor:
    """`workers` trials at once on this machine, each its own sandboxed process with its own limits.

    Threads only wait on the sandboxes and score artifacts; a trial's solution never runs
    in this process.
    """

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interpgym-trial")

    def submit(self, task: Task, proposal: Proposal, *, seed: int, limits: Limits, keep_to: Path) -> Future:
        return self._pool.submit(execute_proposal, task, proposal, seed=seed, limits=limits, keep_to=keep_to)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

"""`--backend ray`: trials as Ray tasks on a cluster; the harness keeps scoring and the store.

Ray is the engine (placement, resources, retries); nothing here schedules. Each trial is
one Ray task that asks for 1 CPU and the trial's memory limit as resources and runs the
very same sandboxed `run_trial` on whichever node Ray picks, *without scoring* (no
split is scored there). Its artifact comes back to the harness process as bytes (only
top-level `.safetensors` / `.json` files, size-capped, checked again here), is written
under the campaign's artifact folder and scored by the trusted scorer in this process.
Workers never open the run store: the campaign loop alone commits trials.

A Ray worker that dies mid-trial (node lost, process killed) makes Ray run the task
again once (`max_retries=1`); if that fails too the trial is recorded as `crash` with
Ray's error. Either way it is recorded once.

Nodes need this installation of interpgym and the same `INTERPGYM_HOME` (the task's
inputs and the installation secret are read there): a shared file system on a real
cluster; on one machine (tests, the benchmark's simulated 2-node cluster) it is simply
the same folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from interpgym.core.cache import home
from interpgym.core.errors import UserError
from interpgym.harness.executors import execute_proposal
from interpgym.harness.records import Proposal
from interpgym.harness.sandbox import Limits
from interpgym.harness.task import InvalidSolution, Task
from interpgym.harness.trial import MAX_ARTIFACT_BYTES, TrialOutcome, score_artifact

RAY_TASK_NAME = "interpgym_trial"  # the Ray worker's process title while it runs a trial: ray::interpgym_trial


def interpgym_trial(task_id: str, files: dict[str, str] | None, params: dict[str, Any] | None, seed: int,
                    timeout_s: float, memory_mb: int) -> dict[str, Any]:
    """Body of the Ray task (runs on a worker node): one sandboxed, unscored trial.

    Returns plain data: status, error, wall time, peak memory, isolation and, when the
    solution exited 0 with a loadable artifact, its files as bytes.
    """
    from interpgym.harness.tasks import get_task
    from interpgym.harness.trial import run_trial

    task = get_task(task_id)
    with tempfile.TemporaryDirectory(prefix="interpgym-ray-trial-") as tmp:
        kept = Path(tmp) / "artifact"
        outcome = run_trial(task, files=files, params=params, seed=seed, splits=(),
                            limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb), keep_artifact_to=kept)
        artifact = {}
        if outcome.status == "ok" and kept.is_dir():
            artifact = {entry.name: Path(entry.path).read_bytes() for entry in os.scandir(kept)
                        if entry.is_file(follow_symlinks=False)}
    return {"status": outcome.status, "error": outcome.error, "wall_s": outcome.wall_s,
            "peak_mem_mb": outcome.peak_mem_mb, "isolation": outcome.isolation, "artifact": artifact}


def write_returned_artifact(files: dict[str, bytes], dest: Path) -> None:
    """Write an artifact that came back from a worker into `dest` (replaced atomically).

    Raises `InvalidSolution` for anything but top-level `.json` / `.safetensors` names or
    more than `MAX_ARTIFACT_BYTES` in all: the worker's own checks are not trusted here.
    """
    if not isinstance(files, dict) or not files:
        raise InvalidSolution("the worker returned no artifact")
    total = 0
    for name, data in files.items():
        if (not isinstance(name, str) or not isinstance(data, bytes) or "/" in name or name.startswith(".")
                or not name.endswith((".json", ".safetensors"))):
            raise InvalidSolution(f"artifact file {name!r} is not a top-level .json/.safetensors file")
        total += len(data)
    if total > MAX_ARTIFACT_BYTES:
        raise InvalidSolution(f"artifact exceeds {MAX_ARTIFACT_BYTES >> 20} MiB")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name, data in files.items():
        (staging / name).write_bytes(data)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(staging, dest)


class RayExecutor:
    """Trials as Ray tasks (see the module docs). `address=None` starts a local Ray instance."""

    def __init__(self, address: str | None = None, workers: int = 1) -> None:
        if address is not None and address.split(":")[0] in ("127.0.0.1", "localhost"):
            # Ray rewrites a loopback address to the machine's outward IP before connecting,
            # which fails for a head bound to loopback; this switch (read when Ray is imported)
            # keeps it on loopback.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError as exc:
            raise UserError("--backend ray needs Ray: pip install 'ray>=2.9' (or `make install`)") from exc
        self._ray = ray
        self._connected_here = not ray.is_initialized()
        if self._connected_here:
            try:
                if address is None:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
        self._remote = ray.remote(max_retries=1)(interpgym_trial)
        self._waiters = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="interpgym-ray")
        self._env = {"INTERPGYM_HOME": str(home())}

    def submit(self, task: Task, proposal: Proposal, *, seed: int, limits: Limits, keep_to: Path) -> Future:
        if task.violated_constraint(proposal.params) or (proposal.files is None and proposal.params is None):
            return self._waiters.submit(execute_proposal, task, proposal, seed=seed, limits=limits, keep_to=keep_to)
        ref = self._remote.options(name=RAY_TASK_NAME, num_cpus=1, memory=int(limits.memory_mb) << 20,
                                   runtime_env={"env_vars": self._env}).remote(
            task.id, proposal.files, proposal.params, seed, limits.timeout_s, limits.memory_mb)
        return self._waiters.submit(self._finish, task, ref, seed, keep_to)

    def _finish(self, task: Task, ref: Any, seed: int, keep_to: Path) -> TrialOutcome:
        """Wait for the Ray task, then score its returned artifact here (trusted)."""
        try:
            result = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            return TrialOutcome(status="crash", error=f"ray task failed (worker or node lost?): {type(exc).__name__}: "
                                                      f"{str(exc)[-1500:]}")
        outcome = TrialOutcome(status=result["status"], error=result["error"], wall_s=result["wall_s"],
                               peak_mem_mb=result["peak_mem_mb"], isolation=result["isolation"])
        if outcome.status != "ok":
            return outcome
        try:
            write_returned_artifact(result["artifact"], keep_to)
            outcome.scores["val"] = score_artifact(task, keep_to, "val", seed)
            outcome.artifact_dir = keep_to
        except InvalidSolution as exc:
            outcome.status, outcome.error, outcome.scores = "invalid", str(exc), {}
        except Exception as exc:  # a scorer tripping over a malformed artifact must not end the campaign
            outcome.status, outcome.error, outcome.scores = "invalid", f"scorer rejected the artifact: {type(exc).__name__}: {exc}", {}
        return outcome

    def shutdown(self) -> None:
        """Wait for the trials handed out, then disconnect (and stop a local Ray this executor started)."""
        self._waiters.shutdown(wait=True, cancel_futures=True)
        if self._connected_here:
            self._ray.shutdown()

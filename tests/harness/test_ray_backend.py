"""`--backend ray` against a real Ray cluster on loopback (head + a second node, started by the test).

Skipped where Ray is not installed. Not `local_mode`: trials run in Ray worker
processes; one is SIGKILLed mid-trial and the trial must be recorded exactly once.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

# Keep every Ray address on loopback (Ray otherwise rewrites 127.0.0.1 to the machine's
# outward IP); read when Ray is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from interpgym.harness.campaign import run_campaign
from interpgym.harness.records import Proposal
from interpgym.harness.store import RunStore
from interpgym.harness.tasks import get_task

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9'; `make install` does)")
from ray.cluster_utils import Cluster  # noqa: E402

from interpgym.harness.ray_backend import RAY_TASK_NAME, RayExecutor  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A real 2-node Ray cluster on 127.0.0.1 (head with 1 CPU + one worker node with 1 CPU)."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                      "include_dashboard": False})
    c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    c.wait_for_nodes()
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


class SlowFirstAgent:
    """Proposes demo/mean's solution with a sleep in trial 1 (time to kill its worker), then plain ones."""

    name, kind = "slow-first", "builtin"

    def propose(self, task, history, pending=()):
        n = len(history) + len(pending) + 1
        text = task.editable_files["solution.py"]
        if n == 1:
            text = "import time\ntime.sleep(4)\n" + text
        return Proposal(files={"solution.py": text}, params={"shrink": 0.1 * n, "trim": 0.0})


def _trial_workers() -> list[int]:
    """PIDs of Ray worker processes currently running a trial (their title is ray::interpgym_trial)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f"ray::{RAY_TASK_NAME}".encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_campaign_on_a_ray_cluster_scores_in_the_harness_and_survives_a_killed_worker(cluster, demo):
    executor = RayExecutor(address=cluster.address, workers=2)
    killed: list[int] = []

    def killer() -> None:  # SIGKILL the first worker seen running a trial: trial 1 is sleeping in it
        deadline = time.time() + 60
        while not killed and time.time() < deadline:
            for pid in _trial_workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        record = run_campaign("demo/mean", None, agent=SlowFirstAgent(), trials=4, seed=0, workers=2,
                              executor=executor)
    finally:
        thread.join()
        executor.shutdown()
    assert killed, "no Ray worker was seen running a trial"
    assert [t.n for t in record.trials] == [1, 2, 3, 4]  # recorded once each, in order
    first = record.trials[0]
    assert first.status in ("ok", "crash")  # rerun by Ray, or recorded as a crash; never lost
    if first.status == "crash":
        assert "ray task failed" in first.error
    assert all(t.status == "ok" for t in record.trials[1:])
    # Scored by the harness: the same numbers as the local backend gives the same proposals.
    local = run_campaign("demo/mean", None, agent=SlowFirstAgent(), trials=4, seed=0)
    for remote_trial, local_trial in zip(record.trials[1:], local.trials[1:], strict=True):
        assert remote_trial.val_score == pytest.approx(local_trial.val_score)
    assert record.status == "finished" and record.test_score is not None
    assert len(RunStore().trials(record.campaign_id)) == 4


@pytest.mark.slow
def test_ray_cli_contract(cluster, tmp_path):
    from tests.harness.test_campaign import invoke

    if ray.is_initialized():
        ray.shutdown()
    out = tmp_path / "c.json"
    code, output = invoke("campaign", "run", "demo/mean", "--agent", "random", "--trials", "3", "--workers", "2",
                          "--backend", "ray", "--address", cluster.address, "--json", str(out))
    assert code == 0, output
    assert out.exists() and get_task("demo/mean")
    code, output = invoke("campaign", "run", "demo/mean", "--backend", "nope")
    assert code == 2 and "unknown --backend" in output

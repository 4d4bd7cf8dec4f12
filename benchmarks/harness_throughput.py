"""Trials per hour of whole campaigns: 1 and 2 local workers, and a simulated 2-node Ray cluster.

    python benchmarks/harness_throughput.py --task demo/mean --trials 12 --json benchmarks/results/throughput_demo_mean.json
    python benchmarks/harness_throughput.py --task sae/toy --trials 4 --json benchmarks/results/throughput_sae_toy.json

Each configuration runs the same `random` campaign (same seed, so the same proposals:
the random agent draws trial n from (seed, n) whatever the worker count) from
scratch in one shared INTERPGYM_HOME whose baselines are built first, so only the
campaign is timed: proposal, sandboxed trials, scoring, store commits, final test
scoring. "Ray 2-node" is a real Ray cluster on this machine (`ray.cluster_utils.Cluster`:
a head and a second node with 1 CPU each, on loopback) with 2 workers. Harness
overhead per trial = campaign wall time x workers / trials - mean sandboxed solution
time (the part of each trial that is not the solution running). Prints a table and
writes JSON. Measured on a shared machine: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on loopback
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from interpgym.core.jsonio import write_json_atomic
from interpgym.harness.campaign import baselines, run_campaign
from interpgym.harness.tasks import get_task


def measure(label: str, task_id: str, trials: int, seed: int, workers: int, executor=None) -> dict:
    start = time.perf_counter()
    record = run_campaign(task_id, "random", trials=trials, minutes=10_000, seed=seed, workers=workers,
                          executor=executor)
    wall = time.perf_counter() - start
    solution_s = [t.wall_s for t in record.trials]
    row = {"config": label, "workers": workers, "trials": len(record.trials), "campaign_s": wall,
           "trials_per_hour": 3600 * len(record.trials) / wall,
           "mean_trial_wall_s": sum(solution_s) / len(solution_s),
           "statuses": {s: sum(t.status == s for t in record.trials) for s in {t.status for t in record.trials}},
           "val_scores": [t.val_score for t in record.trials]}
    print(f"{label:16s} {row['trials']:3d} trials in {wall:7.1f} s  = {row['trials_per_hour']:7.0f} trials/h  "
          f"(mean recorded trial {row['mean_trial_wall_s']:.1f} s)  {row['statuses']}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="demo/mean")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    baselines(get_task(args.task))  # built once, outside the timings
    rows = [measure("local, 1 worker", args.task, args.trials, args.seed, 1),
            measure("local, 2 workers", args.task, args.trials, args.seed, 2)]
    if not args.no_ray:
        import ray
        from ray.cluster_utils import Cluster

        from interpgym.harness.ray_backend import RayExecutor

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                                "include_dashboard": False})
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        try:
            executor = RayExecutor(address=cluster.address, workers=2)
            try:
                rows.append(measure("ray 2-node, 2 w.", args.task, args.trials, args.seed, 2, executor))
            finally:
                executor.shutdown()
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.shutdown()
    base = rows[0]["trials_per_hour"]
    for row in rows:
        row["speedup_vs_1_worker"] = row["trials_per_hour"] / base
    same = all(r["val_scores"] == rows[0]["val_scores"] for r in rows)
    print("speedups vs 1 worker: " + ", ".join(f"{r['config']}: {r['speedup_vs_1_worker']:.2f}x" for r in rows))
    print(f"same val scores in every configuration: {same}")
    write_json_atomic(args.json, {"task": args.task, "trials": args.trials, "seed": args.seed, "cpus": os.cpu_count(),
                                  "load_average_at_end": os.getloadavg(), "rows": rows, "same_val_scores": same})


if __name__ == "__main__":
    main()

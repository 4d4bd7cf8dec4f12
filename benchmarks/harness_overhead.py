"""Harness overhead per trial vs a typical trial, and (optionally) optuna vs random search.

Overhead = everything the harness adds around the solution's own work:
  spawn        a no-op solution through the same sandbox (namespaces, mounts, limits,
               reporter, interpreter start-up), median of 3;
  materialize  fresh workspace: editable files, read-only inputs copied, params;
  digest       hashing the read-only files before and after (tamper check);
  load + score loading the artifact safely and the trusted scorer on the val split;
  keep         copying the artifact of a kept trial;
  record       committing the trial to SQLite (one transaction).
A typical trial is the task's reference solution, end to end (same code path as a
campaign). Target: overhead < 10% of the typical trial.

`--search` also runs `optuna` and `random` campaigns (`--search-trials` each) over
`--seeds` and compares their best normalised val and test scores (mean over seeds).

    PYTHONPATH=src python benchmarks/harness_overhead.py --task sae/toy --json out.json [--search]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.harness.campaign import baselines, record_trial, run_campaign
from interpgym.harness.records import Proposal
from interpgym.harness.sandbox import Limits, run_sandboxed
from interpgym.harness.store import RunStore
from interpgym.harness.tasks import get_task
from interpgym.harness.trial import hidden_paths

console = Console()


def noop_spawn_seconds(repeats: int = 3) -> float:
    """Median wall time of a solution that does nothing, through the same sandbox."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="interpgym-bench-") as tmp:
            (Path(tmp) / "solution.py").write_text("pass\n")
            start = time.perf_counter()
            run_sandboxed([sys.executable, "solution.py"], Path(tmp), Limits(timeout_s=60), hidden=hidden_paths(),
                          env={"PYTHONDONTWRITEBYTECODE": "1"})
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def overhead(task_id: str, trials: int) -> dict:
    from interpgym.harness.trial import run_trial

    task = get_task(task_id)
    base = baselines(task)  # cached; not part of a trial
    spawn = noop_spawn_seconds()
    rows = []
    with tempfile.TemporaryDirectory(prefix="interpgym-bench-store-") as tmp:
        store = RunStore(Path(tmp) / "runs.db")
        campaign = store.create_campaign(task=task.id, task_version=task.version, agent="reference", agent_kind="builtin",
                                         seed=0, budgets=task.budgets.as_dict(), harness_version="bench")
        for n in range(1, trials + 1):
            proposal = Proposal(params=task.reference.params, files=task.reference.files)
            start = time.perf_counter()
            outcome = run_trial(task, files=proposal.files, params=proposal.params, seed=0,
                                keep_artifact_to=Path(tmp) / f"keep-{n}")
            before_record = time.perf_counter()
            record_trial(store, task, campaign, n, proposal, outcome, before_record - start, base)
            end = time.perf_counter()
            assert outcome.status == "ok", outcome.error
            phases = dict(outcome.timings)
            phases["record"] = end - before_record
            rows.append({"total_s": end - start, "phases": phases, "val": outcome.scores["val"].value})
    mean = {key: statistics.mean(r["phases"].get(key, 0.0) for r in rows)
            for key in ("materialize", "digest", "sandbox", "load", "score", "keep", "record")}
    total = statistics.mean(r["total_s"] for r in rows)
    harness_s = spawn + sum(v for k, v in mean.items() if k != "sandbox")
    return {"task": task_id, "trials": trials, "typical_trial_s": total, "noop_spawn_s": spawn,
            "solution_s": mean["sandbox"] - spawn, "phases_mean_s": mean, "overhead_s": harness_s,
            "overhead_fraction": harness_s / total, "target_fraction": 0.10, "meets_target": harness_s / total < 0.10,
            "runs": rows}


def search(task_id: str, trials: int, seeds: list[int], out: dict, json_path: Path | None) -> dict:
    results: dict[str, list[dict]] = {"optuna": [], "random": []}
    out["search"] = {"task": task_id, "trials": trials, "seeds": seeds, "campaigns": results}
    with tempfile.TemporaryDirectory(prefix="interpgym-bench-search-") as tmp:
        store = RunStore(Path(tmp) / "runs.db")
        for seed in seeds:
            for agent in ("optuna", "random"):
                start = time.perf_counter()
                record = run_campaign(task_id, agent, trials=trials, minutes=10_000, seed=seed, store=store)
                normalized_vals = [t.normalized for t in record.trials if t.normalized is not None]
                results[agent].append({
                    "seed": seed, "best_val": record.best_val, "best_normalized_val": max(normalized_vals, default=None),
                    "test": record.test_score, "normalized_test": record.normalized_test,
                    "failures": sum(t.status != "ok" for t in record.trials), "wall_s": time.perf_counter() - start,
                })
                console.print(f"{agent} seed {seed}: {results[agent][-1]}")
                if json_path:
                    write_json_atomic(json_path, out)
    summary = {}
    for agent, rows in results.items():
        tests = [r["normalized_test"] for r in rows if r["normalized_test"] is not None]
        vals = [r["best_normalized_val"] for r in rows if r["best_normalized_val"] is not None]
        summary[agent] = {"mean_normalized_test": statistics.mean(tests) if tests else None,
                          "mean_best_normalized_val": statistics.mean(vals) if vals else None,
                          "mean_failures": statistics.mean(r["failures"] for r in rows)}
    out["search"]["summary"] = summary
    o, r = summary["optuna"]["mean_normalized_test"], summary["random"]["mean_normalized_test"]
    out["search"]["optuna_beats_random"] = None if o is None or r is None else o > r
    return out["search"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sae/toy")
    parser.add_argument("--trials", type=int, default=3, help="reference trials timed")
    parser.add_argument("--search", action="store_true", help="also compare optuna vs random campaigns")
    parser.add_argument("--search-trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    out: dict = {"overhead": overhead(args.task, args.trials)}
    if args.json:
        write_json_atomic(args.json, out)
    o = out["overhead"]
    table = Table(title=f"harness overhead per trial on {args.task} (mean of {args.trials} reference trials)")
    table.add_column("part")
    table.add_column("seconds", justify="right")
    table.add_column("% of trial", justify="right")
    rows = [("no-op spawn (sandbox + interpreter)", o["noop_spawn_s"])] + [
        (k, v) for k, v in o["phases_mean_s"].items() if k != "sandbox"]
    for name, value in rows:
        table.add_row(name, f"{value:.3f}", f"{100 * value / o['typical_trial_s']:.1f}")
    table.add_row("harness overhead (sum)", f"{o['overhead_s']:.3f}", f"{100 * o['overhead_fraction']:.1f}")
    table.add_row("solution's own work", f"{o['solution_s']:.3f}", f"{100 * o['solution_s'] / o['typical_trial_s']:.1f}")
    table.add_row("typical trial, end to end", f"{o['typical_trial_s']:.3f}", "100.0")
    console.print(table)
    console.print(f"overhead {100 * o['overhead_fraction']:.1f}% (target < 10%): {'met' if o['meets_target'] else 'NOT met'}")
    if args.search:
        s = search(args.task, args.search_trials, args.seeds, out, args.json)
        console.print(s["summary"], f"optuna beats random: {s['optuna_beats_random']}")
    if args.json:
        write_json_atomic(args.json, out)


if __name__ == "__main__":
    main()

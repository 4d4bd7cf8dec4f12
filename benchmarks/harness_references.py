"""Pick a task's reference: score candidate solutions over seeds through the real trial path.

    python benchmarks/harness_references.py --task sae/toy --seeds 0,1,2 --json benchmarks/results/references_sae_toy.json
    python benchmarks/harness_references.py --task proofs/maxk --json benchmarks/results/references_proofs_maxk.json

`sae/toy`: the task's search-space candidates around `interpgym sae train --k 5`
(top-k, k 5, lr 1e-2, width 256 = the true feature count or 512 = the subject's default
width, which `sae train` uses), with the old
1000-step lr-1e-3 reference beside them. `proofs/maxk`: every strategy of the search
space (exhaustion; the bound is deterministic, one seed suffices). Prints a table
(val and test mean, SEM and min over seeds, seconds per trial) and writes JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

from interpgym.core.jsonio import write_json_atomic
from interpgym.harness.tasks import get_task
from interpgym.harness.trial import run_trial

SAE_TOY_CANDIDATES = {
    "old reference (topk k5, 1000 steps, lr 1e-3)": {"lr": 1e-3, "steps": 1000},
    "topk k5, 1000 steps, lr 1e-2": {"lr": 1e-2, "steps": 1000},
    "topk k5, 1500 steps, lr 1e-2": {"lr": 1e-2, "steps": 1500},
    "topk k5, width 256, 3000 steps, lr 1e-2": {"lr": 1e-2, "steps": 3000},
    "topk k5, width 512, 3000 steps, lr 1e-2 (= sae train --k 5)": {"lr": 1e-2, "steps": 3000, "width": 512},
}


def candidates(task_id: str) -> dict[str, dict]:
    task = get_task(task_id)
    if task_id == "sae/toy":
        base = {"arch": "topk", "width": 256, "k": 5, "batch_size": 1024}
        return {name: {**base, **extra} for name, extra in SAE_TOY_CANDIDATES.items()}
    if task_id == "proofs/maxk":
        return {name: {"strategy": name} for name in task.search_space["strategy"]["choices"]}
    raise SystemExit(f"no candidates defined for {task_id}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="sae/toy")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", required=True)
    parser.add_argument("--only", default=None, help="Run only the candidates whose name contains this text.")
    args = parser.parse_args()
    task = get_task(args.task)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name, params in candidates(args.task).items():
        if args.only and args.only not in name:
            continue
        runs = []
        for seed in seeds:
            start = time.perf_counter()
            outcome = run_trial(task, files=None, params=params, seed=seed, splits=("val", "test"))
            runs.append({"seed": seed, "status": outcome.status, "error": outcome.error,
                         "val": outcome.scores["val"].value if outcome.status == "ok" else None,
                         "test": outcome.scores["test"].value if outcome.status == "ok" else None,
                         "flops": outcome.scores["val"].metrics.get("flops") if outcome.status == "ok" else None,
                         "seconds": time.perf_counter() - start})
        ok = [r for r in runs if r["status"] == "ok"]

        def stats(key: str, ok: list[dict] = ok) -> dict:
            values = [r[key] for r in ok]
            if not values:
                return {"mean": None, "sem": None, "min": None}
            sem = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
            return {"mean": statistics.fmean(values), "sem": sem, "min": min(values)}

        rows.append({"name": name, "params": params, "runs": runs, "val": stats("val"), "test": stats("test"),
                     "seconds": statistics.fmean(r["seconds"] for r in runs)})
        v, t = rows[-1]["val"], rows[-1]["test"]
        fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
        print(f"{name:60s} val {fmt(v['mean'])}±{fmt(v['sem'])} (min {fmt(v['min'])})  test {fmt(t['mean'])}±{fmt(t['sem'])}"
              f"  {rows[-1]['seconds']:.1f} s/trial  ok {len(ok)}/{len(runs)}", flush=True)
    write_json_atomic(args.json, {"task": task.key, "seeds": seeds, "candidates": rows})


if __name__ == "__main__":
    main()

"""Benchmark: what `proofs maxk --checkpoints` costs per checkpoint (all strategies), wall and process CPU time.

Runs `runner.prove` (brute force + every requested strategy + the audit) on the chosen
training checkpoints of the default model and reports, per checkpoint, wall seconds and
this process's CPU seconds side by side (the machine may be shared: CPU time is the
comparable number). It uses only functions that older versions of the package also
have, so the same script measures a before/after pair: run it once with
PYTHONPATH=<old checkout>/src and once with this tree's src.

    PYTHONPATH=src python benchmarks/proofs_checkpoints_speed.py --steps 0,100,300,1500,3000 --json out.json
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.proofs.registry import resolve
from interpgym.proofs.runner import prove, warm_up
from interpgym.subjects.maxk import MaxKConfig, train_maxk


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", default="0,100,300,1500,3000", help="comma list of checkpoint steps")
    parser.add_argument("--strategies", default="all")
    parser.add_argument("--label", default="", help="free text stored in the JSON (e.g. the commit)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = train_maxk(MaxKConfig(), progress=False)
    names = resolve(args.strategies)
    warm_up()
    rows = []
    for step in (int(s) for s in args.steps.split(",")):
        w = model.checkpoint(step)
        wall, cpu = time.perf_counter(), cpu_seconds()
        proofs = prove(w, names)
        rows.append({"step": step, "wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu,
                     "exact_accuracy": proofs.exact_accuracy, "bounds": {r.strategy: r.bound for r in proofs.results}})
    saved = len(model.checkpoint_steps())
    mean_cpu = sum(r["cpu_s"] for r in rows) / len(rows)
    report = {"machine": platform.platform(), "torch": torch.__version__, "label": args.label, "strategies": len(names),
              "checkpoints": rows, "saved_checkpoints": saved, "mean_cpu_s_per_checkpoint": mean_cpu}
    write_json_atomic(args.json, report)
    table = Table(title=f"all {len(names)} strategies per checkpoint ({args.label})")
    for column in ("step", "exact", "wall s", "CPU s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["step"]), f"{r['exact_accuracy']:.4f}", f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}")
    Console().print(table)
    Console().print(f"mean CPU s per checkpoint {mean_cpu:.1f}; x {saved} saved checkpoints = {mean_cpu * saved / 60:.1f} CPU min")


if __name__ == "__main__":
    main()

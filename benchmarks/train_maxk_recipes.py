"""Benchmark: how provable the max-of-K model is under different training recipes (`proofs/train-maxk`).

For each recipe and seed: train (cached), exact accuracy (brute force), the cubic bound and
the fixed subcubic variant's bound, each normalised by the exact accuracy; the task's score
is their mean. Prints one JSON line per run and writes all of them.

    PYTHONPATH=src python benchmarks/train_maxk_recipes.py --recipes paper,wd0 --seeds 0,1,2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from interpgym.core.jsonio import write_json_atomic
from interpgym.harness.tasks.proofs_train_maxk import SUBCUBIC
from interpgym.proofs.brute_force import brute_force
from interpgym.proofs.cubic import cubic
from interpgym.proofs.subcubic import STRATEGIES
from interpgym.subjects.maxk import MaxKConfig, train_maxk

RECIPES = {
    "paper": {},
    "wd0": {"weight_decay": 0.0},
    "wd0.1": {"weight_decay": 0.1},
    "wd1": {"weight_decay": 1.0},
    "steps6000": {"steps": 6000},
    "lr3e-3": {"lr": 3e-3},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipes", default="paper,wd0")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.recipes.split(","):
            started = time.perf_counter()
            w = train_maxk(MaxKConfig(seed=seed, **RECIPES[name]), progress=False).weights
            acc, c, s = brute_force(w).bound, cubic(w).bound, STRATEGIES[SUBCUBIC](w).bound
            row = {"recipe": name, "seed": seed, "acc": acc, "cubic": c, "sub": s, "cubic_norm": c / acc, "sub_norm": s / acc,
                   "score": (c / acc + s / acc) / 2, "wall": time.perf_counter() - started}
            print(json.dumps(row), flush=True)
            rows.append(row)
    write_json_atomic(args.json, {"recipes": RECIPES, "runs": rows})


if __name__ == "__main__":
    main()

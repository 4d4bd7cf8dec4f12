"""Benchmark: the proof-language kernel against the registered strategies on the default model.

Per seed (default config v = 64, K = 4, d_model = 32): (1) every registered strategy
with a program form, exported and checked by the kernel, side by side with the
registered run: certified inputs, per-input mask equality, FLOPs and their ratio;
(2) wall time of the kernel checking the cubic program vs the registered cubic
verification (both without the FLOP counter, median of `--repeats`; target: within 2x);
(3) the language-only proof `program/valid-cases` vs the task's reference program and
the best registered strategy within the reference's budget. Writes JSON, prints tables.

    PYTHONPATH=src python benchmarks/proofs_lang.py --seeds 0 --json benchmarks/results/proofs_lang.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.core.threads import torch_threads
from interpgym.proofs.certificates import certified_mask
from interpgym.proofs.cubic import float32_certificate
from interpgym.proofs.inputs import tokens_at
from interpgym.proofs.lang.export import cubic_program, exportable, strategy_program
from interpgym.proofs.lang.kernel import check_program
from interpgym.proofs.lang.valid_cases import NAME as NEW_NAME
from interpgym.proofs.lang.valid_cases import valid_cases_program
from interpgym.proofs.registry import strategies
from interpgym.proofs.runner import warm_up
from interpgym.proofs.tables import compute_tables
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, train_maxk

REFERENCE = "subcubic/eqke=mean+max_diff/direct=exact/attn=drop_average"


def registered_cubic_verification(w: MaxKWeights) -> None:
    """The registered cubic proof's verification path, uncounted (what `cubic.cubic` times, minus the counter)."""
    float32_certificate(w, compute_tables(w))


def median_wall(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# `--quick`: only the strategies that can be best within the reference's budget (the exact-EQKE
# variants cost more than the reference, the mean-query direct paths certify far less)
QUICK = tuple(f"subcubic/eqke={e}/direct=exact/attn={a}" for e in ("max_diff", "mean+max_diff") for a in ("mean+diff", "drop_average"))


def bench_seed(seed: int, repeats: int, quick: bool = False) -> dict[str, Any]:
    w = train_maxk(MaxKConfig(seed=seed), progress=False).weights
    tokens = tokens_at(w.vocab, w.k, 0, w.vocab**w.k)
    table = strategies()
    rows = []
    for name in QUICK if quick else exportable():
        registered = table[name](w)
        kernel = check_program(strategy_program(name, w), w)
        same = bool(torch.equal(certified_mask(kernel.ok, kernel.ok_pure, tokens),
                                certified_mask(registered.ok, registered.ok_pure, tokens)))
        rows.append({"strategy": name, "registered_certified": registered.certified, "kernel_certified": kernel.certified,
                     "same_inputs": same, "registered_flops": registered.flops, "kernel_flops": kernel.flops,
                     "flops_ratio": kernel.flops / registered.flops})
    program = cubic_program()
    w64 = w.to(dtype=torch.float64)
    registered_wall = median_wall(lambda: registered_cubic_verification(w64), repeats)
    kernel_wall = median_wall(lambda: check_program(program, w, count_flops=False), repeats)
    budget = check_program(strategy_program(REFERENCE, w), w)
    new = check_program(valid_cases_program(w), w)
    within = [r for r in rows if r["kernel_flops"] <= budget.flops]
    best = max(within, key=lambda r: r["kernel_certified"])
    return {
        "seed": seed, "strategies": rows,
        "cubic_wall_s": {"registered": registered_wall, "kernel": kernel_wall, "ratio": kernel_wall / registered_wall},
        "new_proof": {"name": NEW_NAME, "certified": new.certified, "bound": new.bound, "flops": new.flops,
                      "reference": {"name": REFERENCE, "certified": budget.certified, "flops": budget.flops},
                      "best_registered_within_budget": {"name": best["strategy"], "certified": best["kernel_certified"],
                                                        "flops": best["kernel_flops"]},
                      "beats_reference": new.certified > budget.certified and new.flops <= budget.flops,
                      "gain_over_reference": new.certified - budget.certified,
                      "gain_over_best_registered": new.certified - best["kernel_certified"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="compare only the strategies in QUICK (faster)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    console = Console()
    with torch_threads(1):
        warm_up()
        results = [bench_seed(int(s), args.repeats, args.quick) for s in args.seeds.split(",")]
    for r in results:
        t = Table(title=f"seed {r['seed']}: registered strategy vs its program in the kernel")
        for c in ("strategy", "certified (reg.)", "certified (kernel)", "same inputs", "FLOPs ratio"):
            t.add_column(c, justify="right" if c != "strategy" else "left", overflow="fold")
        for row in r["strategies"]:
            t.add_row(row["strategy"], f"{row['registered_certified']:,}", f"{row['kernel_certified']:,}",
                      str(row["same_inputs"]), f"{row['flops_ratio']:.3f}")
        console.print(t)
        wall = r["cubic_wall_s"]
        console.print(f"cubic wall (median of {args.repeats}, uncounted): registered {wall['registered']:.4f} s, "
                      f"kernel {wall['kernel']:.4f} s, ratio {wall['ratio']:.2f} (target <= 2)")
        new = r["new_proof"]
        console.print(f"{new['name']}: {new['certified']:,} inputs at {new['flops']:,} FLOPs; reference "
                      f"{new['reference']['certified']:,} at {new['reference']['flops']:,}; best registered within budget "
                      f"{new['best_registered_within_budget']['name']} {new['best_registered_within_budget']['certified']:,}")
    write_json_atomic(args.json, {"seeds": results, "repeats": args.repeats, "quick": args.quick,
                                  "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1,
                                              "note": "measured on a shared, loaded 2-core machine"}})
    console.print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()

"""The toy-subject targets: MCC of `topk` and `batchtopk` at the true mean L0, and one-SAE evaluation time.

Trains each architecture with the CLI defaults on the default toy subject (seed 0):
width = the number of true features, k = the true mean L0 (5) for top-k
architectures, the default coefficient otherwise. Trained SAEs are cached under
$INTERPGYM_HOME, so a second run only re-evaluates. Writes JSON and prints a table.

Usage: PYTHONPATH=src python benchmarks/sae_toy_targets.py [--archs topk,batchtopk] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.sae.config import TrainConfig
from interpgym.sae.evaluate import evaluate_sae
from interpgym.sae.runs import SubjectSpec, cached_sae, sae_config_for, train_config_for

MCC_TARGET = 0.90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="topk,batchtopk")
    parser.add_argument("--steps", type=int, default=TrainConfig().steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    spec = SubjectSpec(name="toy", seed=args.seed)
    subject = spec.load()
    rows = []
    for arch in args.archs.split(","):
        sae_cfg = sae_config_for(subject, arch, None, None, None)
        train_cfg = train_config_for(subject, steps=args.steps, seed=args.seed)
        started = time.perf_counter()
        loaded = cached_sae(subject, spec, sae_cfg, train_cfg, progress=True)
        load_seconds = time.perf_counter() - started
        report = evaluate_sae(loaded.sae, subject)
        m = report.metrics
        rows.append(
            {
                "arch": arch,
                "width": sae_cfg.d_sae,
                "k": loaded.sae.k,
                "sparsity_coeff": loaded.sae.sparsity_coeff if loaded.sae.uses_sparsity_coeff else None,
                "true_mean_l0": subject.true_mean_l0,
                "train_seconds": loaded.meta.get("wall_seconds"),
                "train_or_cache_seconds": load_seconds,
                "eval_seconds": report.seconds,
                "eval_inputs": report.eval_inputs,
                "metrics": m,
                "meets_mcc_target": m["mcc"] >= MCC_TARGET,
            }
        )
    table = Table(title=f"toy targets (true mean L0 {subject.true_mean_l0}, mcc target {MCC_TARGET})")
    for column in ("arch", "k / coeff", "l0", "fvu", "mcc", "mmcs", "frac_recovered", "dead_frac", "train s", "eval s"):
        table.add_column(column)
    for row in rows:
        m = row["metrics"]
        setting = f"k={row['k']}" if row["k"] is not None else f"{row['sparsity_coeff']:.3g}"
        table.add_row(
            row["arch"], setting, *(f"{m[key]:.3f}" for key in ("l0", "fvu", "mcc", "mmcs", "frac_recovered", "dead_frac")),
            f"{row['train_seconds']:.1f}", f"{row['eval_seconds']:.2f}",
        )
    Console().print(table)
    if args.json:
        write_json_atomic(args.json, {"subject": spec.to_dict(), "torch_threads": torch.get_num_threads(), "runs": rows})


if __name__ == "__main__":
    main()

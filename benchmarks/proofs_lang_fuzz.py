"""Benchmark: soundness fuzz of the proof-language kernel (issue target: >= 10,000 programs, 0 unsound).

Models: small max-of-K models (v 6..16, K 2..5) trained from several seeds, a partly
trained checkpoint (many wrong inputs beside right ones), a model with exact ties, and
random weights at two scales. Each program is a random well-formed program with
adversarial hints (`interpgym.proofs.lang.fuzz`); every certified input is compared with
the float32 forward on all v^K inputs. Writes JSON (programs/s, soundness counts) and
prints a table.

    PYTHONPATH=src python benchmarks/proofs_lang_fuzz.py --programs 10000 --seed 0 --json benchmarks/results/proofs_lang_fuzz.json
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.core.threads import torch_threads
from interpgym.proofs.lang.fuzz import FuzzModel, fuzz
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, train_maxk

# (vocab, k, d_model, steps, seed)
TRAINED = [(6, 2, 8, 500, 20), (8, 3, 8, 600, 21), (10, 4, 8, 800, 22), (12, 5, 8, 800, 23),
           (16, 3, 16, 1000, 24), (16, 4, 16, 1000, 25), (9, 2, 4, 300, 26)]


def tied(w: MaxKWeights) -> MaxKWeights:
    W_U, W_E = w.W_U.clone(), w.W_E.clone()
    W_U[:, -1] = W_U[:, -2]
    W_E[3] = W_E[2]
    return MaxKWeights(**{**w.as_dict(), "W_U": W_U, "W_E": W_E})


def fuzz_models() -> list[FuzzModel]:
    models = []
    for v, k, d, steps, seed in TRAINED:
        cfg = MaxKConfig(vocab=v, k=k, d_model=d, d_head=d, steps=steps, seed=seed, checkpoint_every=100)
        model = train_maxk(cfg, progress=False)
        models.append(FuzzModel.of(f"trained v{v} K{k} seed{seed}", model.weights))
        if seed == 22:
            models.append(FuzzModel.of(f"checkpoint step 200 v{v} K{k}", model.checkpoint(200)))
            models.append(FuzzModel.of(f"tied v{v} K{k}", tied(model.weights)))
    for i, (v, k, d, scale) in enumerate([(6, 5, 4, None), (14, 3, 8, 2.0), (11, 2, 8, None)]):
        w = MaxKWeights.random(v, k, d, d, torch.Generator().manual_seed(100 + i), scale=scale)
        models.append(FuzzModel.of(f"random v{v} K{k} scale {scale or 'default'}", w))
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    console = Console()
    with torch_threads(1):
        models = fuzz_models()
        columns = (TextColumn("fuzzing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("fuzz", total=args.programs)
            report = fuzz(models, args.programs, args.seed, advance=lambda n: bar.advance(task, n))
    result = {"programs": args.programs, "seed": args.seed, "models": [m.name for m in models], **report.as_dict(),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1,
                          "note": "measured on a shared, loaded machine"}}
    table = Table(title="proof-language kernel fuzz")
    for key in ("programs", "accepted", "rejected", "unsound_certified_inputs", "bounds_above_exact",
                "nonvacuous_programs", "programs_per_s"):
        table.add_column(key, justify="right")
    table.add_row(*(f"{result[k]:.1f}" if isinstance(result[k], float) else str(result[k]) for k in
                    ("programs", "accepted", "rejected", "unsound_certified_inputs", "bounds_above_exact",
                     "nonvacuous_programs", "programs_per_s")))
    console.print(table)
    write_json_atomic(args.json, result)
    console.print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()

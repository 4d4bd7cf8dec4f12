"""Benchmark: accuracy and loss bounds vs training step, side by side, for chosen strategies.

Runs `proofs maxk --checkpoints` for both theorems on one config and draws one PNG with two
panels (certified accuracy lower bound; certified loss upper bound, log scale), exact
values dashed; writes both reports as JSON with the wall time of each.

    PYTHONPATH=src python benchmarks/proofs_training_curves.py --vocab 16 --k 4 --d-model 16 --steps 1000 \\
        --strategies brute-force,cubic --png out/curves.png --json out/curves.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from interpgym.core.jsonio import write_json_atomic
from interpgym.core.threads import torch_threads
from interpgym.proofs.cli_theorems import training_panel
from interpgym.proofs.loss_runner import loss_report
from interpgym.proofs.runner import maxk_report
from interpgym.proofs.training_plot import plot_training
from interpgym.subjects.maxk import MaxKConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=100, help="checkpoint interval (part of the cached config)")
    parser.add_argument("--strategies", default="brute-force,cubic")
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    config = MaxKConfig(vocab=args.vocab, k=args.k, d_model=args.d_model, d_head=args.d_model, seed=args.seed, steps=args.steps,
                        checkpoint_every=args.every)
    with torch_threads(1):
        started = time.perf_counter()
        accuracy = maxk_report(config, args.strategies, checkpoints=True, progress=False)
        accuracy_s = time.perf_counter() - started
        started = time.perf_counter()
        loss = loss_report(config, args.strategies, checkpoints=True, progress=False)
        loss_s = time.perf_counter() - started
    plot_training([training_panel(accuracy), training_panel(loss)], args.png,
                  title=f"max-of-{args.k} (v={args.vocab}, d={args.d_model}, seed {args.seed}): bounds during training")
    write_json_atomic(args.json, {"accuracy": accuracy, "loss": loss, "wall_s": {"accuracy": accuracy_s, "loss": loss_s}})
    print(f"accuracy checkpoints {accuracy_s:.1f} s, loss checkpoints {loss_s:.1f} s; PNG {args.png}, JSON {args.json}")


if __name__ == "__main__":
    main()

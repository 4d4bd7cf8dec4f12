"""Detection on SmolLM2: every concept x method x pooling, OOD/ID AUROC with 95% bootstrap intervals.

Runs the detection table twice in one process: the first run builds (or reuses) the
cached activations and the SAE, the second measures detection with cached activations
(target: all concepts x methods in under 2 minutes), and checks that it reproduces the
first run's numbers exactly (same seed, same numbers).

    PYTHONPATH=src python benchmarks/probing_detect.py --json benchmarks/results/probing_detect.json
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console

from interpgym.core.jsonio import write_json_atomic
from interpgym.probing.concepts import concept_names
from interpgym.probing.detect import DetectConfig, run_detection
from interpgym.probing.methods import METHODS
from interpgym.probing.tables import detection_table
from interpgym.subjects.lm_loader import load_language_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sae-steps", type=int, default=1000)
    parser.add_argument("--json", default="benchmarks/results/probing_detect.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lm = load_language_model(None)
    cfg = DetectConfig(concepts=tuple(concept_names()), methods=METHODS, layer=lm.n_layers // 2 if args.layer is None else args.layer,
                       seed=args.seed, sae_steps=args.sae_steps)
    t0 = time.perf_counter()
    first = run_detection(lm, cfg)
    t1 = time.perf_counter()
    second = run_detection(lm, cfg)
    t2 = time.perf_counter()
    same = [
        (a["auroc_id"], a["auroc_ood"], a["ci95"]) == (b["auroc_id"], b["auroc_ood"], b["ci95"])
        for a, b in zip(first["results"], second["results"], strict=True)
    ]
    out = {
        **second,
        "seconds_first_run": t1 - t0,
        "seconds_cached_run": t2 - t1,
        "reproduced_exactly": all(same),
        "note": "timings measured on a shared 2-core CPU under load from other sessions",
    }
    console = Console()
    console.print(detection_table(second, "auroc_ood"))
    console.print(detection_table(second, "auroc_id"))
    console.print(f"first run {t1 - t0:.0f}s (activations + SAE, or cache), cached run {t2 - t1:.0f}s; reproduced exactly: {all(same)}")
    write_json_atomic(args.json, out)


if __name__ == "__main__":
    main()

"""Steering on SmolLM2 (AxBench protocol), steering overhead vs the model's own generate(), and directional ablation.

1. The steering table: every concept x `--methods` (default diff_means, prompting, none),
   alpha chosen on the select half of the held-out instructions, reported on the other half
   with the offline judge; wall time of the whole evaluation and of its diff_means part.
2. Throughput: batched greedy generation with a steering hook vs the unsteered model's own
   `generate()` on the same prompts in the same run (alternating, median of 3).
3. Ablation of the diff_means direction (and a random control) for `--ablate-concepts`.

    PYTHONPATH=src python benchmarks/probing_steer.py --json benchmarks/results/probing_steer.json
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from rich.console import Console

from interpgym.core.jsonio import write_json_atomic
from interpgym.probing import methods as M
from interpgym.probing.ablation_eval import ablation_effect
from interpgym.probing.concepts import concept_names, load_concept
from interpgym.probing.detect import DetectConfig, collect, labels_of
from interpgym.probing.seeds import STEER_INSTRUCTIONS
from interpgym.probing.steer_eval import SteerConfig, run_steering
from interpgym.probing.steering import format_prompt, generate, steering
from interpgym.probing.tables import steering_table
from interpgym.subjects.lm_loader import load_language_model


def throughput(lm, layer: int, direction: torch.Tensor, alpha: float, batch: int = 8, tokens: int = 32) -> dict:  # noqa: ANN001
    prompts = [format_prompt(lm.tokenizer, i) for i in STEER_INSTRUCTIONS[:batch]]
    plain, steered = [], []
    for _ in range(3):
        t = time.perf_counter()
        _, n_plain = generate(lm.model, lm.tokenizer, prompts, max_new_tokens=tokens, batch_size=batch)
        plain.append(n_plain / (time.perf_counter() - t))
        t = time.perf_counter()
        with steering(lm.model, direction, alpha, layer):
            _, n_steered = generate(lm.model, lm.tokenizer, prompts, max_new_tokens=tokens, batch_size=batch)
        steered.append(n_steered / (time.perf_counter() - t))
    p, s = statistics.median(plain), statistics.median(steered)
    return {"tokens_per_s_unsteered_generate": p, "tokens_per_s_steered": s, "overhead": p / s - 1, "batch": batch, "new_tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concepts", default="all")
    parser.add_argument("--methods", default="diff_means,prompting,none")
    parser.add_argument("--ablate-concepts", default="evaluation,positive_sentiment,weather")
    parser.add_argument("--instructions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="benchmarks/results/probing_steer.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lm = load_language_model(None)
    layer = lm.n_layers // 2
    concepts = tuple(concept_names()) if args.concepts == "all" else tuple(args.concepts.split(","))
    cfg = SteerConfig(concepts=concepts, methods=tuple(args.methods.split(",")), layer=layer, seed=args.seed, n_instructions=args.instructions)
    t0 = time.perf_counter()
    result = run_steering(lm, cfg)
    result["seconds_total"] = time.perf_counter() - t0
    console = Console()
    console.print(steering_table(result))
    acts, _, _ = collect(lm, DetectConfig(concepts=concepts, methods=("diff_means",), layer=layer, seed=args.seed))
    first = concepts[0]
    direction = M.fit("diff_means", acts[first]["train"]["mean"], labels_of(load_concept(first), "train")).direction
    scale = float(acts[first]["train"]["tokens"].norm(dim=-1).median())
    result["throughput"] = throughput(lm, layer, direction, 2.0 * scale)
    console.print(result["throughput"])
    ablations = {}
    for name in args.ablate_concepts.split(","):
        if name not in concepts:
            continue
        concept = load_concept(name, args.seed)
        vec = M.fit("diff_means", acts[name]["train"]["mean"], labels_of(concept, "train")).direction
        ablations[name] = ablation_effect(lm.model, lm.tokenizer, concept, vec, layer, read_layer=min(lm.n_layers - 1, layer + 5), seed=args.seed)
        console.print(name, ablations[name])
    result["ablation"] = ablations
    result["note"] = "timings measured on a shared 2-core CPU under load from other sessions"
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()

"""Steering on SmolLM2 (AxBench protocol), steering overhead vs the model's own generate(), and directional ablation.

1. The steering table: every concept x `--methods` (default diff_means, prompting, none),
   alpha chosen on the select half of the held-out instructions, reported on the other half
   with the offline judge; wall time AND process CPU time (time.process_time) of the whole
   evaluation, of its shared setup and of each method (torch threads fixed at `--threads`).
2. The judge's fluency check on the real model: held-out natural texts vs their word salad
   vs degenerate loops (texts not used in the judge's calibration).
3. Throughput: batched greedy generation with a steering hook vs the unsteered model's own
   `generate()` on the same prompts in the same run (alternating, median of 3), wall and CPU.
4. Ablation of the diff_means direction (and a random control) for `--ablate-concepts`.

    PYTHONPATH=src python benchmarks/probing_steer.py --json benchmarks/results/probing_steer.json
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from rich.console import Console

from interpgym.core.jsonio import write_json_atomic
from interpgym.probing import methods as M
from interpgym.probing.ablation_eval import ablation_effect
from interpgym.probing.cli import progress_bar
from interpgym.probing.concepts import concept_names, load_concept
from interpgym.probing.detect import DetectConfig, collect, labels_of
from interpgym.probing.judge import FluencyCalibration, OfflineJudge, degenerate_loops, fluency_reference_texts, word_salad
from interpgym.probing.seeds import STEER_INSTRUCTIONS
from interpgym.probing.steer_eval import SteerConfig, run_steering
from interpgym.probing.steering import format_prompt, steering
from interpgym.probing.tables import steering_table
from interpgym.subjects.lm_loader import load_language_model


def throughput(lm, layer: int, direction: torch.Tensor, alpha: float, batch: int = 8, tokens: int = 32) -> dict:
    """Tokens/s of the unsteered model's own generate() vs generation under a steering hook, by wall and by CPU time.

    Both sides generate exactly `tokens` new tokens per prompt (EOS suppressed), so they do equal work."""
    prompts = [format_prompt(lm.tokenizer, i) for i in STEER_INSTRUCTIONS[:batch]]
    enc = lm.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    options = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False, "temperature": None, "top_p": None,
               "top_k": None, "pad_token_id": lm.tokenizer.pad_token_id}
    runs = {"plain": {"wall": [], "cpu": []}, "steered": {"wall": [], "cpu": []}}

    def timed(kind: str, hooked: bool) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        with steering(lm.model, direction, alpha, layer) if hooked else contextlib.nullcontext(), torch.no_grad():
            out = lm.model.generate(**enc, **options)
        n = (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
        runs[kind]["wall"].append(n / (time.perf_counter() - wall))
        runs[kind]["cpu"].append(n / (time.process_time() - cpu))

    lm.tokenizer.padding_side = "left"
    for _ in range(3):
        timed("plain", False)
        timed("steered", True)
    med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in runs.items()}
    return {"tokens_per_s_unsteered_generate": med["plain"]["wall"], "tokens_per_s_steered": med["steered"]["wall"],
            "overhead": med["plain"]["wall"] / med["steered"]["wall"] - 1,
            "cpu_tokens_per_s_unsteered_generate": med["plain"]["cpu"], "cpu_tokens_per_s_steered": med["steered"]["cpu"],
            "overhead_cpu": med["plain"]["cpu"] / med["steered"]["cpu"] - 1, "runs": runs, "batch": batch, "new_tokens": tokens}


def fluency_check(lm, result: dict, concepts: tuple[str, ...], seed: int) -> dict:
    """Mean fluency (0..2) of held-out natural texts (disjoint from the calibration's), their word salad and loops."""
    judge = OfflineJudge(lm.model, lm.tokenizer, fluency=FluencyCalibration(**{k: result["judge_calibration"][k] for k in
                                                                               ("loss_natural", "loss_bad", "rep_natural", "rep_bad")}))
    natural = fluency_reference_texts(concepts, seed, offset=4)
    pool = result["instructions_select"] + result["instructions_report"]
    instructions = [pool[i % len(pool)] for i in range(len(natural))]
    kinds = {"natural": natural, "word_salad": word_salad(natural, seed + 1), "degenerate_loops": degenerate_loops(natural)}
    return {k: statistics.mean(judge.fluency_scores(instructions, texts)) for k, texts in kinds.items()} | {"n_texts": len(natural)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concepts", default="all")
    parser.add_argument("--methods", default="diff_means,prompting,none")
    parser.add_argument("--ablate-concepts", default="evaluation,positive_sentiment,weather")
    parser.add_argument("--instructions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="benchmarks/results/probing_steer.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_language_model(None)
    layer = lm.n_layers // 2
    concepts = tuple(concept_names()) if args.concepts == "all" else tuple(args.concepts.split(","))
    cfg = SteerConfig(
        concepts=concepts, methods=tuple(args.methods.split(",")), layer=layer, seed=args.seed, n_instructions=args.instructions
    )
    t0, c0 = time.perf_counter(), time.process_time()
    with progress_bar("steering (texts / generations)") as advance:
        result = run_steering(lm, cfg, progress=advance)
    result["seconds_total"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    result["torch_threads"] = torch.get_num_threads()
    console = Console()
    console.print(steering_table(result))
    console.print({"setup": result["setup_seconds"], "per_method": result["method_seconds"], "total": result["seconds_total"],
                   "alpha_at_grid_edge": result["alpha_at_grid_edge"]})
    result["fluency_check"] = fluency_check(lm, result, concepts, args.seed)
    console.print({"fluency_check": result["fluency_check"]})
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
        ablations[name] = ablation_effect(
            lm.model, lm.tokenizer, concept, vec, layer, read_layer=min(lm.n_layers - 1, layer + 5), seed=args.seed
        )
        console.print(name, ablations[name])
    result["ablation"] = ablations
    result["note"] = "timings measured on a shared 2-core CPU under load from other sessions"
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()

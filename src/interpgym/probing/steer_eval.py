"""The steering benchmark (AxBench's protocol): alpha chosen on half of the held-out instructions, reported on the other half.

Methods: every detection method's direction (fit on mean-pooled train activations at
`layer`; `sae_latent` gives its latent's decoder row, `random` a random direction),
plus two baselines: `prompting` (the system prompt asks to mention the concept) and
`none`. Directions are unit norm; alpha = factor x the median residual-token norm at
the layer (so one alpha grid fits every model), factors `alpha_factors`.

Cost: per concept and direction method, len(alpha_factors) x n_select + n_report
generations of `max_new_tokens` tokens (batched across concepts and alphas, KV-cached),
plus the judge (one batched forward per response).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from interpgym.core.errors import UserError
from interpgym.probing import methods as M
from interpgym.probing import seeds
from interpgym.probing.concepts import load_concept
from interpgym.probing.detect import DetectConfig, collect, labels_of
from interpgym.probing.judge import OfflineJudge
from interpgym.probing.names import parse_names
from interpgym.probing.steering import format_prompt, generate

BASELINES: tuple[str, ...] = ("prompting", "none")
STEER_METHODS: tuple[str, ...] = (*M.METHODS, *BASELINES)


@dataclass(frozen=True)
class SteerConfig:
    concepts: tuple[str, ...]
    methods: tuple[str, ...]
    layer: int
    seed: int = 0
    n_instructions: int = 8  # per half: select and report
    # log-spaced, x the median residual norm: 1/16 .. 4 (the first grid, 0.5 .. 4, chose its lowest factor for 8 of 11 concepts)
    alpha_factors: tuple[float, ...] = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
    max_new_tokens: int = 24
    batch_size: int = 32
    sae_steps: int = 1000
    n_boot: int = 1000
    examples: int = 2


def parse_steer_methods(spec: str) -> list[str]:
    """`all` or a comma-separated list of detection methods and baselines (`UserError` on an unknown one)."""
    return parse_names(spec, STEER_METHODS, "method", "--methods")


def instruction_halves(n: int, seed: int) -> tuple[list[str], list[str]]:
    """(select, report): two disjoint seeded halves of the held-out instructions, n each."""
    pool = list(seeds.STEER_INSTRUCTIONS)
    if not 1 <= n <= len(pool) // 2:
        raise UserError(f"--instructions must be in 1..{len(pool) // 2} (got {n})")
    random.Random(f"instructions:{seed}").shuffle(pool)
    return pool[:n], pool[n : 2 * n]


def mean_ci(values: list[float], seed: int, n_boot: int) -> tuple[float, list[float]]:
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    boots = arr[rng.integers(0, len(arr), size=(n_boot, len(arr)))].mean(1)
    return float(arr.mean()), [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]


def run_steering(lm, cfg: SteerConfig, progress=None) -> dict:
    """The steering table: per concept x method, chosen alpha, mean scores on the report half with intervals, examples.

    Generations of one method are batched across concepts and alpha factors (`generate(row_offsets=...)`): the
    protocol is unchanged (alpha chosen per concept on the select half, reported on the report half), only the
    batches are fuller. `method_seconds` gives each method's wall and process CPU time, `setup_seconds` the shared
    part (activations, directions' inputs, unsteered generations, judge calibration).
    """
    model, tokenizer = lm.model, lm.tokenizer
    setup_wall, setup_cpu = time.perf_counter(), time.process_time()
    select, report = instruction_halves(cfg.n_instructions, cfg.seed)
    directions_needed = [m for m in cfg.methods if m in M.METHODS]
    acts, sae, _ = collect(lm, DetectConfig(concepts=cfg.concepts, methods=tuple(directions_needed), layer=cfg.layer,
                                            seed=cfg.seed, sae_steps=cfg.sae_steps), progress) if directions_needed else ({}, None, {})
    tokens_generated, seconds_generating = 0, 0.0
    d_model = model.config.hidden_size

    def gen(prompts: list[str], offsets: torch.Tensor | None = None) -> list[str]:
        nonlocal tokens_generated, seconds_generating
        start = time.perf_counter()
        texts, n = generate(model, tokenizer, prompts, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size,
                            row_offsets=None if offsets is None else (cfg.layer, offsets))
        seconds_generating += time.perf_counter() - start
        tokens_generated += n
        if progress is not None:
            progress(len(prompts))
        return texts

    concepts = {name: load_concept(name, cfg.seed) for name in cfg.concepts}
    plain = {i: format_prompt(tokenizer, i) for i in select + report}
    unsteered = gen([plain[i] for i in select + report])
    judge = OfflineJudge.build(model, tokenizer, cfg.concepts, select + report, unsteered, seed=cfg.seed)
    scales = {name: float(acts[name]["train"]["tokens"].norm(dim=-1).median()) for name in cfg.concepts} if directions_needed else {}
    setup = {"wall": time.perf_counter() - setup_wall, "cpu": time.process_time() - setup_cpu}
    by_method, method_seconds = {}, {}
    for method in cfg.methods:
        wall, cpu = time.perf_counter(), time.process_time()
        chosen = dict.fromkeys(cfg.concepts)
        selection = {name: [] for name in cfg.concepts}
        if method == "none":
            responses = {name: unsteered[len(select) :] for name in cfg.concepts}
        elif method == "prompting":
            prompts = [format_prompt(tokenizer, i, f"Mention {concepts[name].steering_phrase} in your answer.")
                       for name in cfg.concepts for i in report]
            outs = gen(prompts)
            responses = {name: outs[k * len(report) : (k + 1) * len(report)] for k, name in enumerate(cfg.concepts)}
        else:
            unit = {name: M.fit(method, acts[name]["train"]["mean"], labels_of(concepts[name], "train"), seed=cfg.seed, sae=sae).direction
                    for name in cfg.concepts}
            grid = [(name, f) for name in cfg.concepts for f in cfg.alpha_factors]
            offsets = torch.stack([f * scales[name] * unit[name].float().reshape(d_model) for name, f in grid for _ in select])
            outs = gen([plain[i] for _ in grid for i in select], offsets)
            n_sel = len(select)
            for k, name in enumerate(cfg.concepts):
                block = outs[k * len(cfg.alpha_factors) * n_sel : (k + 1) * len(cfg.alpha_factors) * n_sel]
                scores = judge.score(name, select * len(cfg.alpha_factors), block)
                best = None
                for j, factor in enumerate(cfg.alpha_factors):
                    h = statistics.mean(s["harmonic"] for s in scores[j * n_sel : (j + 1) * n_sel])
                    selection[name].append({"alpha_factor": factor, "harmonic_select": h})
                    if best is None or h > best[0]:
                        best = (h, factor)
                chosen[name] = best[1]
            offsets = torch.stack([chosen[name] * scales[name] * unit[name].float().reshape(d_model)
                                   for name in cfg.concepts for _ in report])
            outs = gen([plain[i] for _ in cfg.concepts for i in report], offsets)
            responses = {name: outs[k * len(report) : (k + 1) * len(report)] for k, name in enumerate(cfg.concepts)}
        for name in cfg.concepts:
            scores = judge.score(name, report, responses[name])
            factor = chosen[name]
            row = {"concept": name, "method": method, "alpha_factor": factor,
                   "alpha": None if factor is None else factor * scales[name], "selection": selection[name]}
            for key in ("concept", "instruction", "fluency"):
                row[f"{key}_score"] = statistics.mean(s[key] for s in scores)
            row["harmonic"], row["ci95"] = mean_ci([s["harmonic"] for s in scores], cfg.seed, cfg.n_boot)
            row["responses"] = responses[name]
            row["examples"] = [{"instruction": i, "response": r}
                               for i, r in zip(report[: cfg.examples], responses[name][: cfg.examples], strict=True)]
            by_method[name, method] = row
        method_seconds[method] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    rows = [by_method[name, method] for name in cfg.concepts for method in cfg.methods]
    edges = [r for r in rows if r["alpha_factor"] is not None]
    return {"model": lm.identity, "layer": cfg.layer, "seed": cfg.seed, "judge": "offline", "judge_calibration": judge.calibration(),
            "alpha_factors": list(cfg.alpha_factors),
            "alpha_at_grid_edge": {"lowest": sum(r["alpha_factor"] == min(cfg.alpha_factors) for r in edges),
                                   "highest": sum(r["alpha_factor"] == max(cfg.alpha_factors) for r in edges), "of": len(edges)},
            "instructions_select": select, "instructions_report": report, "results": rows,
            "tokens_generated": tokens_generated, "seconds_generating": seconds_generating,
            "setup_seconds": setup, "method_seconds": method_seconds}

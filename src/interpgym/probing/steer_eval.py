"""The steering benchmark (AxBench's protocol): alpha chosen on half of the held-out instructions, reported on the other half.

Methods: every detection method's direction (fit on mean-pooled train activations at
`layer`; `sae_latent` gives its latent's decoder row, `random` a random direction),
plus two baselines: `prompting` (the system prompt asks to mention the concept) and
`none`. Directions are unit norm; alpha = factor x the median residual-token norm at
the layer (so one alpha grid fits every model), factors `alpha_factors`.

Cost: per concept and direction method, len(alpha_factors) x n_select + n_report
generations of `max_new_tokens` tokens (batched, KV-cached), plus the judge.
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
from interpgym.probing.steering import format_prompt, generate, steering

BASELINES: tuple[str, ...] = ("prompting", "none")
STEER_METHODS: tuple[str, ...] = (*M.METHODS, *BASELINES)


@dataclass(frozen=True)
class SteerConfig:
    concepts: tuple[str, ...]
    methods: tuple[str, ...]
    layer: int
    seed: int = 0
    n_instructions: int = 8  # per half: select and report
    alpha_factors: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    max_new_tokens: int = 24
    batch_size: int = 16
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


def run_steering(lm, cfg: SteerConfig, progress=None) -> dict:  # noqa: ANN001
    """The steering table: per concept x method, chosen alpha, mean scores on the report half with intervals, examples."""
    model, tokenizer = lm.model, lm.tokenizer
    select, report = instruction_halves(cfg.n_instructions, cfg.seed)
    directions_needed = [m for m in cfg.methods if m in M.METHODS]
    acts, sae, _ = collect(lm, DetectConfig(concepts=cfg.concepts, methods=tuple(directions_needed), layer=cfg.layer,
                                            seed=cfg.seed, sae_steps=cfg.sae_steps), progress) if directions_needed else ({}, None, {})
    tokens_generated, seconds_generating = 0, 0.0

    def gen(instructions: list[str], system: str | None = None) -> list[str]:
        nonlocal tokens_generated, seconds_generating
        start = time.perf_counter()
        texts, n = generate(model, tokenizer, [format_prompt(tokenizer, i, system) for i in instructions],
                            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size)
        seconds_generating += time.perf_counter() - start
        tokens_generated += n
        if progress is not None:
            progress(len(instructions))
        return texts

    unsteered = gen(select + report)
    judge = OfflineJudge.build(model, tokenizer, cfg.concepts, select + report, unsteered, seed=cfg.seed)
    rows = []
    for name in cfg.concepts:
        concept = load_concept(name, cfg.seed)
        if directions_needed:
            train = acts[name]["train"]
            scale = float(train["tokens"].norm(dim=-1).median())
        for method in cfg.methods:
            chosen, selection = None, []
            if method == "none":
                responses = unsteered[len(select) :]
            elif method == "prompting":
                responses = gen(report, system=f"Mention {concept.steering_phrase} in your answer.")
            else:
                direction = M.fit(method, train["mean"], labels_of(concept, "train"), seed=cfg.seed, sae=sae).direction
                best = None
                for factor in cfg.alpha_factors:
                    with steering(model, direction, factor * scale, cfg.layer):
                        outs = gen(select)
                    h = statistics.mean(s["harmonic"] for s in judge.score(name, select, outs))
                    selection.append({"alpha_factor": factor, "harmonic_select": h})
                    if best is None or h > best[0]:
                        best = (h, factor)
                chosen = best[1]
                with steering(model, direction, chosen * scale, cfg.layer):
                    responses = gen(report)
            scores = judge.score(name, report, responses)
            row = {"concept": name, "method": method, "alpha_factor": chosen,
                   "alpha": None if chosen is None else chosen * scale, "selection": selection}
            for key in ("concept", "instruction", "fluency"):
                row[f"{key}_score"] = statistics.mean(s[key] for s in scores)
            row["harmonic"], row["ci95"] = mean_ci([s["harmonic"] for s in scores], cfg.seed, cfg.n_boot)
            row["responses"] = responses
            row["examples"] = [{"instruction": i, "response": r} for i, r in zip(report[: cfg.examples], responses[: cfg.examples], strict=True)]
            rows.append(row)
    return {"model": lm.identity, "layer": cfg.layer, "seed": cfg.seed, "judge": "offline", "judge_calibration": judge.calibration(),
            "instructions_select": select, "instructions_report": report, "results": rows,
            "tokens_generated": tokens_generated, "seconds_generating": seconds_generating}

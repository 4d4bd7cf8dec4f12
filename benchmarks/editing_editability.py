"""Which training recipe makes the fact LM more editable by the fixed ROME editor (edit/editability's reference)?

For each recipe variant (overrides of `FactLMRecipe`) and seed: train (cached by recipe
hash), measure capability (fact recall on the rewrite and a paraphrase template,
cross-entropy on the val plays) and the fixed editor's CounterFact metrics over `--facts`
requests (a public seed, not the task's secret facts), at every edit layer asked for.
Wall and process CPU time of each training are recorded (the machine is shared).

    PYTHONPATH=src nice python benchmarks/editing_editability.py --seeds 0,1 \
        --variants '{"default": {}, "wd0": {"weight_decay": 0.0}}' --json benchmarks/results/editing_editability.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.editing.editability import edit_requests, editability
from interpgym.subjects.fact_lm import FactLMRecipe, fact_recall, fact_tokenizer, fact_world, heldout_loss, train_fact_lm
from interpgym.subjects.lm_loader import LanguageModel, load_language_model

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default='{"default": {}}', help="JSON: name -> FactLMRecipe overrides")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--layers", default=None, help="edit layers to score (default: each recipe's edit_layer)")
    parser.add_argument("--facts", type=int, default=24)
    parser.add_argument("--request-seed", type=int, default=12345)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = json.loads(args.json.read_text()) if args.json.exists() else {"runs": []}
    world = fact_world()
    order = np.random.default_rng(args.request_seed).permutation(len(world.facts))
    requests = edit_requests([world.facts[i] for i in order[: args.facts]], args.request_seed)
    for name, overrides in json.loads(args.variants).items():
        for seed in (int(s) for s in args.seeds.split(",")):
            recipe = dataclasses.replace(FactLMRecipe(), **overrides, seed=seed)
            started, cpu = time.perf_counter(), time.process_time()
            path = train_fact_lm(recipe, progress=False)
            train_wall, train_cpu = time.perf_counter() - started, time.process_time() - cpu
            model = load_language_model(str(path)).model
            lm = LanguageModel(model=model, tokenizer=fact_tokenizer(), identity=f"path:{path}")
            layers = [int(x) for x in args.layers.split(",")] if args.layers else [recipe.edit_layer]
            run = {"variant": name, "overrides": overrides, "seed": seed, "recipe": dataclasses.asdict(recipe),
                   "train_wall_s": train_wall, "train_cpu_s": train_cpu, "recall": fact_recall(model),
                   "recall_paraphrase": fact_recall(model, template=1), "val_loss": heldout_loss(model, "val"), "by_layer": {}}
            for layer in layers:
                if layer < recipe.n_layers:
                    run["by_layer"][str(layer)] = editability(lm, requests, layer)
            results["runs"] = [r for r in results["runs"] if (r["variant"], r["seed"]) != (name, seed)] + [run]
            results["load"] = os.getloadavg()
            write_json_atomic(args.json, results)
            _print(results)


def _print(results: dict) -> None:
    table = Table(title="fact LM editability (fixed ROME editor)")
    for col in ("variant", "seed", "recall", "para recall", "val loss", "layer", "ES", "PS", "NS", "S", "gen eff.", "train s (wall/cpu)"):
        table.add_column(col, justify="right")
    for r in results["runs"]:
        for layer, m in r["by_layer"].items():
            capability = (f"{r['recall']:.3f}", f"{r['recall_paraphrase']:.3f}", f"{r['val_loss']:.3f}")
            edits = (f"{m[k]:.3f}" for k in ("es", "ps", "ns", "s", "gen_efficacy"))
            table.add_row(r["variant"], str(r["seed"]), *capability, layer, *edits, f"{r['train_wall_s']:.0f}/{r['train_cpu_s']:.0f}")
    console.print(table)


if __name__ == "__main__":
    main()

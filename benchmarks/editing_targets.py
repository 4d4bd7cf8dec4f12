"""Knowledge-editing targets on SmolLM2-135M-Instruct (issue 9), measured in one run.

Targets: ROME over >= 100 facts ES >= 0.95, PS >= 0.70, NS >= 0.70 (GPT-2 XL in the
paper: 100 / 96 / 75), generation efficacy beside it; MEMIT with 100 edits at once
S >= 0.80; one ROME edit < 10 s with the covariance cached; the covariance of one layer
< 10 minutes once; sequential curves (S, retention vs edits) for every method.

Each part is a separate `--parts` entry so a loaded machine can run them one at a time;
results are merged into the `--json` file (existing parts kept).

    PYTHONPATH=src nice python benchmarks/editing_targets.py --parts cov,rome,memit,sequential \
        --facts 100 --seq-facts 100 --json benchmarks/results/editing_targets.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.editing.cli import DEFAULT_LAYER, DEFAULT_WINDOW
from interpgym.editing.covariance import key_covariance
from interpgym.editing.facts import build_fact_set, select_facts
from interpgym.editing.methods import EditConfig
from interpgym.editing.metrics import EvalConfig, harmonic_mean
from interpgym.editing.runner import run_edits
from interpgym.subjects.lm_loader import load_language_model

console = Console()
METHODS_SEQ = ("rome", "memit", "alphaedit", "ft")


def _layers(method: str) -> tuple[int, ...]:
    return DEFAULT_WINDOW if method in ("memit", "alphaedit") else (DEFAULT_LAYER,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="cov,rome,memit,sequential")
    parser.add_argument("--facts", type=int, default=100)
    parser.add_argument("--seq-facts", type=int, default=100)
    parser.add_argument("--seq-methods", default=",".join(METHODS_SEQ))
    parser.add_argument("--offset", type=int, default=0, help="skip this many facts of the fixed order (to split a run)")
    parser.add_argument("--retention", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=0,
                        help="rome: edit in chunks of this many facts, saving each (retention/ppl on 2 edits per chunk)")
    parser.add_argument("--cov-tokens", type=int, default=100_000)
    parser.add_argument("--cov-layers", type=lambda t: [int(x) for x in t.split(",")], default=None,
                        help="layers for the `cov` part (default: the ROME layer and the MEMIT window)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    lm = load_language_model(None)
    fact_set = build_fact_set(lm)
    results["facts"] = {k: v for k, v in fact_set.summary().items() if k != "datasheets"}
    edits = select_facts(fact_set.facts, args.facts, 0, offset=args.offset)
    keep = select_facts(fact_set.facts, args.retention, 0, offset=200)  # fixed, disjoint from edits at offsets < 200
    parts = args.parts.split(",")
    results["offset"] = args.offset
    results["load"] = {"threads": args.threads, "loadavg_start": list(__import__("os").getloadavg())}

    if "cov" in parts:
        layer_times, layer_cpu = {}, {}
        for layer in args.cov_layers or sorted(set(DEFAULT_WINDOW) | {DEFAULT_LAYER}):
            started, cpu_started = time.perf_counter(), time.process_time()
            key_covariance(lm, layer, args.cov_tokens)
            layer_times[str(layer)] = time.perf_counter() - started
            layer_cpu[str(layer)] = time.process_time() - cpu_started
        results["covariance"] = {"tokens": args.cov_tokens, "seconds_by_layer": layer_times, "cpu_seconds_by_layer": layer_cpu,
                                 "threads": args.threads, "note": "0-1 s means the layer was already cached"}
        write_json_atomic(args.json, results)
    if "rome" in parts:
        config = EditConfig(method="rome", layers=_layers("rome"), cov_tokens=args.cov_tokens)
        if args.chunk:
            # chunks of single edits, each written as it finishes, so a loaded machine keeps partial results
            chunks = results.setdefault("rome_chunks", {})
            for start in range(0, len(edits), args.chunk):
                key = str(args.offset + start)
                if key not in chunks:
                    chunks[key] = run_edits(lm, edits[start : start + args.chunk], keep, config, EvalConfig(), detail_edits=2)
                    results["rome"] = combine_chunks(list(chunks.values()))
                    write_json_atomic(args.json, results)
        else:
            results["rome"] = run_edits(lm, edits, keep, config, EvalConfig())
        write_json_atomic(args.json, results)
    if "memit" in parts:
        config = EditConfig(method="memit", layers=_layers("memit"), cov_tokens=args.cov_tokens)
        results["memit_batch"] = run_edits(lm, edits, keep, config, EvalConfig())
        write_json_atomic(args.json, results)
    if "sequential" in parts:
        seq_edits = select_facts(fact_set.facts, args.seq_facts, 0)
        results.setdefault("sequential", {})
        for method in args.seq_methods.split(","):
            config = EditConfig(method=method, layers=_layers(method), cov_tokens=args.cov_tokens)
            results["sequential"][method] = run_edits(lm, seq_edits, keep, config, EvalConfig(fluency_facts=5), sequential=True)
            write_json_atomic(args.json, results)
    if results.get("sequential"):
        from interpgym.editing.plots import plot_curves

        plot_curves({m: r["curve"] for m, r in results["sequential"].items()}, args.json.with_suffix(".png"),
                    title="sequential editing on SmolLM2-135M-Instruct")
    results["load"]["loadavg_end"] = list(__import__("os").getloadavg())
    write_json_atomic(args.json, results)
    _print(results)


def combine_chunks(chunks: list[dict]) -> dict:
    """Single-edit results of several chunks as one: means weighted by edits, S from the combined ES, PS, NS."""
    weights = np.array([c["n_edits"] for c in chunks], dtype=float)

    def mean(values: list[float]) -> float:
        v = np.asarray(values, dtype=float)
        ok = ~np.isnan(v)
        return float((v[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else float("nan")

    metrics = {k: mean([c["metrics"][k] for c in chunks]) for k in chunks[0]["metrics"]}
    metrics["s"] = harmonic_mean([metrics["es"], metrics["ps"], metrics["ns"]])
    timing = {k: mean([c["timing"][k] for c in chunks]) for k in ("edit_s_mean", "edit_cpu_s_mean")}
    return {"method": chunks[0]["method"], "n_edits": int(weights.sum()), "layers": chunks[0]["layers"], "metrics": metrics,
            "timing": timing, "chunks": len(chunks), "baseline": chunks[0]["baseline"]}


def _print(results: dict) -> None:
    table = Table(title="editing targets on SmolLM2-135M-Instruct")
    for col in ("run", "n", "ES", "PS", "NS", "S", "gen eff.", "retention", "ppl change", "edit s wall/cpu"):
        table.add_column(col, justify="right")
    rows = [("rome (single edits)", results.get("rome")), ("memit (one batch)", results.get("memit_batch"))]
    rows += [(f"{m} sequential", r) for m, r in results.get("sequential", {}).items()]
    for name, r in rows:
        if not r:
            continue
        m = r["metrics"]
        table.add_row(name, str(r["n_edits"]), *(f"{m[k]:.3f}" for k in ("es", "ps", "ns", "s", "gen_efficacy", "retention", "ppl_change")),
                      f"{r['timing']['edit_s_mean']:.2f}/{r['timing'].get('edit_cpu_s_mean', float('nan')):.2f}")
    console.print(table)
    if "covariance" in results:
        cov = results["covariance"]
        console.print(f"covariance seconds by layer ({cov['tokens']} tokens): wall {cov['seconds_by_layer']}, "
                      f"process CPU {cov.get('cpu_seconds_by_layer')}")


if __name__ == "__main__":
    main()

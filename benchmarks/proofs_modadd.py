"""Benchmark: the modular-addition proofs against brute force, side by side on the same weights.

For each trained model (p, seed, attention) and for the hand-built constant-attention model
(`subjects.modadd.constructed_pizza`) with Gaussian noise of growing size added to every weight:
exact accuracy (brute force = the float32 forward on all p^2 inputs), every strategy's bound
(quadrature, readout/rank=4..32), verification FLOPs and wall time with their ratios to brute
force, unexplained dimensionality, and where the
quadrature proof's charge comes from (constant term, neuron-input Fourier residual, a/b
asymmetry, attention deviation, output Fourier residual, direct path, float32 slack) next to
the largest structured margin it has to beat; for the integration proof, how much of the
activation the quadrature leaves to the per-input correction and what that correction's
charge costs against the true margins. Every result is audited per input.

    PYTHONPATH=src python benchmarks/proofs_modadd.py --p 59 --seeds 0 --json benchmarks/results/proofs_modadd.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.core.threads import torch_threads
from interpgym.proofs.modadd_brute_force import margins
from interpgym.proofs.modadd_integration import integration_proof
from interpgym.proofs.modadd_roundoff import modadd_margin_slack
from interpgym.proofs.modadd_runner import STRATEGIES, audit, prove
from interpgym.proofs.modadd_structure import decompose, find_key_frequencies
from interpgym.proofs.result import ProofResult
from interpgym.proofs.runner import ModelProofs
from interpgym.subjects.modadd import ModAddConfig, ModAddWeights, all_inputs, constructed_pizza, labels, train_modadd

NOISE_LEVELS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2)


def charge_breakdown(w: ModAddWeights, result: ProofResult) -> dict[str, float]:
    """The quadrature proof's charge split by source, and the largest structured margin it has to beat
    (diagnostic; recomputes the decomposition for the proof's key frequencies, not timed)."""
    w64 = ModAddWeights(**w.to(dtype=torch.float64).as_dict(), uniform_attention=w.uniform_attention)
    parts = decompose(w64, find_key_frequencies(w64))
    out = {name: float((value * parts.out_spread).sum()) for name, value in parts.parts.items()}
    out["output_residual"] = float((2 * parts.H.norm(dim=1) * parts.out_residual_spread).sum())
    out["direct_path"] = parts.direct_charge
    out["float32_slack"] = modadd_margin_slack(w)
    certificate = result.extra["certificate"]
    out["total"] = certificate.charge
    out["largest_structured_margin"] = float((certificate.margin_lower + certificate.charge).max())
    return out


def pairwise_absolute_charge(w: ModAddWeights, delta: torch.Tensor) -> torch.Tensor:
    """Per input, the tightest neuron-by-neuron absolute charge of the remainder: the max over wrong answers c of
    sum_i |delta_i| |M[i, c*] - M[i, c]| (M = W_out W_U). Diagnostic of what no cross-neuron cancellation costs."""
    p = w.p
    M = w.W_out.double() @ w.W_U.double()
    target = labels(all_inputs(p), p)
    rows = []
    for chunk, answers in zip(delta.abs().split(256), target.split(256), strict=True):
        gap = (M[:, answers].T[:, :, None] - M[None]).abs()  # [batch, d_mlp, p]
        rows.append(torch.einsum("ni,nic->nc", chunk, gap).amax(dim=1))
    return torch.cat(rows)


def integration_breakdown(w: ModAddWeights, result: ProofResult, audit_against: ModelProofs | None = None) -> dict[str, float]:
    """For one `integration/rank=r` result: its bound, the share of the activation mass left to the correction delta
    (sum |delta| / sum act over all inputs and neurons), and the per-input charge |delta| . spread(R) (median, max)
    next to the exact margins (min, median; float64 forward). Rank 0 (the correction charged neuron by neuron,
    not read out) is the diagnostic of what absolute-value charging costs; it is audited against `audit_against`."""
    certificate = result.extra["certificate"]
    exact = margins(w.to(dtype=torch.float64))
    out: dict[str, float] = {}
    if audit_against is not None:
        audit(result, audit_against.results[0].correct)
        out["pairwise_abs_charge_median"] = float(pairwise_absolute_charge(w, certificate.delta).median())
    return out | {"bound": result.bound, "delta_share": float(certificate.delta.abs().sum() / certificate.activation.sum()),
            "charge_median": float(certificate.charge.median()), "charge_max": float(certificate.charge.max()),
            "margin_min": float(exact.min()), "margin_median": float(exact.median())}


def bench(label: str, w: ModAddWeights, extra: dict[str, Any]) -> dict[str, Any]:
    """Every strategy on `w` (audited per input against brute force), with FLOPs and wall-time ratios to brute force."""
    proofs = prove(w, list(STRATEGIES))
    brute = proofs.results[0]
    by_name = {r.strategy: r for r in proofs.results}
    rows = []
    for result, row in zip(proofs.results, proofs.rows(), strict=True):
        rows.append({**row, "flops_ratio": brute.flops / result.flops, "wall_ratio": brute.wall_s / result.wall_s})
    return {"model": label, **extra, "p": w.p, "d_mlp": w.d_mlp, "exact_accuracy": proofs.exact_accuracy, "results": rows,
            "quadrature_charge": charge_breakdown(w, by_name["quadrature"]),
            "integration": {name: integration_breakdown(w, r) for name, r in by_name.items() if name.startswith("integration/")}
            | {"integration/rank=0 (diagnostic)": integration_breakdown(w, integration_proof(w, 0), audit_against=proofs)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=int, default=59)
    parser.add_argument("--seeds", default="0", help="comma list of training seeds")
    parser.add_argument("--attention", default="learned,uniform", help="comma list: learned, uniform")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    console = Console(width=max(Console().width, 170))
    rows: list[dict[str, Any]] = []
    with torch_threads(1):
        prove(constructed_pizza(7), list(STRATEGIES))  # warm-up
        for attention in args.attention.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                started = time.perf_counter()
                model = train_modadd(ModAddConfig(p=args.p, seed=seed, attention=attention), progress=True)
                train_s = time.perf_counter() - started
                rows.append(bench(f"trained/{attention}", model.weights, {"seed": seed, "train_or_load_s": train_s}))
        ideal = constructed_pizza(args.p)
        for noise in NOISE_LEVELS:
            generator = torch.Generator().manual_seed(0)
            w = ModAddWeights(**{n: t + noise * torch.randn(t.shape, generator=generator) for n, t in ideal.as_dict().items()},
                              uniform_attention=True)
            rows.append(bench("constructed", w, {"noise": noise}))
    table = Table(title=f"modular addition proofs, p={args.p} (1 thread; wall times under load)")
    for column in ("model", "exact", "strategy", "bound", "FLOPs", "BF FLOPs / FLOPs", "wall s", "BF wall / wall", "unexpl. dim"):
        table.add_column(column, justify="right")
    for r in rows:
        name = r["model"].replace("trained/", "") + (f" seed {r['seed']}" if "seed" in r else f" +{r['noise']:g}")
        for i, x in enumerate(r["results"]):
            table.add_row(name if i == 0 else "", f"{r['exact_accuracy']:.4f}" if i == 0 else "", x["strategy"], f"{x['bound']:.4f}",
                          f"{x['flops']:.3g}", f"{x['flops_ratio']:.1f}", f"{x['wall_s']:.3f}", f"{x['wall_ratio']:.1f}",
                          f"{x['unexplained_dim']:.0f}")
    console.print(table)
    charges = Table(title="where the quadrature proof's charge comes from (vs the largest structured margin it must beat)")
    keys = list(rows[0]["quadrature_charge"])
    charges.add_column("model", justify="right")
    for key in keys:
        charges.add_column(key.replace("_", " "), justify="right")
    for r in rows:
        name = r["model"].replace("trained/", "") + (f" seed {r['seed']}" if "seed" in r else f" +{r['noise']:g}")
        charges.add_row(name, *(f"{r['quadrature_charge'][k]:.3g}" for k in keys))
    console.print(charges)
    split = Table(title="integration proofs: activation mass left to the per-input correction, its charge vs the exact margins")
    for column in ("model", "strategy", "bound", "|delta| / act", "charge median", "charge max", "margin min", "margin median"):
        split.add_column(column, justify="right")
    for r in rows:
        name = r["model"].replace("trained/", "") + (f" seed {r['seed']}" if "seed" in r else f" +{r['noise']:g}")
        for strategy, x in r["integration"].items():
            split.add_row(name, strategy, f"{x['bound']:.4f}", f"{x['delta_share']:.3f}", f"{x['charge_median']:.3g}",
                          f"{x['charge_max']:.3g}",
                          f"{x['margin_min']:.3g}", f"{x['margin_median']:.3g}")
    console.print(split)
    for r in rows:
        x = r["integration"]["integration/rank=0 (diagnostic)"]
        name = r["model"].replace("trained/", "") + (f" seed {r['seed']}" if "seed" in r else f" +{r['noise']:g}")
        console.print(f"{name}: remainder charged neuron by neuron against the exact |M(i, c*) - M(i, c)| of the worst wrong answer: "
                      f"median {x['pairwise_abs_charge_median']:.3g} (margin median {x['margin_median']:.3g})")
    report = {"p": args.p, "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "rows": rows}
    if args.json is not None:
        write_json_atomic(args.json, report)
        console.print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()

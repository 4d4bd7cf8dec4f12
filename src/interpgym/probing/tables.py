"""Rich tables of the probing results (shared by the CLI and the benchmarks)."""

from __future__ import annotations

import statistics

from rich.table import Table


def detection_table(result: dict, key: str = "auroc_ood") -> Table:
    """Concept x method table of `key` (mean pooling / max pooling), with a MEAN row over concepts."""
    rows = result["results"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    poolings = list(dict.fromkeys(r["pooling"] for r in rows))
    table = Table(title=f"{key} by method ({' / '.join(poolings)} pooling), layer {result['layer']}")
    table.add_column("concept")
    for m in methods:
        table.add_column(m, justify="right")
    for concept in dict.fromkeys(r["concept"] for r in rows):
        cells = [" / ".join(f"{r[key]:.3f}" for r in rows if r["concept"] == concept and r["method"] == m) for m in methods]
        table.add_row(concept, *cells)
    means = [" / ".join(f"{statistics.mean(r[key] for r in rows if r['method'] == m and r['pooling'] == p):.3f}" for p in poolings)
             for m in methods]
    table.add_row("MEAN", *means)
    return table


def steering_table(result: dict) -> Table:
    """Concept x method rows: alpha, harmonic mean [95% CI], and the three judge scores."""
    table = Table(title=f"steering (report half), layer {result['layer']}: harmonic mean [95% CI] and concept / instruction / fluency")
    for col in ("concept", "method", "alpha", "harmonic", "95% CI", "concept score", "instr.", "fluency"):
        table.add_column(col, justify="left" if col in ("concept", "method") else "right")
    for r in result["results"]:
        alpha = "-" if r["alpha"] is None else f"{r['alpha']:.1f}"
        table.add_row(r["concept"], r["method"], alpha, f"{r['harmonic']:.3f}", f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]",
                      f"{r['concept_score']:.2f}", f"{r['instruction_score']:.2f}", f"{r['fluency_score']:.2f}")
    return table

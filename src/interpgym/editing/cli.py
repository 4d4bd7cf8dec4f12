"""`interpgym edit ...`: facts, trace, run (knowledge editing on a real LM)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from interpgym.core.errors import UserError, require
from interpgym.core.jsonio import write_json_atomic
from interpgym.core.outputs import check_output_path

app = typer.Typer(no_args_is_help=True)
console = Console()

DEFAULT_LAYER = 2  # best NS of layers 2 and 4 in a 3-fact ROME trial on SmolLM2-135M (see docs/editing.md)
DEFAULT_WINDOW = (1, 2, 3)
MODEL_OPTION = typer.Option(None, "--model", help="HF-format dir, .gguf or cached HF name (default: packaged SmolLM2-135M-Instruct).")
DEVICE_OPTION = typer.Option(None, "--device", help="cpu, cuda, cuda:N or auto (default: $INTERPGYM_DEVICE, else cpu).")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, _fmt(value))
    return table


def _parse_layers(text: str | None, method: str) -> tuple[int, ...]:
    if text is None:
        return DEFAULT_WINDOW if method in ("memit", "alphaedit") else (DEFAULT_LAYER,)
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise UserError(f"--layers {text!r} is not a comma-separated list of integers (e.g. 3,4,5)") from None


def _load(model: str | None, device: str | None):
    from interpgym.core.device import resolve_device
    from interpgym.subjects.lm_loader import load_language_model

    return load_language_model(model, resolve_device(device))


@app.command()
def facts(
    model: str | None = MODEL_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seed of the counterfactual targets and neighbour choice."),
    out: Path | None = typer.Option(None, "--out", help="Also write the known facts as a fact file here."),
    device: str | None = DEVICE_OPTION,
    json_path: Path | None = typer.Option(None, "--json", help="Write relations, counts and datasheets here."),
) -> None:
    """Build the fact set: which seed facts the model knows, per relation, with datasheets."""
    from interpgym.editing.facts import build_fact_set

    check_output_path(json_path, "--json")
    check_output_path(out, "--out")
    fact_set = build_fact_set(_load(model, device), seed=seed)
    summary = fact_set.summary()
    table = Table(title=f"fact set of {fact_set.model}")
    for col in ("relation", "candidates", "known", "dropped (unknown)", "dropped (<5 neighbours)", "facts"):
        table.add_column(col, justify="left" if col == "relation" else "right")
    for name, sheet in fact_set.datasheets.items():
        table.add_row(name, *(str(sheet[k]) for k in ("candidates", "known", "dropped_unknown", "dropped_few_neighbours", "facts")))
    table.add_row("total", *(str(summary[k]) for k in ("candidates", "known", "dropped_unknown", "dropped_few_neighbours", "n_facts")))
    console.print(table)
    if out is not None:
        write_json_atomic(out, {"model": fact_set.model, "facts": [f.as_dict() for f in fact_set.facts]})
    if json_path is not None:
        write_json_atomic(json_path, summary)


@app.command()
def trace(
    n_facts: int = typer.Option(20, "--facts", help="Known facts to trace (averaged)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the AIE heatmaps (residual, MLP, attention) as PNG here."),
    samples: int = typer.Option(5, "--samples", help="Noise samples per fact."),
    window: int = typer.Option(5, "--window", help="Layers restored together for the MLP / attention traces."),
    model: str | None = MODEL_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seed of the fact set's targets, tracing noise and edit optimisation."),
    device: str | None = DEVICE_OPTION,
    json_path: Path | None = typer.Option(None, "--json", help="Write the average indirect effects here."),
) -> None:
    """Causal tracing (ROME's): average indirect effect of restoring each (layer, position)."""
    from interpgym.editing.facts import build_fact_set, select_facts
    from interpgym.editing.tracing import TraceConfig, average_traces, plot_traces

    check_output_path(json_path, "--json")
    check_output_path(plot, "--plot")
    require(samples >= 1 and window >= 1, "--samples and --window must be >= 1")
    lm = _load(model, device)
    fact_set = build_fact_set(lm, seed=seed)
    chosen = select_facts(fact_set.facts, n_facts, seed)
    result = average_traces(lm, chosen, TraceConfig(samples=samples, window=window, seed=seed))
    best = result["best_layer"]
    console.print(_table(f"causal tracing over {len(chosen)} facts", {
        "noise std": result["noise_std"], "p(true) clean": result["p_clean"], "p(true) corrupted": result["p_corrupted"],
        "peak MLP AIE (subject last) at layer": best["mlp"], "peak residual AIE (subject last) at layer": best["residual"],
        "peak attention AIE (last token) at layer": best["attention"]}))
    if plot is not None:
        plot_traces(result, plot)
    if json_path is not None:
        write_json_atomic(json_path, {"model": lm.identity, **result})


@app.command()
def run(
    method: str = typer.Option("rome", "--method", help="rome | memit | alphaedit | ft | none"),
    n_facts: int = typer.Option(10, "--facts", help="Facts to edit."),
    sequential: bool = typer.Option(False, "--sequential", help="Edit one after another without restoring; curve at 1/10/100/1000."),
    layers: str | None = typer.Option(
        None,
        "--layers",
        help=f"Comma-separated blocks (default rome/ft {DEFAULT_LAYER}; memit/alphaedit {','.join(map(str, DEFAULT_WINDOW))}).",
    ),
    fact_file: Path | None = typer.Option(
        None, "--fact-file", help="Edit these facts (JSON, as `edit facts --out` writes) instead of the built set."
    ),
    retention_facts: int = typer.Option(20, "--retention", help="Unedited known facts checked for retention."),
    cov_tokens: int = typer.Option(100_000, "--cov-tokens", help="Corpus tokens for the key covariance."),
    generation: bool = typer.Option(True, "--generation/--no-generation", help="Score generation efficacy and entropy (slow part)."),
    model: str | None = MODEL_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seed of the fact set's targets, tracing noise and edit optimisation."),
    device: str | None = DEVICE_OPTION,
    plot: Path | None = typer.Option(None, "--plot", help="With --sequential: plot S and retention vs edits as PNG here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write model, method, n_edits, metrics, curve here."),
) -> None:
    """Edit facts with one method and score them (CounterFact metrics, generation efficacy, retention)."""
    from interpgym.editing.facts import build_fact_set, load_fact_file, select_facts
    from interpgym.editing.methods import METHODS, EditConfig
    from interpgym.editing.metrics import METRIC_KEYS, EvalConfig
    from interpgym.editing.runner import run_edits

    check_output_path(json_path, "--json")
    check_output_path(plot, "--plot")
    require(plot is None or sequential, "--plot draws the sequential curve: add --sequential")
    require(method in METHODS, f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    require(retention_facts >= 0, "--retention must be >= 0")
    config = EditConfig(method=method, layers=_parse_layers(layers, method), cov_tokens=cov_tokens)
    custom = load_fact_file(fact_file) if fact_file is not None else None
    lm = _load(model, device)
    config.validate(lm.n_layers)
    needs_set = custom is None or retention_facts > 0
    known = build_fact_set(lm, seed=seed).facts if needs_set else []
    if custom is not None:
        require(n_facts <= len(custom), f"--facts {n_facts} but {fact_file} holds {len(custom)} facts")
        edits = custom[:n_facts]
        edited = {f.case_id for f in edits}
        keep = [f for f in select_facts(known, len(known), seed) if f.case_id not in edited][:retention_facts] if known else []
    else:
        require(
            n_facts + retention_facts <= len(known),
            f"--facts {n_facts} + --retention {retention_facts} exceed the {len(known)} known facts",
        )
        edits = select_facts(known, n_facts, seed)
        keep = select_facts(known, retention_facts, seed, offset=n_facts) if retention_facts else []
    result = run_edits(lm, edits, keep, config, EvalConfig(generation=generation), sequential=sequential)
    out = {"model": lm.identity, **result}
    console.print(_table(f"{method} on {len(edits)} facts (layers {list(config.layers)}){' sequential' if sequential else ''}",
                         {k: out["metrics"][k] for k in (*METRIC_KEYS, "dw_ratio")} | {"edit s (mean)": out["timing"]["edit_s_mean"]}))
    if out["curve"]:
        curve = Table(title="sequential curve")
        for col in ("n_edits", "s", "es", "ps", "ns", "retention", "ppl_change"):
            curve.add_column(col, justify="right")
        for point in out["curve"]:
            curve.add_row(*(_fmt(point[c]) for c in ("n_edits", "s", "es", "ps", "ns", "retention", "ppl_change")))
        console.print(curve)
    if plot is not None:
        from interpgym.editing.plots import plot_curves

        plot_curves({method: out["curve"]}, plot, title=f"sequential {method} on {lm.identity.split(':')[0]}")
    if json_path is not None:
        write_json_atomic(json_path, out)

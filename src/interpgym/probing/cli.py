"""`interpgym probe ...`: concepts (datasheets), detect (the detection table), steer (the steering table)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.core.outputs import check_output_file

app = typer.Typer(no_args_is_help=True)
console = Console()


@contextmanager
def progress_bar(description: str, total: int | None = None):  # noqa: ANN201
    """A transient rich progress bar on stderr; yields `advance(n)`."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _load_lm(model: str | None, device: str | None):  # noqa: ANN202
    from interpgym.core.device import resolve_device
    from interpgym.subjects.lm_loader import load_language_model

    return load_language_model(model, device=resolve_device(device))


@app.command()
def concepts(
    json_path: Path | None = typer.Option(None, "--json", help="Write the datasheets as JSON here."),
    seed: int = typer.Option(0, "--seed", help="Seed of the dataset derivation."),
) -> None:
    """List the concept datasets: splits, counts, hard negatives, and MiniLM label-quality AUROC."""
    from interpgym.probing.concepts import concept_names, load_concept
    from interpgym.probing.label_quality import label_quality

    check_output_file(json_path)
    sheets = []
    names = concept_names()
    with progress_bar("datasheets", len(names)) as advance:
        for name in names:
            concept = load_concept(name, seed)
            sheet = concept.datasheet()
            sheet["label_quality"] = label_quality(concept, seed)
            sheets.append(sheet)
            advance()
    table = Table(title="concept datasets (pos/neg, hard negatives in brackets)")
    for col in ("concept", "train", "test", "ood", "MiniLM AUROC test", "MiniLM AUROC ood"):
        table.add_column(col, justify="left" if col == "concept" else "right")
    for s in sheets:
        cells = [f"{c['pos']}/{c['neg']} ({c['hard_neg']})" for c in (s["counts"][k] for k in ("train", "test", "ood"))]
        table.add_row(s["concept"], *cells, f"{s['label_quality']['auroc_test']:.3f}", f"{s['label_quality']['auroc_ood']:.3f}")
    console.print(table)
    if json_path:
        write_json_atomic(json_path, {"seed": seed, "concepts": sheets})


def _detect_table(result: dict) -> Table:
    rows = result["results"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    table = Table(title=f"OOD AUROC (mean pooling / max pooling), layer {result['layer']}")
    table.add_column("concept")
    for m in methods:
        table.add_column(m, justify="right")
    for concept in dict.fromkeys(r["concept"] for r in rows):
        cells = []
        for m in methods:
            vals = {r["pooling"]: r["auroc_ood"] for r in rows if r["concept"] == concept and r["method"] == m}
            cells.append(" / ".join(f"{vals[p]:.3f}" for p in vals))
        table.add_row(concept, *cells)
    return table


@app.command()
def detect(
    concepts_spec: str = typer.Option("all", "--concepts", help="all | comma-separated concept names."),
    methods_spec: str = typer.Option("all", "--methods", help="all | comma-separated: diff_means, logistic, pca, sae_latent, sae_ksparse, random."),
    layer: int | None = typer.Option(None, "--layer", help="Residual-stream layer (input of block L); default n_layers // 2."),
    model: str | None = typer.Option(None, "--model", help="HF model name or local path (default: packaged SmolLM2-135M-Instruct)."),
    seed: int = typer.Option(0, "--seed", help="Seed of datasets, probes, SAE and bootstrap."),
    sae_steps: int = typer.Option(2000, "--sae-steps", help="Training steps of the SAE used by the SAE methods."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda | auto."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a concept x method heat map (PNG) here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the results as JSON here."),
) -> None:
    """Fit every detection method on train activations; AUROC on held-out ID and OOD texts."""
    from interpgym.probing.concepts import parse_concepts
    from interpgym.probing.detect import DetectConfig, run_detection
    from interpgym.probing.methods import parse_methods

    names, methods = parse_concepts(concepts_spec), parse_methods(methods_spec)
    if sae_steps < 1:
        raise UserError(f"--sae-steps must be >= 1 (got {sae_steps})")
    check_output_file(json_path)
    check_output_file(plot, "--plot")
    lm = _load_lm(model, device)
    cfg = DetectConfig(concepts=tuple(names), methods=tuple(methods), layer=lm.n_layers // 2 if layer is None else layer,
                       seed=seed, sae_steps=sae_steps)
    with progress_bar("activations (texts)") as advance:
        result = run_detection(lm, cfg, progress=advance)
    console.print(_detect_table(result))
    if plot:
        from interpgym.probing.plots import detection_heatmap

        detection_heatmap(result, plot)
    if json_path:
        write_json_atomic(json_path, result)

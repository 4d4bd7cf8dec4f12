"""`interpgym probe ...`: concepts (datasheets), detect (the detection table), steer (the steering table)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.core.outputs import check_output_path
from interpgym.core.progress import progress_bar as core_progress_bar
from interpgym.probing.tables import detection_table, steering_table

app = typer.Typer(no_args_is_help=True)
console = Console()


@contextmanager
def progress_bar(description: str, total: int | None = None):
    """A transient progress bar on stderr (`core.progress`); yields `advance(n)`."""
    with core_progress_bar(transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _load_lm(model: str | None, device: str | None):
    from interpgym.core.device import resolve_device
    from interpgym.subjects.lm_loader import load_language_model

    return load_language_model(model, device=resolve_device(device))


@app.command()
def concepts(
    concepts_spec: str = typer.Option("all", "--concepts", help="all | comma-separated concept names."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the datasheets as JSON here."),
    seed: int = typer.Option(0, "--seed", help="Seed of the dataset derivation."),
) -> None:
    """List the concept datasets: splits, counts, hard negatives, and MiniLM label-quality AUROC."""
    from interpgym.probing.concepts import load_concept, parse_concepts
    from interpgym.probing.label_quality import label_quality

    names = parse_concepts(concepts_spec)
    check_output_path(json_path, "--json")
    sheets = []
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


@app.command()
def detect(
    concepts_spec: str = typer.Option("all", "--concepts", help="all | comma-separated concept names."),
    methods_spec: str = typer.Option(
        "all", "--methods", help="all | comma-separated: diff_means, logistic, pca, sae_latent, sae_ksparse, random."
    ),
    layer: int | None = typer.Option(None, "--layer", help="Residual-stream layer (input of block L); default n_layers // 2."),
    model: str | None = typer.Option(None, "--model", help="HF model name or local path (default: packaged SmolLM2-135M-Instruct)."),
    seed: int = typer.Option(0, "--seed", help="Seed of datasets, probes, SAE and bootstrap."),
    sae_steps: int = typer.Option(1000, "--sae-steps", help="Training steps of the SAE used by the SAE methods."),
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
    check_output_path(json_path, "--json")
    check_output_path(plot, "--plot")
    lm = _load_lm(model, device)
    cfg = DetectConfig(concepts=tuple(names), methods=tuple(methods), layer=lm.n_layers // 2 if layer is None else layer,
                       seed=seed, sae_steps=sae_steps)
    with progress_bar("activations (texts)") as advance:
        result = run_detection(lm, cfg, progress=advance)
    console.print(detection_table(result))
    if plot:
        from interpgym.probing.plots import detection_heatmap

        detection_heatmap(result, plot)
    if json_path:
        write_json_atomic(json_path, result)


@app.command()
def steer(
    concepts_spec: str = typer.Option("all", "--concepts", help="all | comma-separated concept names."),
    methods_spec: str = typer.Option(
        "diff_means,prompting,none", "--methods", help="all | comma-separated detection methods plus prompting, none."
    ),
    judge: str = typer.Option("offline", "--judge", help="offline | llm (llm also runs offline and reports their Spearman agreement)."),
    judge_model: str = typer.Option("gpt-4o-mini", "--judge-model", help="Model name for --judge llm (OPENAI_BASE_URL / OPENAI_API_KEY)."),
    layer: int | None = typer.Option(None, "--layer", help="Residual-stream layer (input of block L); default n_layers // 2."),
    model: str | None = typer.Option(None, "--model", help="HF model name or local path (default: packaged SmolLM2-135M-Instruct)."),
    instructions: int = typer.Option(8, "--instructions", help="Held-out instructions per half (alpha selection / report)."),
    max_new_tokens: int = typer.Option(24, "--max-new-tokens", help="Tokens generated per response."),
    seed: int = typer.Option(0, "--seed", help="Seed of datasets, directions, instruction halves and bootstrap."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda | auto."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a concept x method heat map (PNG) of the harmonic mean here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the results as JSON here."),
) -> None:
    """Steer generation with each method's direction (alpha chosen on half the instructions) and judge the other half."""
    from interpgym.probing.concepts import parse_concepts
    from interpgym.probing.steer_eval import SteerConfig, parse_steer_methods, run_steering

    names, methods = parse_concepts(concepts_spec), parse_steer_methods(methods_spec)
    if judge not in ("offline", "llm"):
        raise UserError(f"unknown --judge {judge!r}: use offline or llm")
    if max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be >= 1 (got {max_new_tokens})")
    check_output_path(json_path, "--json")
    check_output_path(plot, "--plot")
    llm = None
    if judge == "llm":
        from interpgym.probing.llm_judge import LLMJudge

        llm = LLMJudge(judge_model)  # fails now, before any generation, if the endpoint does not answer
    lm = _load_lm(model, device)
    from interpgym.probing.activations import check_layer

    layer = lm.n_layers // 2 if layer is None else check_layer(lm.model, layer)
    cfg = SteerConfig(concepts=tuple(names), methods=tuple(methods), layer=layer, seed=seed, n_instructions=instructions,
                      max_new_tokens=max_new_tokens)
    from interpgym.probing.steer_eval import instruction_halves

    instruction_halves(instructions, seed)  # validate before any work
    with progress_bar("steering (texts / generations)") as advance:
        result = run_steering(lm, cfg, progress=advance)
    if llm is not None:
        from interpgym.probing.llm_judge import add_llm_scores

        result = add_llm_scores(result, llm)
    console.print(steering_table(result))
    if plot:
        from interpgym.probing.plots import heatmap

        heatmap(result["results"], "harmonic", f"steering harmonic mean (0..2), layer {layer}", plot)
    if json_path:
        write_json_atomic(json_path, result)

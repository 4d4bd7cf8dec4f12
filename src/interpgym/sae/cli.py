"""`interpgym sae ...` commands: train, eval, sweep, archs.

Every output path is checked (`core.outputs.check_output_path`) before any work, and
heavy libraries are imported inside the commands so that `--help` and bad input answer fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.core.outputs import check_output_path

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=False)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, _fmt(value))
    return table


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="Directory to write (SAELens format + interpgym_sae.json)."),
    subject: str = typer.Option("toy", "--subject", help="Activations to train on: toy | digits | smollm2."),
    arch: str = typer.Option("topk", "--arch", help="Architecture (see `interpgym sae archs`)."),
    width: int | None = typer.Option(None, "--width", help="Latents (default: toy = 2 x its true feature count, else 8 x d_in)."),
    k: int | None = typer.Option(None, "--k", help="Active latents per input for topk / batchtopk / matryoshka."),
    l1: float | None = typer.Option(None, "--l1", help="Sparsity coefficient for relu (L1) / jumprelu (L0) / gated (L1)."),
    steps: int = typer.Option(3000, "--steps", help="Training steps."),
    batch_size: int = typer.Option(1024, "--batch-size", help="Inputs per step."),
    lr: float | None = typer.Option(
        None, "--lr", help="Adam learning rate (default: the subject's, else 2e-4 * sqrt(16384 / width) capped at 1e-3)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the subject and of training."),
    layer: int | None = typer.Option(None, "--layer", help="smollm2 only: residual-stream layer."),
    model: str | None = typer.Option(None, "--model", help="smollm2 only: HF model name or local path."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda | auto (default $INTERPGYM_DEVICE or cpu)."),
    checkpoint_dir: Path | None = typer.Option(None, "--checkpoint-dir", help="Resume from / checkpoint into this directory."),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every", help="Checkpoint every N steps (0: never)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out directory."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the training summary as JSON here."),
) -> None:
    """Train one SAE on a subject's train split and save it in the SAELens format.

    Takes about 1-3 minutes for toy at the defaults on a 2-core CPU (3000 steps of 1024).
    smollm2 first collects its activations once (about 10 CPU minutes, 24 wall minutes
    measured on a loaded machine) and trains far longer (docs/sae_subjects.md). Progress on stderr.
    """
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists: choose another --out or pass --overwrite")
    check_output_path(out, "--out", directory=True)
    check_output_path(json_path, "--json")
    check_output_path(checkpoint_dir, "--checkpoint-dir", directory=True)
    from interpgym.sae.runs import SubjectSpec, check_sparsity_options, sae_config_for, train_config_for, train_on_subject
    from interpgym.sae.storage import save_sae

    check_sparsity_options(arch, k, l1)
    spec = SubjectSpec(name=subject, seed=seed, layer=layer, model=model)
    source = spec.load()
    sae_cfg = sae_config_for(source, arch, width, k, l1)
    sae_cfg.validate()
    train_cfg = train_config_for(source, lr=lr, steps=steps, batch_size=batch_size, seed=seed, checkpoint_every=checkpoint_every)
    result, meta = train_on_subject(
        source, spec, sae_cfg, train_cfg, device=device, checkpoint_dir=checkpoint_dir, progress=True, description=f"training {arch}"
    )
    save_sae(out, result.sae, meta, hook_name=source.hook_name, model_name=source.model_name, overwrite=overwrite)
    last = result.log[-1] if result.log else {}
    summary = {
        "out": str(out),
        "subject": spec.to_dict(),
        "arch": arch,
        "width": sae_cfg.d_sae,
        "k": result.sae.k,
        "sparsity_coeff": result.sae.sparsity_coeff if result.sae.uses_sparsity_coeff else None,
        "steps": steps,
        "train_seconds": result.wall_seconds,
        "inputs_per_second": result.inputs_per_second,
        "final_train_loss": last.get("loss"),
        "final_train_l0": last.get("l0"),
        "train_dead_frac": result.train_dead_frac,
    }
    console.print(
        _metrics_table(
            f"trained {arch} on {subject} -> {out}", {k: v for k, v in summary.items() if isinstance(v, (int, float)) and v is not None}
        )
    )
    if json_path is not None:
        write_json_atomic(json_path, summary)


@app.command("eval")
def evaluate(
    directory: Path = typer.Argument(..., help="An SAE directory written by `interpgym sae train`."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the metrics as JSON here."),
    subject: str | None = typer.Option(
        None, "--subject", help="The subject, for SAELens dirs without interpgym metadata (must match the recorded one otherwise)."
    ),
    layer: int | None = typer.Option(None, "--layer", help="smollm2 only: residual-stream layer (default: the recorded one)."),
    split: str = typer.Option("test", "--split", help="Held-out split: test | val."),
    seed: int | None = typer.Option(None, "--seed", help="Subject seed (default: the one it was trained with)."),
) -> None:
    """Evaluate an SAE on held-out activations of its subject: every applicable metric."""
    if split not in ("test", "val"):
        raise UserError(f"--split must be test or val (got {split!r}); the train split is not held out")
    check_output_path(json_path, "--json")
    from interpgym.sae.evaluate import evaluate_sae
    from interpgym.sae.runs import SubjectSpec
    from interpgym.sae.storage import load_sae

    loaded = load_sae(directory)
    saved = loaded.meta.get("subject") or {}
    recorded = saved.get("name")
    if subject is not None and recorded is not None and subject != recorded:
        raise UserError(
            f"{directory} was trained on the {recorded} subject; its latents mean nothing on {subject}: "
            f"drop --subject (or pass --subject {recorded})"
        )
    name = subject or recorded
    if name is None:
        raise UserError(f"{directory} has no interpgym metadata naming its subject: pass --subject")
    same_subject = name == saved.get("name")
    spec = SubjectSpec(
        name=name,
        seed=seed if seed is not None else (int(saved.get("seed", 0)) if same_subject else 0),
        layer=layer if layer is not None else (saved.get("layer") if same_subject else None),
        model=saved.get("model") if same_subject else None,
    )
    source = spec.load()
    report = evaluate_sae(loaded.sae, source, split=split)  # type: ignore[arg-type]
    result = {
        "subject": spec.name,
        "arch": loaded.sae.arch,
        "width": loaded.sae.d_sae,
        "eval_inputs": report.eval_inputs,
        "split": split,
        "metrics": report.metrics,
        "details": report.details,
        "seconds": report.seconds,
    }
    console.print(
        _metrics_table(f"{loaded.sae.arch} (width {loaded.sae.d_sae}) on {spec.name}/{split}: {report.eval_inputs} inputs", report.metrics)
    )
    if json_path is not None:
        write_json_atomic(json_path, result)


@app.command()
def sweep(
    json_path: Path = typer.Option(..., "--json", help="Write every point and the frontiers as JSON here."),
    subject: str = typer.Option("toy", "--subject", help="Activations to train on: toy | digits | smollm2."),
    archs: str = typer.Option("all", "--archs", help="'all' or comma-separated architectures."),
    points: int = typer.Option(5, "--points", help="Sparsity settings per architecture (1 to 5)."),
    steps: int = typer.Option(3000, "--steps", help="Training steps per SAE."),
    batch_size: int = typer.Option(1024, "--batch-size", help="Inputs per step."),
    width: int | None = typer.Option(None, "--width", help="Latents (default as in train)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subject and of training."),
    layer: int | None = typer.Option(None, "--layer", help="smollm2 only: residual-stream layer."),
    lr: float | None = typer.Option(None, "--lr", help="Adam learning rate (default as in train)."),
    plot: Path | None = typer.Option(None, "--plot", help="PNG of L0 vs FVU (and MCC on toy) with frontiers."),
) -> None:
    """Sparsity sweep per architecture; trained SAEs are cached, so re-running is cheap.

    Long: every point trains one SAE. All 6 architectures x 5 points on toy at the
    defaults (30 SAEs) took about 40 minutes on a loaded 2-core CPU. Progress on stderr.
    """
    from interpgym.sae.sweep import check_points, parse_archs, plot_sweep, run_sweep

    check_output_path(json_path, "--json")
    check_output_path(plot, "--plot")
    check_points(points)
    from interpgym.sae.runs import SubjectSpec

    names = parse_archs(archs)
    result = run_sweep(
        SubjectSpec(name=subject, seed=seed, layer=layer), names, points=points, width=width, steps=steps, batch_size=batch_size, lr=lr
    )
    table = Table(title=f"sweep on {subject} ({result['runs'][0]['eval_inputs'] if result['runs'] else 0} held-out inputs)")
    has_mcc = any("mcc" in run["metrics"] for run in result["runs"])
    for column in ("arch", "k / coeff", "l0", "fvu", *(["mcc"] if has_mcc else []), "dead_frac", "frontier"):
        table.add_column(column)
    for run in result["runs"]:
        m = run["metrics"]
        setting = f"k={run['k']}" if run["k"] is not None else f"{run['sparsity_coeff']:.3g}"
        table.add_row(
            run["arch"],
            setting,
            _fmt(m["l0"]),
            _fmt(m["fvu"]),
            *([_fmt(m.get("mcc"))] if has_mcc else []),
            _fmt(m["dead_frac"]),
            "*" if run["on_frontier"] else "",
        )
    console.print(table)
    if plot is not None:
        plot_sweep(result, plot)
    write_json_atomic(json_path, result)


@app.command()
def archs(json_path: Path | None = typer.Option(None, "--json", help="Write the list as JSON here.")) -> None:
    """List the registered SAE architectures and how each is saved in the SAELens format."""
    from interpgym.sae.architectures import ARCHITECTURES

    check_output_path(json_path, "--json")
    rows = [
        {
            "arch": name,
            "saelens_architecture": cls.saelens_architecture,
            "sparsity": "k" if cls.uses_k else "coefficient",
            "default": cls.default_k if cls.uses_k else cls.default_sparsity_coeff,
            "unit_norm_decoder": cls.unit_norm_decoder,
            "doc": (sys.modules[cls.__module__].__doc__ or cls.__name__).strip().splitlines()[0],
        }
        for name, cls in sorted(ARCHITECTURES.items())
    ]
    table = Table(title="SAE architectures")
    for column in ("arch", "saelens_architecture", "sparsity", "default", "doc"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(_fmt(row[c]) for c in ("arch", "saelens_architecture", "sparsity", "default", "doc")))
    console.print(table)
    if json_path is not None:
        write_json_atomic(json_path, {"architectures": rows})

"""`interpgym proofs ...` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.core.outputs import check_output_path

app = typer.Typer(no_args_is_help=True)


# width of the table without the strategy column: five numeric columns and the borders
_NUMERIC_COLUMNS_WIDTH = 62


def wrap_at_slashes(name: str, width: int) -> str:
    """`name` broken into lines of at most `width` characters after its `/` separators
    (a segment longer than `width` keeps its own line and is folded by rich), so a long
    `subcubic/eqke=../direct=../attn=..` name wraps between its parts, not inside one."""
    lines: list[str] = []
    for segment in name.replace("/", "/\0").split("\0"):
        if lines and len(lines[-1]) + len(segment) <= width:
            lines[-1] += segment
        else:
            lines.append(segment)
    return "\n".join(lines)


def results_table(report: dict[str, Any], width: int = 100, title: str | None = None) -> Table:
    """Rich table of the final model's results for a `width`-column console (the long
    complexity strings are in the JSON only); strategy names wrap between their parts.
    `title` defaults to the max-of-K model's description."""
    name_width = max(20, width - _NUMERIC_COLUMNS_WIDTH)
    m = report["model"]
    if title is None:
        title = (f"max-of-{m['k']} proofs (v={m['vocab']}, d_model={m['d_model']}, seed={m['seed']}): "
                 f"exact accuracy {report['exact_accuracy']:.6f}")
    table = Table(title=title)
    table.add_column("strategy", overflow="fold", ratio=3)
    for column in ("bound", "normalised", "FLOPs", "wall s", "unexpl. dim"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in report["results"]:
        table.add_row(wrap_at_slashes(r["strategy"], name_width), f"{r['bound']:.6f}", f"{r['normalized']:.4f}", f"{r['flops']:.3g}",
                      f"{r['wall_s']:.3f}", f"{r['unexplained_dim']:.3g}")
    return table


def checkpoints_table(report: dict[str, Any]) -> Table:
    """Rich table of bound vs training step (one column per strategy)."""
    stages = report["checkpoints"]
    names = [r["strategy"] for r in stages[0]["results"]] if stages else []
    table = Table(title="bounds during training")
    table.add_column("step", justify="right")
    table.add_column("exact", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for stage in stages:
        table.add_row(str(stage["step"]), f"{stage['exact_accuracy']:.4f}", *(f"{r['bound']:.4f}" for r in stage["results"]))
    return table


def run_maxk_proofs(
    seed: int = 0,
    vocab: int = 64,
    k: int = 4,
    d_model: int = 32,
    steps: int = 3000,
    strategies: str = "all",
    checkpoints: bool = False,
    plot: Optional[Path] = None,
    json_path: Optional[Path] = None,
    console: Optional[Console] = None,
    progress: bool = True,
    theorem: str = "accuracy",
    heads: int = 1,
    stride: int = 1,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train/load a max-of-K model, run the proofs, print tables, write the JSON (and PNG). Returns the JSON."""
    check_output_path(json_path, "--json")
    check_output_path(plot, "--plot")
    # Heavy imports after the checks: `--help` and bad paths answer fast.
    from interpgym.proofs.cli_theorems import check_theorem, run_maxk_heads_proofs, run_maxk_loss_proofs, write_outputs
    from interpgym.proofs.runner import maxk_report
    from interpgym.subjects.maxk import MaxKConfig
    from interpgym.subjects.maxk_heads import MaxKHeadsConfig

    console = console or Console()

    check_theorem(theorem)
    if stride < 1 or (stride != 1 and not checkpoints):
        raise UserError(f"--stride {stride}: must be >= 1, and only applies with --checkpoints")
    if jobs < 1 or (jobs != 1 and not checkpoints):
        raise UserError(f"--jobs {jobs}: must be >= 1, and only applies with --checkpoints")
    if heads != 1:
        if theorem != "accuracy" or heads < 2 or d_model % heads:
            raise UserError(f"--heads {heads}: heads must be >= 1, divide --d-model ({d_model}), and take --theorem accuracy when > 1")
        heads_config = MaxKHeadsConfig(vocab=vocab, k=k, d_model=d_model, d_head=d_model // heads, n_heads=heads, seed=seed, steps=steps)
        return run_maxk_heads_proofs(heads_config, strategies, checkpoints, plot, json_path, console, progress, stride, jobs)
    config = MaxKConfig(vocab=vocab, k=k, d_model=d_model, d_head=d_model, seed=seed, steps=steps)
    if theorem == "loss":
        return run_maxk_loss_proofs(config, strategies, checkpoints, plot, json_path, console, progress, stride, jobs)
    report = maxk_report(config, strategies, checkpoints=checkpoints, stride=stride, jobs=jobs, progress=progress)
    console.print(results_table(report, console.width))
    if checkpoints:
        console.print(checkpoints_table(report))
    write_outputs(report, plot, json_path, console)
    return report


@app.command("maxk")
def maxk(
    seed: int = typer.Option(0, "--seed", help="Training seed of the model."),
    vocab: int = typer.Option(64, "--vocab", help="Vocabulary size v (>= 2)."),
    k: int = typer.Option(4, "--k", help="Sequence length K (>= 1)."),
    d_model: int = typer.Option(32, "--d-model", help="Residual width (d_head = d_model)."),
    steps: int = typer.Option(3000, "--steps", help="Training steps."),
    strategies: str = typer.Option(
        "all", "--strategies", help="'all' or a comma list: brute-force, cubic, subcubic/<variant> (loss also hybrid/cubic+brute/x>-3|6)."
    ),
    checkpoints: bool = typer.Option(
        False,
        "--checkpoints",
        help="Also prove the saved checkpoints (bound vs step): all strategies on the default model take ~5 CPU min (see --jobs).",
    ),
    stride: int = typer.Option(1, "--stride", help="With --checkpoints: prove every N-th saved checkpoint (first and last always)."),
    jobs: int = typer.Option(
        1, "--jobs", help="With --checkpoints: prove checkpoints in N worker processes (the same numbers as 1 process)."
    ),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Write the FLOPs vs normalised bound PNG here (with --checkpoints also <name>-training.png: bound vs step)."
    ),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results JSON here."),
    theorem: str = typer.Option("accuracy", "--theorem", help="accuracy (lower bound) or loss (upper bound on expected cross-entropy)."),
    heads: int = typer.Option(1, "--heads", help="Attention heads (d_head = d_model / heads); >= 2 runs the multi-head proofs."),
) -> None:
    """Certified accuracy (or loss) bounds for a max-of-K transformer, per proof strategy, with their cost.

    The first run trains the model (cached afterwards); --checkpoints proves every saved
    checkpoint too (--stride N: every N-th). Progress on stderr.
    """
    run_maxk_proofs(seed=seed, vocab=vocab, k=k, d_model=d_model, steps=steps, strategies=strategies,
                    checkpoints=checkpoints, plot=plot, json_path=json_path, theorem=theorem, heads=heads, stride=stride, jobs=jobs)


@app.command("modadd")
def modadd(
    p: int = typer.Option(59, "--p", help="Modulus p (>= 2): the model adds a + b mod p."),
    seed: int = typer.Option(0, "--seed", help="Training seed of the model."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (default: the recipe's)."),
    attention: str = typer.Option(
        "uniform",
        "--attention",
        help="uniform (constant attention: the 'pizza' model the proof's paper studies) or learned (the grokking model).",
    ),
    strategies: str = typer.Option(
        "all", "--strategies", help="'all' or a comma list: brute-force, quadrature, readout/rank=4|8|16|32, integration/rank=8|12."
    ),
    checkpoints: bool = typer.Option(False, "--checkpoints", help="Also prove every saved checkpoint (bound vs step)."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Write the FLOPs vs normalised bound PNG here (with --checkpoints also <name>-training.png)."
    ),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results JSON here."),
) -> None:
    """Certified accuracy bounds for the one-layer modular-addition transformer: brute force over all
    p^2 inputs and structured proofs of its MLP (the numerical-integration quadrature; exact neurons
    with a low-rank readout), with their cost.

    The first run trains the model (3000 steps; 12 minutes measured on a heavily loaded 2-core CPU at
    p=59; cached afterwards).
    """
    from interpgym.proofs.cli_modadd import run_modadd_proofs

    run_modadd_proofs(p=p, seed=seed, steps=steps, attention=attention, strategies=strategies, checkpoints=checkpoints,
                      plot=plot, json_path=json_path)


# `proofs check` / `proofs export` (the proof language) live in their own module.
from interpgym.proofs.lang.cli import register as _register_language_commands  # noqa: E402

_register_language_commands(app)

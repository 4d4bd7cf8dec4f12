"""`interpgym proofs check` and `interpgym proofs export`: the proof language on the command line.

`register(app)` adds both commands to the `proofs` typer app (kept apart from
`proofs/cli.py` so the two command sets evolve independently).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.core.outputs import check_output_path

if TYPE_CHECKING:
    from interpgym.subjects.maxk import MaxKWeights


def _check_output(path: Path) -> None:
    check_output_path(path, "--json")


def model_weights(
    seed: Optional[int], weights: Optional[Path], vocab: int, k: int, d_model: int, steps: int
) -> tuple[MaxKWeights, dict[str, Any]]:
    """The weights to check against: a safetensors file, or the max-of-K model trained from `seed` (cached)."""
    from interpgym.subjects.maxk import MaxKConfig, load_weights, train_maxk  # heavy: imported when a command runs

    if weights is not None and seed is not None:
        raise UserError("pass either --seed or --weights, not both")
    if weights is not None:
        return load_weights(weights), {"weights": str(weights)}
    config = MaxKConfig(vocab=vocab, k=k, d_model=d_model, d_head=d_model, seed=seed or 0, steps=steps)
    config.validate()
    model = train_maxk(config, progress=True)
    return model.weights, {"seed": config.seed, "vocab": vocab, "k": k, "d_model": d_model, "train_steps": steps,
                           "weights": str(model.weights_path)}


def run_check(program_path: Path, weights: MaxKWeights, model: dict[str, Any], json_path: Optional[Path],
              audit: bool = False, console: Optional[Console] = None) -> dict[str, Any]:
    """Check a program file on `weights`, print the verdict, write the JSON. `ProgramError` (exit 2) if rejected."""
    console = console or Console()
    if json_path is not None:
        _check_output(json_path)
    from interpgym.proofs.lang.kernel import check_program, load_program

    raw = load_program(program_path)
    result = check_program(raw, weights)
    report: dict[str, Any] = {
        "program": str(program_path), "model": model, "accepted": True, "bound": result.bound,
        "certified": result.certified, "total": result.total, "flops": result.flops, "wall_s": result.wall_s,
        "unexplained_dim": result.unexplained_dim, "steps_run": result.steps_run,
    }
    if audit:
        from interpgym.proofs.brute_force import brute_force
        from interpgym.proofs.runner import audit as audit_against

        exact = brute_force(weights)
        audit_against(result.as_proof_result(str(program_path)), exact.correct, weights.vocab, weights.k)
        report["exact_accuracy"] = exact.bound
    table = Table(title=f"proof program {program_path.name}: accepted")
    for column in ("bound", "certified", "FLOPs", "unexpl. dim", "wall s"):
        table.add_column(column, justify="right")
    table.add_row(f"{result.bound:.6f}", f"{result.certified:,}/{result.total:,}", f"{result.flops:.4g}",
                  f"{result.unexplained_dim:.4g}", f"{result.wall_s:.3f}")
    console.print(table)
    if audit:
        console.print(f"audited against brute force: sound (exact accuracy {report['exact_accuracy']:.6f})")
    if json_path is not None:
        try:
            write_json_atomic(json_path, report)
        except OSError as exc:
            raise UserError(f"cannot write {json_path}: {exc}") from exc
        console.print(f"JSON: {json_path}")
    return report


def check(
    program: Path = typer.Argument(..., help="The proof program (JSON, see docs/proof_language.md)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Check against the max-of-K model trained from this seed."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Check against these weights (safetensors)."),
    vocab: int = typer.Option(64, "--vocab", help="Vocabulary size of the --seed model."),
    k: int = typer.Option(4, "--k", help="Sequence length of the --seed model."),
    d_model: int = typer.Option(32, "--d-model", help="Residual width of the --seed model."),
    steps: int = typer.Option(3000, "--steps", help="Training steps of the --seed model."),
    audit: bool = typer.Option(False, "--audit", help="Also run brute force and check every certified input."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the verdict JSON here."),
) -> None:
    """Check a proof program with the trusted kernel: certified bound, FLOPs, unexplained dimension."""
    if json_path is not None:
        _check_output(json_path)
    w, model = model_weights(seed, weights, vocab, k, d_model, steps)
    run_check(program, w, model, json_path, audit=audit)


def export(
    strategy: str = typer.Argument(..., help="A registered strategy: cubic or subcubic/eqke=../direct=../attn=.."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Search hints on the model trained from this seed."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Search hints on these weights (safetensors)."),
    vocab: int = typer.Option(64, "--vocab", help="Vocabulary size of the --seed model."),
    k: int = typer.Option(4, "--k", help="Sequence length of the --seed model."),
    d_model: int = typer.Option(32, "--d-model", help="Residual width of the --seed model."),
    steps: int = typer.Option(3000, "--steps", help="Training steps of the --seed model."),
    json_path: Path = typer.Option(..., "--json", help="Write the program here."),
) -> None:
    """Write a registered strategy as a proof program (subcubic hints come from its search on the model)."""
    _check_output(json_path)
    from interpgym.proofs.lang.export import exportable, strategy_program

    if strategy not in exportable():
        raise UserError(f"strategy {strategy!r} has no program form; choose one of: {', '.join(exportable())}")
    w, _ = model_weights(seed, weights, vocab, k, d_model, steps)
    program = strategy_program(strategy, w)
    try:
        write_json_atomic(json_path, program)
    except OSError as exc:
        raise UserError(f"cannot write {json_path}: {exc}") from exc
    Console().print(f"program of {strategy} ({len(program['steps'])} steps): {json_path}")


def register(app: typer.Typer) -> None:
    """Add `check` and `export` to the `proofs` command group."""
    app.command("check")(check)
    app.command("export")(export)


__all__ = ["register", "run_check", "model_weights"]

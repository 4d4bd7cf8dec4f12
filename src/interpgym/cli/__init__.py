"""The `interpgym` command line: one typer app; each family adds its sub-command group.

Every command that computes something takes `--json PATH`. A `UserError` anywhere
becomes one line on stderr and exit code 2. The command modules import torch and the
other heavy libraries inside their commands, so `--help`, `--version` and bad input
answer in a fraction of a second (`benchmarks/cli_startup.py` measures it).
"""

from __future__ import annotations

import sys

import typer

from interpgym.cli.harness import register as register_harness
from interpgym.core.errors import UserError
from interpgym.editing.cli import app as edit_app
from interpgym.probing.cli import app as probe_app
from interpgym.proofs.cli import app as proofs_app
from interpgym.sae.cli import app as sae_app

app = typer.Typer(
    name="interpgym",
    help="Objective, cheap, trustworthy scores for interpretability techniques.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from interpgym import __version__

        print(f"interpgym {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
) -> None:
    """Objective, cheap, trustworthy scores for interpretability techniques."""


app.add_typer(proofs_app, name="proofs", help="Compact proofs of model performance.")
app.add_typer(sae_app, name="sae", help="Sparse autoencoders: train, evaluate, sweep.")
app.add_typer(probe_app, name="probe", help="Probing and steering: concept datasets, detection, steering.")
app.add_typer(edit_app, name="edit", help="Knowledge editing: fact set, causal tracing, ROME / MEMIT / AlphaEdit.")
register_harness(app)


def main() -> None:
    """Entry point: run the app, turning `UserError` into a one-line message and exit 2."""
    try:
        app(standalone_mode=False)
    except UserError as exc:
        print(f"error: {str(exc).strip()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        # typer >= 0.29 vendors click (`typer._click`), so match the class by name: an
        # isinstance check against the standalone `click` package misses its usage errors.
        if any(cls.__name__ == "ClickException" for cls in type(exc).__mro__):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            sys.exit(2)
        raise

"""Top-level harness commands (`run`, `tasks`, `campaign`, `task`, `leaderboard`, `report`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the harness commands to the top-level app."""

    @app.command()
    def run() -> None:
        """The main job on embedded defaults: the max-of-K proof table of the default model (seed 0)."""
        from interpgym.proofs.cli import run_maxk_proofs

        run_maxk_proofs(seed=0)

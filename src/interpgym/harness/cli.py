"""Top-level harness commands (`run`, `tasks`, `campaign`, `task`, `leaderboard`, `report`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the harness commands to the top-level app."""

    @app.command()
    def run() -> None:
        """The main job on embedded defaults."""
        from interpgym.proofs.cli import maxk

        maxk(seed=0)

"""The one progress bar of long commands: on stderr, so stdout keeps only the results."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(*, enabled: bool = True, transient: bool = False, console: Console | None = None) -> Progress:
    """A rich `Progress` (description, bar, done/total, elapsed, remaining) writing to stderr.

    `enabled=False` gives a silent bar with the same API; `transient=True` erases the bar
    when its `with` block ends.
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=transient,
        disable=not enabled,
    )

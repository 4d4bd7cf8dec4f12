"""The one progress bar of long commands: on stderr, so stdout keeps only the results."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(*, enabled: bool = True, transient: bool = False, console: Console | None = None,
                 extra_columns: tuple[ProgressColumn, ...] = ()) -> Progress:
    """A rich `Progress` (description, bar, done/total, `extra_columns`, elapsed, remaining) writing to stderr.

    `enabled=False` gives a silent bar with the same API; `transient=True` erases the bar
    when its `with` block ends. A task added with `total=None` shows a pulsing bar.
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=transient,
        disable=not enabled,
    )

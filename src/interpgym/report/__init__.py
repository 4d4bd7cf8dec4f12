"""Static HTML report and plots, read from the run store.

`write_report(out_dir, campaigns, leaderboard_rows, task_plots=None)` is the backend of
`interpgym report --out DIR`; see `interpgym.report.page`.
"""

from interpgym.report.page import write_report

__all__ = ["write_report"]

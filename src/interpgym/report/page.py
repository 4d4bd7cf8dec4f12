"""The static HTML report: one self-contained page plus its images, openable offline.

`write_report(out_dir, campaigns, leaderboard_rows, task_plots)` writes

    out_dir/index.html              leaderboard, then per task: its plots and its campaigns
    out_dir/plots/<campaign>.png    score vs trial for each campaign (see `plots`)
    out_dir/curves/<task>-v<N>.png  budget curves per task version (best-so-far vs trials and
                                    wall time, mean ± SEM over each agent's campaigns)
    out_dir/task-plots/<task>/...   copies of the task's own plots
    out_dir/.interpgym-report       marker: this directory is a report we may replace

The page has inline CSS only -- no script, no external stylesheet, font or image --
and every `src`/`href` is a relative path inside `out_dir`. All text taken from
records (agent names, notes, error tails) is HTML-escaped: it may come from an agent.
The directory is built under a temporary name and renamed into place, so a reader
never sees half a report; an existing `out_dir` is replaced only if it is empty or a
previous report.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import matplotlib

from interpgym.core.errors import UserError
from interpgym.harness.leaderboard import LeaderboardRow, noise_marks
from interpgym.harness.records import STATUSES, CampaignRecord, TrialRecord
from interpgym.harness.study import budget_curves
from interpgym.report.plots import plot_budget_curves, plot_campaign

MARKER = ".interpgym-report"
_IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")
_ERROR_CHARS = 400

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.88rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; } td:not(.l) { white-space: nowrap; }
tr.leader td, tr.best td { font-weight: 600; } td.small { font-size: 0.78rem; } tr.board-start td { border-top: 2px solid #999; }
.kind { border-radius: 0.6rem; padding: 0 0.45rem; font-size: 0.8rem; }
.kind-ai { background: #e3ecfa; } .kind-human { background: #e6f4e4; } .kind-builtin { background: #eee; }
.status-ok { color: #1f6f2f; } .status-invalid, .status-crash, .status-timeout, .status-oom { color: #b22; }
section.task { margin-top: 2.5rem; border-top: 3px solid #333; }
.campaign { margin: 1.5rem 0; } .campaign img, .task-plots img { max-width: 100%; border: 1px solid #eee; }
.task-plots { display: flex; flex-wrap: wrap; gap: 1rem; } .task-plots figure { margin: 0; max-width: 48%; }
pre { white-space: pre-wrap; max-width: 40rem; text-align: left; margin: 0; font-size: 0.8rem; }
.note { color: #666; font-size: 0.85rem; }
"""


def _slug(text: str) -> str:
    """A file-name-safe form of `text` (task ids contain '/')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _kind(kind: str) -> str:
    return f'<span class="kind kind-{escape(kind)}">{escape(kind)}</span>'


def _sem_html(sem: float | None) -> str:
    return "" if sem is None else f" ± {sem:.3f}"


def _leaderboard_html(rows: Sequence[LeaderboardRow]) -> str:
    if not rows:
        return "<p>No campaigns yet.</p>"
    head = (
        '<tr><th class="l">task</th><th>#</th><th class="l">agent</th><th class="l">kind</th><th>campaigns</th>'
        '<th>trials</th><th class="l">failures</th><th>best val</th><th>best test</th><th>mean test ± SEM</th>'
        '<th>wall</th><th class="l">noise</th><th class="l">campaign ids</th></tr>'
    )
    body = []
    previous: tuple[str, str] | None = None
    for row in rows:
        board = (row.task, row.task_version)
        classes = [name for name, on in (("leader", row.rank == 1), ("board-start", board != previous)) if on]
        failures = ", ".join(f"{escape(status)} {count}" for status, count in row.failures.items() if count) or "none"
        floor = "" if row.noise_floor is None else f'<br><span class="note">noise ±{row.noise_floor:.3f}</span>'
        task_cell = f"{escape(row.task)} v{escape(row.task_version)}{floor}" if board != previous else ""
        ids = "<br>".join(f'<a href="#campaign-{escape(_slug(cid))}">{escape(cid)}</a>' for cid in row.campaign_ids)
        body.append(
            f'<tr class="{" ".join(classes)}"><td class="l">{task_cell}</td><td>{row.rank}</td>'
            f'<td class="l">{escape(row.agent)}</td><td class="l">{_kind(row.agent_kind)}</td>'
            f"<td>{row.campaigns}</td><td>{row.trials}</td><td class=\"l\">{failures}</td>"
            f"<td>{_num(row.best_normalized_val)}</td><td>{_num(row.best_normalized_test)}</td>"
            f"<td>{_num(row.mean_normalized_test)}{_sem_html(row.sem_normalized_test)}</td><td>{row.wall_s:.0f} s</td>"
            f'<td class="l">{escape(noise_marks(row))}</td><td class="l small">{ids}</td></tr>'
        )
        previous = board
    caption = "<caption>normalised scores: 0 = starting solution, 1 = reference</caption>"
    return f"<table>{caption}<thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _value(value: object) -> str:
    if isinstance(value, float):
        return _num(value, 4)
    return escape(str(value))


def _tried_html(trial: TrialRecord) -> str:
    """What the trial tried: its parameters, and/or its diff against the template (folded), and the agent's note."""
    parts = []
    if trial.params:
        parts.append("<br>".join(f"{escape(str(k))}={_value(v)}" for k, v in trial.params.items()))
    if trial.diff:
        lines = trial.diff.count("\n")
        parts.append(f"<details><summary>diff ({lines} lines)</summary><pre>{escape(trial.diff)}</pre></details>")
    if trial.note:
        note = trial.note if len(trial.note) <= _ERROR_CHARS else trial.note[:_ERROR_CHARS] + "…"
        parts.append(f'<details><summary>note</summary><pre>{escape(note)}</pre></details>')
    return "".join(parts) or "–"


def _metrics_html(trial: TrialRecord) -> str:
    shown = {k: v for k, v in trial.metrics.items() if isinstance(v, (int, float, str, bool))}
    return "<br>".join(f"{escape(str(k))}={_value(v)}" for k, v in shown.items()) or "–"


def _trial_row(trial: TrialRecord, best: int | None) -> str:
    error = trial.error or ""
    if len(error) > _ERROR_CHARS:
        error = "…" + error[-_ERROR_CHARS:]
    memory = "–" if trial.peak_mem_mb is None else f"{trial.peak_mem_mb:.0f}"
    row_class = ' class="best"' if trial.n == best else ""
    return (
        f"<tr{row_class}><td>{trial.n}</td>"
        f'<td class="l status-{escape(trial.status)}">{escape(trial.status)}</td>'
        f"<td>{_num(trial.val_score, 4)}</td><td>{_num(trial.normalized)}</td><td>{trial.wall_s:.1f}</td>"
        f'<td>{memory}</td><td class="l">{_tried_html(trial)}</td><td class="l small">{_metrics_html(trial)}</td>'
        f'<td class="l"><pre>{escape(error)}</pre></td></tr>'
    )


def _campaign_html(campaign: CampaignRecord, plot: str) -> str:
    elapsed = ""
    if campaign.finished_at is not None and campaign.started_at:
        elapsed = f" · {campaign.finished_at - campaign.started_at:.0f} s"
    budgets = ", ".join(f"{escape(str(key))}={escape(str(value))}" for key, value in sorted(campaign.budgets.as_dict().items()))
    trials = "".join(_trial_row(trial, campaign.best_trial) for trial in sorted(campaign.trials, key=lambda t: t.n))
    return (
        f'<div class="campaign" id="campaign-{escape(_slug(campaign.campaign_id))}">'
        f"<h3>{escape(campaign.agent)} {_kind(campaign.agent_kind)} · campaign {escape(campaign.campaign_id)}</h3>"
        f'<p class="meta">seed {campaign.seed} · {escape(campaign.status)} · {len(campaign.trials)} trials'
        f"{elapsed} · budgets: {budgets or 'none'} · harness {escape(campaign.harness_version)}</p>"
        f"<p>best val {_num(campaign.best_val, 4)} (trial {_num(campaign.best_trial)}) · "
        f"test {_num(campaign.test_score, 4)} · normalised test {_num(campaign.normalized_test)}</p>"
        f'<img src="{escape(plot)}" alt="score vs trial for campaign {escape(campaign.campaign_id)}">'
        f"<details open><summary>trials (best val trial in bold)</summary><table><thead><tr><th>n</th>"
        f"<th class=\"l\">status</th><th>val</th><th>normalised</th><th>wall s</th><th>peak MB</th>"
        f"<th class=\"l\">tried (params / diff / note)</th><th class=\"l\">val metrics</th>"
        f"<th class=\"l\">error (end)</th></tr></thead><tbody>{trials}</tbody></table></details></div>"
    )


def _budget_curves_html(root: Path, task: str, campaigns: Sequence[CampaignRecord], floor: float | None) -> str:
    """Per version of `task` with finished campaigns: the budget-curves plot and a table of
    final normalised test mean ± SEM and the fraction of trials per status, per agent."""
    html = []
    finished = [c for c in campaigns if c.task == task and c.status == "finished"]
    for version in sorted({c.task_version for c in finished}):
        curves = budget_curves([c for c in finished if c.task_version == version])
        relative = f"curves/{_slug(task)}-v{_slug(version)}.png"
        plot_budget_curves(curves, root / relative, f"{task} v{version}: best-so-far vs budget (mean ± SEM over campaigns)",
                           floor)
        rows = "".join(
            f'<tr><td class="l">{escape(c.agent)}</td><td class="l">{_kind(c.agent_kind)}</td>'
            f"<td>{len(c.campaign_ids)}</td><td>{_num(c.test_mean)}{_sem_html(c.test_sem)}</td>"
            f"<td>{_num(c.by_trial[-1]['mean']) if c.by_trial else '–'}</td>"
            + "".join(f"<td>{c.status_fractions.get(s, 0.0):.0%}</td>" for s in STATUSES) + "</tr>"
            for c in curves)
        head = "".join(f"<th>{s}</th>" for s in STATUSES)
        html.append(
            f'<div class="curves"><h3>Budget curves · v{escape(version)}</h3>'
            f'<img src="{escape(relative)}" alt="budget curves of {escape(task)} v{escape(version)}">'
            f'<table><thead><tr><th class="l">agent</th><th class="l">kind</th><th>campaigns</th>'
            f"<th>test (mean ± SEM)</th><th>best val at last trial (mean)</th>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")
    return "".join(html)


def _check_task_plots(task_plots: Mapping[str, Sequence[str | Path]]) -> dict[str, list[Path]]:
    checked: dict[str, list[Path]] = {}
    for task, paths in task_plots.items():
        checked[task] = []
        for raw in paths:
            path = Path(raw)
            if not path.is_file():
                raise UserError(f"task plot {path} for {task} does not exist; regenerate the task's plots")
            if path.suffix.lower() not in _IMAGE_SUFFIXES:
                raise UserError(f"task plot {path} is not an image ({', '.join(_IMAGE_SUFFIXES)})")
            checked[task].append(path)
    return checked


def _build(
    root: Path,
    campaigns: Sequence[CampaignRecord],
    rows: Sequence[LeaderboardRow],
    task_plots: Mapping[str, list[Path]],
    generated_at: str,
    score_names: Mapping[str, str],
) -> None:
    floors = {row.task: row.noise_floor for row in rows if row.noise_floor is not None}
    tasks = sorted({campaign.task for campaign in campaigns} | set(task_plots))
    sections = []
    used_names: set[str] = set()
    for task in tasks:
        figures = []
        for index, source in enumerate(task_plots.get(task, [])):
            relative = f"task-plots/{_slug(task)}/{index:02d}-{_slug(source.name)}"
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, root / relative)
            figures.append(
                f'<figure><img src="{escape(relative)}" alt="{escape(source.stem)}">'
                f"<figcaption>{escape(source.stem)}</figcaption></figure>"
            )
        plots_html = f'<div class="task-plots">{"".join(figures)}</div>' if figures else ""
        plots_html = _budget_curves_html(root, task, campaigns, floors.get(task)) + plots_html
        blocks = []
        ordered = sorted(
            (campaign for campaign in campaigns if campaign.task == task),
            key=lambda c: (c.task_version, c.agent, c.started_at, c.campaign_id),
        )
        for campaign in ordered:
            name = _slug(campaign.campaign_id)
            while name in used_names:  # distinct ids can share a slug
                name += "_"
            used_names.add(name)
            relative = f"plots/{name}.png"
            plot_campaign(campaign, root / relative, floors.get(task), score_names.get(task, "score"))
            blocks.append(_campaign_html(campaign, relative))
        sections.append(
            f'<section class="task" id="task-{escape(_slug(task))}"><h2>{escape(task)}</h2>'
            f"{plots_html}{''.join(blocks) or '<p>No campaigns for this task.</p>'}</section>"
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>interpgym report</title><style>{_CSS}</style></head><body>"
        f'<h1>interpgym report</h1><p class="meta">generated {escape(generated_at)} · '
        f"{len(campaigns)} campaigns · {sum(len(c.trials) for c in campaigns)} trials</p>"
        f"<h2>Leaderboard</h2>{_leaderboard_html(rows)}{''.join(sections)}</body></html>\n"
    )
    (root / "index.html").write_text(page, encoding="utf-8")
    (root / MARKER).write_text("written by interpgym report; safe to replace\n", encoding="utf-8")


def write_report(
    out_dir: str | Path,
    campaigns: Sequence[CampaignRecord],
    leaderboard_rows: Sequence[LeaderboardRow],
    task_plots: Mapping[str, Sequence[str | Path]] | None = None,
    generated_at: str | None = None,
    score_names: Mapping[str, str] | None = None,
) -> Path:
    """Write the report into `out_dir` (see the module docstring) and return its index.html.

    `task_plots` maps a task id to image files (PNG/SVG/JPEG) the task produced; they
    are copied into the report. `generated_at` is the timestamp shown (default: now,
    UTC). `score_names` maps a task id to what its raw score measures (plot labels).
    Raises `UserError` when a task plot is missing or `out_dir` holds something
    other than a previous report; nothing is written then.
    """
    out = Path(out_dir)
    plots = _check_task_plots(task_plots or {})
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise UserError(f"{out} exists and is not an interpgym report; choose another --out directory")
    stamp = generated_at or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
    try:
        # mkdtemp makes the folder 0700; a report is for reading (web server, colleagues): use the umask.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        # Agent names and task text are free text: matplotlib must never read "$...$" in them as math.
        with matplotlib.rc_context({"text.parse_math": False}):
            _build(staging, campaigns, leaderboard_rows, plots, stamp, score_names or {})
        if out.exists():
            retired = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            out.rename(retired / "report")
            staging.rename(out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"

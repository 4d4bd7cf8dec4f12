"""Harness commands (the command-line layer, above both `harness` and `report`): `run`, `tasks`, `campaign`, `task`,
`leaderboard`, `report`, `study`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TextColumn
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.core.outputs import check_output_path
from interpgym.core.progress import progress_bar

console = Console()
err_console = Console(stderr=True)

campaign_app = typer.Typer(no_args_is_help=True, help="Run agents on tasks (campaigns).")
task_app = typer.Typer(no_args_is_help=True, help="Work on a task yourself (the external agent).")

MAIN_JOB_TASKS = ("sae/toy", "proofs/maxk")
WORKERS_OPTION = typer.Option(1, "--workers", help="Trials in flight at once per campaign.")
REPORT_OUT_OPTION = typer.Option(None, "--out", help="Report directory (default $INTERPGYM_HOME/report).")
JSON_OPTION = typer.Option(None, "--json", help="Also write the results as JSON to this file.")
SEED_OPTION = typer.Option(0, "--seed", help="The campaign's seed (>= 0): same seed, same proposals and splits.")


def check_output(path: Path | None, *, directory: bool = False) -> None:
    """Fail before any work (one-line `UserError`) if results could not be written to `path`
    (`--out` for a directory, else `--json`): `core.outputs.check_output_path`."""
    check_output_path(path, "--out" if directory else "--json", directory=directory)


def check_outputs(json_path: Path | None, out: Path | None) -> None:
    """`check_output` for a command's `--json` file and its `--out` report directory."""
    check_output(json_path)
    check_output(out, directory=True)


def isolation_warning() -> str | None:
    """The warning to print before running trials where the sandbox has no namespaces (else None)."""
    from interpgym.harness.sandbox import namespaces_available

    if namespaces_available():
        return None
    return ("warning: no unprivileged user namespaces here: trials get time, memory and process limits only, "
            "no network, file-system or private-data isolation (recorded as isolation=rlimits-only); "
            "do not run untrusted agents on this machine")


def _warn_if_not_isolated() -> None:
    warning = isolation_warning()
    if warning:
        err_console.print(warning, style="yellow", highlight=False, soft_wrap=True)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def tasks_listing(with_baselines: bool = True) -> list[dict]:
    """One dict per registered task: id, version, title, direction, budgets, search space, baseline scores."""
    from interpgym.harness.campaign import baselines
    from interpgym.harness.tasks import available_task_ids, get_task

    rows = []
    with progress_bar(console=err_console, transient=True) as bar:
        step = bar.add_task("", total=None)
        for task_id in available_task_ids():
            task = get_task(task_id)
            row = {"id": task.id, "version": task.version, "title": task.title, "direction": task.direction,
                   "budgets": task.budgets.as_dict(), "search_space": task.search_space, "baselines": None}
            if with_baselines:
                bar.update(step, description=f"scoring the baselines of {task_id} (once; cached)")
                b = baselines(task)
                row["baselines"] = {"starting": {"val": b.starting_val, "test": b.starting_test},
                                    "reference": {"val": b.reference_val, "test": b.reference_test}}
            rows.append(row)
    return rows


def _campaign_progress() -> Progress:
    return progress_bar(console=err_console, transient=True, extra_columns=(TextColumn("{task.fields[best]}"),))


def run_one_campaign(task: str | None, agent: str | None, *, trials: int | None, minutes: float | None, seed: int,
                     resume: str | None, agent_options: dict | None = None, workers: int = 1,
                     backend: str = "local", address: str | None = None) -> dict:
    """Run a campaign with a progress bar; print its trials; return its summary JSON."""
    from interpgym.harness.campaign import resolve_budgets, run_campaign, summary
    from interpgym.harness.store import RunStore
    from interpgym.harness.tasks import get_task

    store = RunStore()
    if workers < 1:
        raise UserError(f"--workers must be >= 1 (got {workers})")
    executor = make_executor(backend, workers, address)
    _warn_if_not_isolated()
    if resume:
        record = store.campaign(resume)
        total, label = record.budgets.trials, f"{record.agent} on {record.task}"
    else:
        total = resolve_budgets(get_task(task), trials, minutes, agent or "optuna").trials
        label = f"{agent or 'optuna'} on {task}"
    best: list[float] = []
    try:
        with _campaign_progress() as bar:
            step = bar.add_task(label, total=total, best="", completed=len(store.trials(resume)) if resume else 0)

            def on_trial(trial) -> None:
                if trial.normalized is not None:
                    best.append(trial.normalized)
                bar.update(step, advance=1, best=f"best normalised val {max(best):.3f}" if best else "")

            record = run_campaign(task, agent, trials=trials, minutes=minutes, seed=seed, resume=resume,
                                  store=store, agent_options=agent_options, on_trial=on_trial, workers=workers,
                                  executor=executor)
    finally:
        if executor is not None:
            executor.shutdown()
    result = summary(record, store)
    print_campaign(result)
    return result


def make_executor(backend: str, workers: int, address: str | None):
    """None for the default local executor (the campaign makes its own), or the Ray executor."""
    if backend == "local":
        if address is not None:
            raise UserError("--address applies to --backend ray only")
        return None
    if backend == "ray":
        from interpgym.harness.ray_backend import RayExecutor

        return RayExecutor(address=address, workers=workers)
    raise UserError(f"unknown --backend {backend!r}; choose local or ray")


def _params_gist(params: dict | None, width: int = 48) -> str:
    if not params:
        return ""
    text = " ".join(f"{k}={_fmt(v, 3) if isinstance(v, float) else v}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def _diff_gist(diff: str) -> str:
    """`+A -R` line counts of a unified diff (empty for none)."""
    lines = diff.splitlines()
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return f"diff +{added} -{removed}" if lines else ""


def print_campaign(result: dict) -> None:
    """The campaign as a person reads it: a table of every trial (what it tried, how it went,
    its key metrics), the best trial's full config or diff, and the final test score."""
    trials = result["trials"]
    metric_keys = _shared_metric_keys(trials)
    table = Table(title=f"campaign {result['campaign_id']}: {result['agent']} on {result['task']}@{result['task_version']}",
                  box=box.SIMPLE_HEAD)
    for col in ("n", "status", "val", "norm", "wall s", *metric_keys, "tried / error"):
        table.add_column(col, no_wrap=col != "tried / error", ratio=1 if col == "tried / error" else None)
    best_n = result["best"]["trial"]
    for t in trials:
        tried = escape(_params_gist(t["params"], width=200) or _diff_gist(t["diff"] or ""))
        error = _error_gist(t["error"], width=120)
        metrics = [_fmt(t["metrics"].get(k), 3) if isinstance(t["metrics"].get(k), (int, float)) else
                   escape(str(t["metrics"].get(k, ""))) for k in metric_keys]
        table.add_row(str(t["n"]), t["status"], _fmt(t["val_score"]), _fmt(t["normalized"], 3), f"{t['wall_s']:.1f}",
                      *metrics, tried + (f"\n[red]{escape(error)}[/red]" if error else ""),
                      style="bold" if t["n"] == best_n else None)
    console.print(table)
    b = result["best"]
    console.print(f"best: trial {b['trial']}  val {_fmt(b['val'])}  normalised val {_fmt(b['normalized_val'], 3)}  "
                  f"test {_fmt(b['test'])}  normalised test {_fmt(b['normalized_test'], 3)}"
                  + (f"  ({b['test_error']})" if b["test_error"] else ""), markup=False, highlight=False)
    winner = next((t for t in trials if t["n"] == best_n), None)
    if winner is not None and winner["params"]:
        console.print("best config: " + " ".join(f"{k}={v}" for k, v in winner["params"].items()), markup=False,
                      highlight=False)
    if winner is not None and winner["diff"]:
        console.print("best diff:", highlight=False)
        console.print(winner["diff"], markup=False, highlight=False)
    statuses = {}
    for t in trials:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    console.print("trials: " + ", ".join(f"{k} {v}" for k, v in statuses.items()), highlight=False)


def _shared_metric_keys(trials: list[dict], limit: int = 2) -> list[str]:
    """Up to `limit` numeric val metrics every ok trial reports (besides the score itself), for the table."""
    ok = [t["metrics"] for t in trials if t["status"] == "ok" and t["metrics"]]
    if not ok:
        return []
    keys = [k for k, v in ok[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and all(isinstance(m.get(k), (int, float)) for m in ok)]
    preferred = [k for k in ("l0", "fvu", "flops", "mse") if k in keys]
    return (preferred + [k for k in keys if k not in preferred])[:limit]


def _error_gist(error: str | None, width: int = 60) -> str:
    """The informative line of a trial's error for a table cell: the last non-empty line
    (a crash's stderr tail ends with the exception), cut to `width` characters."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    gist = lines[-1] if lines else ""
    return gist if len(gist) <= width else gist[: width - 1] + "…"


def leaderboard_json(task: str | None = None) -> tuple[list, list]:
    """(rows, campaigns) of the leaderboard, noise floors from the reference over 3 seeds."""
    from interpgym.harness.campaign import noise_floors
    from interpgym.harness.leaderboard import leaderboard_rows
    from interpgym.harness.store import RunStore
    from interpgym.harness.tasks import TASKS

    campaigns = [c for c in RunStore().campaigns(task) if c.status == "finished"]
    task_ids = sorted({c.task for c in campaigns if c.task in TASKS})
    with progress_bar(console=err_console, transient=True) as bar:
        bar.add_task("measuring noise floors (reference over 3 seeds; cached)", total=None)
        floors = noise_floors(task_ids)
    return leaderboard_rows(campaigns, noise_floors=floors), campaigns


def write_html_report(out: Path) -> Path:
    from interpgym.harness.campaign import task_plots
    from interpgym.harness.tasks import TASKS, get_task
    from interpgym.report.page import write_report

    rows, campaigns = leaderboard_json()
    names = {task_id: get_task(task_id).score_name for task_id in {c.task for c in campaigns} if task_id in TASKS}
    with tempfile.TemporaryDirectory(prefix="interpgym-task-plots-") as tmp:
        return write_report(out, campaigns, rows, task_plots(campaigns, Path(tmp)), score_names=names)


def register(app: typer.Typer) -> None:
    """Add the harness commands to the top-level app."""
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(task_app, name="task")

    @app.command("tasks")
    def tasks_cmd(json_path: Optional[Path] = typer.Option(None, "--json", help="Write the listing as JSON here.")) -> None:
        """List the tasks: id, version, direction, budgets and baseline scores (baselines run once, cached)."""
        check_output(json_path)
        rows = tasks_listing()
        table = Table(title="tasks")
        for col in ("id", "version", "direction", "trials", "minutes", "starting\nval", "reference\nval"):
            table.add_column(col, no_wrap=col == "id")  # ids must stay whole in an 80-column terminal
        for r in rows:
            b = r["baselines"]
            table.add_row(r["id"], r["version"], r["direction"], str(r["budgets"]["trials"]), str(r["budgets"]["minutes"]),
                          _fmt(b["starting"]["val"]), _fmt(b["reference"]["val"]))
        console.print(table)
        for r in rows:
            console.print(f"[bold]{r['id']}[/bold]: {r['title']}")
        if json_path:
            write_json_atomic(json_path, {"tasks": rows})

    @campaign_app.command("run")
    def campaign_run(
        task: Optional[str] = typer.Argument(None, help="Task id, e.g. sae/toy (see `interpgym tasks`); optional with --resume."),
        agent: Optional[str] = typer.Option(
            None, "--agent", help="starting | reference | random | optuna | llm (default optuna; a resumed campaign keeps its own)."),
        trials: Optional[int] = typer.Option(None, "--trials", help="Trial budget (default: the task's)."),
        minutes: Optional[float] = typer.Option(None, "--minutes", help="Wall-clock budget (default: the task's)."),
        seed: int = SEED_OPTION,
        resume: Optional[str] = typer.Option(None, "--resume", help="Continue the campaign with this id."),
        model: Optional[str] = typer.Option(None, "--model", help="llm agent: model name."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="llm agent: OpenAI-compatible endpoint."),
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="llm agent: total token budget."),
        max_cost_usd: Optional[float] = typer.Option(
            None, "--max-cost-usd", help="llm agent: cost budget in USD (needs the two prices below)."),
        usd_per_1k_prompt: Optional[float] = typer.Option(
            None, "--usd-per-1k-prompt-tokens", help="llm agent: price of 1000 prompt tokens."),
        usd_per_1k_completion: Optional[float] = typer.Option(
            None, "--usd-per-1k-completion-tokens", help="llm agent: price of 1000 completion tokens."),
        workers: int = typer.Option(1, "--workers", help="Trials in flight at once (each its own sandboxed process)."),
        backend: str = typer.Option("local", "--backend", help="local (this machine) | ray (trials as Ray tasks)."),
        address: Optional[str] = typer.Option(None, "--address", help="--backend ray: the cluster (default: start a local one)."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write the campaign summary as JSON here."),
    ) -> None:
        """Run (or resume) a campaign of AGENT on TASK, then score its best val trial on test.

        The llm agent's budgets also come from the environment (`INTERPGYM_LLM_MAX_COST_USD`,
        `INTERPGYM_LLM_USD_PER_1K_PROMPT_TOKENS`, ...; see docs/harness_llm.md); flags win.
        """
        check_output(json_path)
        if not task and not resume:
            raise UserError("name a task (see `interpgym tasks`) or --resume a campaign")
        if resume and (trials is not None or minutes is not None):
            raise UserError("--trials/--minutes cannot change a resumed campaign's budgets (it keeps its own); "
                            "start a new campaign instead")
        options = {k: v for k, v in {"model": model, "base_url": base_url, "max_total_tokens": max_tokens,
                                     "max_cost_usd": max_cost_usd, "usd_per_1k_prompt_tokens": usd_per_1k_prompt,
                                     "usd_per_1k_completion_tokens": usd_per_1k_completion}.items()
                   if v is not None}
        if options and agent != "llm" and not resume:
            raise UserError("--model/--base-url/--max-tokens/--max-cost-usd/--usd-per-1k-* apply to --agent llm only")
        if resume and options:
            raise UserError("a resumed campaign keeps the llm options it was started with; drop --model/--max-* etc.")
        result = run_one_campaign(task, agent, trials=trials, minutes=minutes, seed=seed, resume=resume,
                                  agent_options=options or None, workers=workers, backend=backend, address=address)
        if json_path:
            write_json_atomic(json_path, result)

    @campaign_app.command("show")
    def campaign_show(
        campaign_id: str = typer.Argument(..., help="Campaign id (see `interpgym leaderboard`)."), json_path: Optional[Path] = JSON_OPTION
    ) -> None:
        """Show a recorded campaign: its trials (what each tried, status, score, metrics, error), the best config."""
        check_output(json_path)
        from interpgym.harness.campaign import summary
        from interpgym.harness.store import RunStore

        result = summary(RunStore().campaign(campaign_id))
        print_campaign(result)
        if json_path:
            write_json_atomic(json_path, result)

    @task_app.command("init")
    def task_init(
        task: str = typer.Argument(..., help="Task id."),
        directory: Path = typer.Argument(..., help="New (or empty) directory for the workspace."),
        as_: tuple[str, str] = typer.Option(..., "--as", help="Who works on it: `human NAME` or `ai NAME`."),
        seed: int = SEED_OPTION,
        trials: Optional[int] = typer.Option(None, "--trials", help="Trial budget (default: the task's)."),
    ) -> None:
        """Start an external campaign: a workspace with the editable files, instructions and inputs."""
        from interpgym.harness.external import init_workspace

        campaign_id = init_workspace(task, directory, kind=as_[0], name=as_[1], seed=seed, trials=trials)
        console.print(f"campaign {campaign_id}: edit the files in {directory} (see INSTRUCTIONS.md), then "
                      f"`interpgym task score {directory}`; finish with `interpgym task submit {directory}`",
                      markup=False, highlight=False)

    @task_app.command("score")
    def task_score(directory: Path = typer.Argument(..., help="The workspace made by `task init`."),
                   note: str = typer.Option("", "--note", help="A note recorded with this trial."),
                   json_path: Optional[Path] = JSON_OPTION) -> None:
        """Run one recorded val trial of the workspace's editable files (counts against the budget)."""
        check_output(json_path)
        from interpgym.harness.external import score_workspace

        _warn_if_not_isolated()
        trial = score_workspace(directory, note=note)
        if json_path:  # the record first: printing the solution's text can never lose it
            write_json_atomic(json_path, {"n": trial.n, "status": trial.status, "val_score": trial.val_score,
                                          "normalized": trial.normalized, "metrics": trial.metrics, "error": trial.error,
                                          "wall_s": trial.wall_s})
        # The error holds the solution's own stderr: printed as plain text, never as rich markup.
        console.print(f"trial {trial.n}: {trial.status}  val {_fmt(trial.val_score)}  normalised {_fmt(trial.normalized, 3)}"
                      + (f"\n{trial.error}" if trial.error else ""), markup=False, highlight=False)

    @task_app.command("submit")
    def task_submit(
        directory: Path = typer.Argument(..., help="The workspace made by `task init`."), json_path: Optional[Path] = JSON_OPTION
    ) -> None:
        """End the workspace's campaign: its best val trial is scored once on the test split."""
        check_output(json_path)
        from interpgym.harness.campaign import summary
        from interpgym.harness.external import submit_workspace

        result = summary(submit_workspace(directory))
        b = result["best"]
        console.print(f"submitted {result['campaign_id']}: best trial {b['trial']}  test {_fmt(b['test'])}  "
                      f"normalised test {_fmt(b['normalized_test'], 3)}")
        if json_path:
            write_json_atomic(json_path, result)

    @app.command("leaderboard")
    def leaderboard_cmd(task: Optional[str] = typer.Option(None, "--task", help="Only this task id."),
                        json_path: Optional[Path] = JSON_OPTION) -> None:
        """Per task and agent: best normalised val and test, trials, failures, wall time, noise marks."""
        check_output(json_path)
        from interpgym.harness.leaderboard import render_campaign_ids, render_leaderboard

        if task is not None:
            from interpgym.harness.tasks import get_task

            get_task(task)
        rows, _ = leaderboard_json(task)
        console.print(render_leaderboard(rows))
        console.print(render_campaign_ids(rows))
        if json_path:
            write_json_atomic(json_path, {"rows": [r.to_json() for r in rows]})

    @app.command("report")
    def report_cmd(out: Path = typer.Option(..., "--out", help="Directory for the static HTML report.")) -> None:
        """Write the static HTML report (leaderboard, score vs trial per campaign, task plots)."""
        check_output(out, directory=True)
        index = write_html_report(out)
        console.print(f"report: {index}")

    @app.command("study")
    def study_cmd(
        task: str = typer.Argument(..., help="Task id."),
        agents: str = typer.Option(..., "--agents", help="Comma-separated agents, e.g. optuna,random."),
        campaigns: int = typer.Option(3, "--campaigns", help="Campaigns per agent (seeds seed, seed+1, ...)."),
        trials: Optional[int] = typer.Option(None, "--trials", help="Trial budget per campaign."),
        minutes: Optional[float] = typer.Option(None, "--minutes", help="Wall-clock budget per campaign."),
        seed: int = typer.Option(0, "--seed", help="Seed of each agent's first campaign."),
        workers: int = WORKERS_OPTION,
        out: Optional[Path] = REPORT_OUT_OPTION,
        json_path: Optional[Path] = JSON_OPTION,
    ) -> None:
        """Several campaigns per agent on TASK (plus recorded human/AI ones): budget curves, test mean ± SEM, statuses."""
        check_outputs(json_path, out)
        from interpgym.core.cache import home
        from interpgym.harness.campaign import check_seed
        from interpgym.harness.study import run_study
        from interpgym.harness.tasks import get_task

        get_task(task)
        check_seed(seed)
        names = [name.strip() for name in agents.split(",") if name.strip()]
        _warn_if_not_isolated()
        with progress_bar(console=err_console, transient=True) as bar:
            step = bar.add_task(f"study on {task}: campaigns", total=len(names) * campaigns)
            pooled, curves = run_study(task, names, campaigns=campaigns, trials=trials, minutes=minutes, seed=seed,
                                       workers=workers, on_campaign=lambda _: bar.advance(step))
        table = Table(title=f"study on {task}: normalised scores (0 = starting, 1 = reference), mean ± SEM",
                      box=box.SIMPLE_HEAD)
        for col in ("agent", "camp.", "test", "best val\nat end", "ok", "invalid", "other fail"):
            table.add_column(col)
        for c in curves:
            end = c.by_trial[-1] if c.by_trial else {"mean": None, "sem": None}
            fractions = c.status_fractions
            table.add_row(f"{c.agent} ({c.agent_kind})", str(len(c.campaign_ids)),
                          _fmt(c.test_mean, 3) + (f" ± {c.test_sem:.3f}" if c.test_sem is not None else ""),
                          _fmt(end["mean"], 3) + (f" ± {end['sem']:.3f}" if end["sem"] is not None else ""),
                          f"{fractions.get('ok', 0):.0%}", f"{fractions.get('invalid', 0):.0%}",
                          f"{1 - fractions.get('ok', 0) - fractions.get('invalid', 0):.0%}")
        console.print(table)
        index = write_html_report(out or home() / "report")
        console.print(f"report (budget curves per task): {index}")
        if json_path:
            write_json_atomic(json_path, {"task": task, "campaign_ids": [c.campaign_id for c in pooled],
                                          "agents": [c.to_json() for c in curves], "report": str(index)})

    @app.command("run")
    def run(
        trials: int = typer.Option(8, "--trials", help="Trials per task."),
        minutes: float = typer.Option(4.0, "--minutes", help="Wall-clock budget per task."),
        seed: int = SEED_OPTION,
        workers: int = WORKERS_OPTION,
        out: Optional[Path] = REPORT_OUT_OPTION,
        json_path: Optional[Path] = JSON_OPTION,
    ) -> None:
        """The main job: an optuna campaign on sae/toy and proofs/maxk, then the leaderboard and the report."""
        check_outputs(json_path, out)
        from interpgym.core.cache import home
        from interpgym.harness.leaderboard import render_campaign_ids, render_leaderboard

        results = [run_one_campaign(t, "optuna", trials=trials, minutes=minutes, seed=seed, resume=None,
                                    workers=workers) for t in MAIN_JOB_TASKS]
        rows, _ = leaderboard_json()
        console.print(render_leaderboard(rows))
        console.print(render_campaign_ids(rows))
        index = write_html_report(out or home() / "report")
        console.print(f"report: {index}")
        if json_path:
            write_json_atomic(json_path, {"campaigns": results, "leaderboard": [r.to_json() for r in rows],
                                          "report": str(index)})

"""Campaigns, agents, budgets, baselines and the CLI contract on the fast `demo/mean` task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interpgym.cli import app
from interpgym.harness.campaign import baselines, run_campaign, summary
from interpgym.harness.store import RunStore

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; `UserError` maps to exit code 2 as in `interpgym.cli.main`."""
    from interpgym.core.errors import UserError

    result = runner.invoke(app, list(args))
    if isinstance(result.exception, UserError):
        return 2, str(result.exception)
    return result.exit_code, result.output


def test_baseline_agents_normalise_to_zero_and_one(demo):
    start = run_campaign("demo/mean", "starting", seed=0)
    ref = run_campaign("demo/mean", "reference", seed=0)
    assert len(start.trials) == len(ref.trials) == 1  # baselines default to one trial
    assert start.trials[0].normalized == pytest.approx(0.0) and start.normalized_test == pytest.approx(0.0)
    assert ref.trials[0].normalized == pytest.approx(1.0) and ref.normalized_test == pytest.approx(1.0)
    b = baselines(demo)
    assert b.reference_val > b.starting_val


@pytest.mark.parametrize("agent", ["random", "optuna"])
def test_search_agents_are_seeded_and_beat_the_start(agent):
    first = run_campaign("demo/mean", agent, trials=6, seed=11)
    again = run_campaign("demo/mean", agent, trials=6, seed=11)
    other = run_campaign("demo/mean", agent, trials=6, seed=12)
    assert [t.params for t in first.trials] == [t.params for t in again.trials]
    assert [t.params for t in first.trials] != [t.params for t in other.trials]
    assert first.status == "finished" and first.best_trial is not None
    best = max(t.val_score for t in first.trials if t.status == "ok")
    assert first.best_val == best
    assert first.normalized_test is not None and first.normalized_test > 0.5
    assert all(t.status == "ok" for t in first.trials)


def test_minutes_budget_stops_the_campaign():
    record = run_campaign("demo/mean", "random", trials=50, minutes=0.5 / 60, seed=0)
    assert 1 <= len(record.trials) < 50
    assert sum(t.wall_s for t in record.trials) < 0.5 + 30  # never starts a trial with no time left


def test_campaign_cli_contract(tmp_path):
    out = tmp_path / "c.json"
    code, output = invoke("campaign", "run", "demo/mean", "--agent", "random", "--trials", "3", "--seed", "2",
                          "--json", str(out))
    assert code == 0, output
    data = json.loads(out.read_text())
    assert {"campaign_id", "task", "agent", "trials", "best"} <= set(data)
    assert data["task"] == "demo/mean" and data["agent"] == "random" and len(data["trials"]) == 3
    for t in data["trials"]:
        assert {"n", "status", "val_score", "normalized"} <= set(t)
    assert {"val", "test", "normalized_test"} <= set(data["best"])
    assert data["best"]["val"] == max(t["val_score"] for t in data["trials"])
    # the same record through the store
    assert summary(RunStore().campaign(data["campaign_id"]))["best"] == data["best"]


def test_tasks_cli_contract(tmp_path, monkeypatch):
    monkeypatch.setattr("interpgym.harness.tasks.TASKS", {"demo/mean": "interpgym.harness.tasks.demo_mean:make_task"})
    out = tmp_path / "tasks.json"
    code, output = invoke("tasks", "--json", str(out))
    assert code == 0, output
    (row,) = json.loads(out.read_text())["tasks"]
    assert row["id"] == "demo/mean" and row["version"] == "3" and row["direction"] == "max"
    assert {"trials", "minutes", "trial_timeout_s", "trial_memory_mb"} <= set(row["budgets"])
    assert row["baselines"]["reference"]["val"] > row["baselines"]["starting"]["val"]


@pytest.mark.parametrize("args, message", [
    (["campaign", "run", "no/such"], "unknown task"),
    (["campaign", "run", "demo/mean", "--agent", "genius"], "unknown agent"),
    (["campaign", "run", "demo/mean", "--resume", "nope"], "no campaign"),
    (["campaign", "run", "demo/mean", "--trials", "0"], "--trials"),
    (["task", "score", "/nonexistent/dir"], "not a task workspace"),
    (["task", "init", "demo/mean", "/nonexistent/interpgym-ws", "--as", "robot", "r2"], "--as must be human or ai"),
    (["campaign", "run", "demo/mean", "--seed", "-1"], "--seed must be >= 0"),
    (["campaign", "run", "demo/mean", "--max-cost-usd", "1"], "apply to --agent llm only"),
    (["campaign", "run", "demo/mean", "--resume", "x", "--trials", "5"], "cannot change a resumed campaign"),
    (["task", "init", "demo/mean", "/nonexistent/interpgym-ws", "--as", "ai", "a", "--seed", "-1"], "--seed must be >= 0"),
    (["run", "--seed", "-1"], "--seed must be >= 0"),
    (["campaign", "run", "demo/mean", "--json", "/proc/no/x.json"], "--json /proc/no/x.json: cannot write"),
    (["leaderboard", "--json", "/proc/no/x.json"], "--json /proc/no/x.json: cannot write"),
    (["report", "--out", "/proc/no/report"], "--out /proc/no/report: cannot write"),
    (["task", "init", "demo/mean", "/proc/no/ws", "--as", "ai", "a"], "cannot create the workspace"),
])
def test_bad_input_is_a_user_error(args, message):
    code, output = invoke(*args)
    assert code == 2 and message in output


def test_cli_turns_user_errors_into_one_line_and_exit_2():
    import os
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.run([sys.executable, "-m", "interpgym", "campaign", "run", "no/such"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": src})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown task" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["campaign", "run", "demo/mean", "--trials", "abc"], "Invalid value for '--trials'"),
    (["campaign", "run", "demo/mean", "--bogus"], "No such option"),
    (["task", "init", "demo/mean", "/nonexistent/interpgym-ws", "--as", "human"], "requires 2 arguments"),
])
def test_cli_usage_errors_are_one_line_and_exit_2(args, message, monkeypatch, capsys):
    import sys

    from interpgym.cli import main

    monkeypatch.setattr(sys, "argv", ["interpgym", *args])
    with pytest.raises(SystemExit) as exited:
        main()  # the real entry point, in-process (a subprocess per case costs seconds)
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and "Traceback" not in err and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_unwritable_workspace_records_no_campaign(tmp_path):
    (tmp_path / "a-file").write_text("x")
    before = len(RunStore().campaigns(None))
    for target in (tmp_path / "a-file", Path("/proc/no/ws")):
        code, output = invoke("task", "init", "demo/mean", str(target), "--as", "ai", "a")
        assert code == 2, output
    assert len(RunStore().campaigns(None)) == before  # no dangling "running" campaign


def test_external_agent_workflow(tmp_path):
    work = tmp_path / "ws"
    code, output = invoke("task", "init", "demo/mean", str(work), "--as", "ai", "claude-test", "--trials", "3")
    assert code == 0, output
    assert (work / "solution.py").is_file() and (work / "INSTRUCTIONS.md").is_file()
    assert (work / "data" / "train.safetensors").is_file() and (work / "params.json").is_file()
    # trial 1: the starting parameters as given
    code, output = invoke("task", "score", str(work), "--json", str(tmp_path / "t1.json"))
    assert code == 0, output
    assert json.loads((tmp_path / "t1.json").read_text())["normalized"] == pytest.approx(0.0)
    # trial 2: the person edits the solution (ignores params, uses the median)
    text = (work / "solution.py").read_text().replace("w = (1.0 - params[\"shrink\"]) * estimate",
                                                      "w = np.median(x, axis=0)")
    (work / "solution.py").write_text(text)
    code, output = invoke("task", "score", str(work), "--json", str(tmp_path / "t2.json"))
    t2 = json.loads((tmp_path / "t2.json").read_text())
    assert code == 0 and t2["status"] == "ok" and t2["normalized"] > 0.5, output
    # trial 3: a broken edit is recorded, and the campaign goes on
    (work / "solution.py").write_text("raise SystemExit(4)\n")
    code, output = invoke("task", "score", str(work), "--json", str(tmp_path / "t3.json"))
    assert json.loads((tmp_path / "t3.json").read_text())["status"] == "crash"
    code, output = invoke("task", "score", str(work))
    assert code == 2 and "budget" in output  # budget of 3 spent
    code, output = invoke("task", "submit", str(work), "--json", str(tmp_path / "final.json"))
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["agent"] == "claude-test" and final["agent_kind"] == "ai" and final["best"]["trial"] == 2
    assert final["best"]["normalized_test"] > 0.5
    record = RunStore().campaign(final["campaign_id"])
    assert "np.median" in record.trials[1].diff and record.trials[1].files["solution.py"] == text


def test_main_job_runs_campaigns_then_leaderboard_and_report(tmp_path, monkeypatch):
    # The real main job runs sae/toy and proofs/maxk (minutes); the same path on the demo task here.
    monkeypatch.setattr("interpgym.cli.harness.MAIN_JOB_TASKS", ("demo/mean",))
    out, report = tmp_path / "run.json", tmp_path / "report"
    code, output = invoke("run", "--trials", "3", "--out", str(report), "--json", str(out))
    assert code == 0, output
    data = json.loads(out.read_text())
    (campaign,) = data["campaigns"]
    assert campaign["agent"] == "optuna" and len(campaign["trials"]) == 3 and campaign["best"]["test"] is not None
    assert any(row["task"] == "demo/mean" and row["agent"] == "optuna" for row in data["leaderboard"])
    index = (report / "index.html").read_text()
    assert campaign["campaign_id"] in index


def test_optuna_does_not_repeat_a_tried_point_of_a_small_space():
    from interpgym.harness.agents.search import OptunaAgent
    from interpgym.harness.records import TrialRecord

    class Small:
        id, version, instructions, direction, editable_files = "t", "1", "", "max", {}
        search_space = {"choice": {"type": "categorical", "choices": list("abcdef")}}

    agent, history = OptunaAgent(seed=0, n_startup_trials=2), []
    for n in range(1, 7):
        params = agent.propose(Small(), history).params
        history.append(TrialRecord(n=n, status="ok", val_score=float("abcdef".index(params["choice"])),
                                   normalized=None, params=params))
    assert sorted(t.params["choice"] for t in history) == list("abcdef")  # six proposals, six distinct points


def test_leaderboard_json_has_a_row_per_task_and_agent(tmp_path, monkeypatch):
    from interpgym.core.cache import home

    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path / "home"))  # a board with only this test's campaigns
    assert home() == tmp_path / "home"
    run_campaign("demo/mean", "starting", seed=0)
    run_campaign("demo/mean", "reference", seed=0)
    out = tmp_path / "board.json"
    code, output = invoke("leaderboard", "--task", "demo/mean", "--json", str(out))
    assert code == 0, output
    data = json.loads(out.read_text())
    rows = data["rows"]
    by_agent = {row["agent"]: row for row in rows}
    assert set(by_agent) == {"starting", "reference"}
    for row in rows:
        assert row["task"] == "demo/mean" and row["trials"] == 1 and row["campaigns"] == 1
        assert set(row["failures"]) == {"invalid", "crash", "timeout", "oom"} and sum(row["failures"].values()) == 0
        assert row["wall_s"] > 0
    assert by_agent["starting"]["best_normalized_test"] == pytest.approx(0.0, abs=1e-6)
    assert by_agent["reference"]["best_normalized_test"] == pytest.approx(1.0, abs=1e-6)
    assert by_agent["reference"]["rank"] < by_agent["starting"]["rank"]


def test_error_gist_shows_the_informative_line():
    from interpgym.cli.harness import _error_gist

    tail = "Traceback (most recent call last):\n  File \"solution.py\", line 3\nValueError: bad k\n\n"
    assert _error_gist(tail) == "ValueError: bad k"
    assert _error_gist(None) == ""
    long = "x" * 100
    assert _error_gist(long) == "x" * 59 + "…" and len(_error_gist(long)) == 60

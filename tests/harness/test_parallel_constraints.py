"""Parallel trials (`--workers N`), resume guards, and search that respects a task's declared constraints."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from interpgym.core.errors import UserError
from interpgym.harness.agents.search import OptunaAgent, RandomAgent
from interpgym.harness.campaign import run_campaign
from interpgym.harness.executors import execute_proposal
from interpgym.harness.records import Proposal
from interpgym.harness.sandbox import Limits
from interpgym.harness.store import RunStore
from interpgym.harness.task import Constraint
from interpgym.harness.tasks import get_task
from tests.harness.test_campaign import invoke
from tests.harness.test_store_resume import _campaigns, _cli, _committed

SHRINK_AT_MOST_HALF = Constraint(name="shrink <= 0.5", description="shrink must be at most 0.5",
                                 violation=lambda p: p["shrink"] - 0.5)


@pytest.fixture
def constrained(demo, monkeypatch):
    """demo/mean with a declared constraint (shrink <= 0.5), registered under its own id."""
    task = dataclasses.replace(demo, constraints=(SHRINK_AT_MOST_HALF,))
    monkeypatch.setattr("interpgym.harness.campaign.get_task", lambda task_id: task)
    return task


def test_a_proposal_breaking_a_declared_constraint_is_invalid_without_running(constrained):
    outcome = execute_proposal(constrained, Proposal(params={"shrink": 0.9, "trim": 0.1}), seed=0,
                               limits=Limits(timeout_s=30, memory_mb=1024), keep_to=Path("/nonexistent/never"))
    assert outcome.status == "invalid" and outcome.sandbox is None
    assert "shrink <= 0.5" in outcome.error and "at most 0.5" in outcome.error


def test_random_samples_only_the_valid_region(constrained):
    agent = RandomAgent(seed=3)
    proposals = [agent.propose(constrained, [], pending=[Proposal()] * i) for i in range(40)]
    assert all(p.params["shrink"] <= 0.5 for p in proposals)
    assert len({p.params["shrink"] for p in proposals}) == 40  # distinct draws per trial number


def test_optuna_proposes_valid_points_and_learns_from_invalid_trials(constrained, starting_val):
    record = run_campaign("demo/mean", "optuna", trials=8, seed=4)
    assert all(t.params["shrink"] <= 0.5 for t in record.trials)
    assert all(t.status == "ok" for t in record.trials)
    # A history where every shrink > 0.3 failed: TPE ranks those infeasible and samples below.
    history = run_campaign("demo/mean", "random", trials=6, seed=1).trials
    for t in history:
        if t.params["shrink"] > 0.3:
            t.status, t.val_score = "invalid", None
    assert any(t.status == "invalid" for t in history) and any(t.status == "ok" for t in history)
    agent = OptunaAgent(seed=0, starting_score=starting_val, n_startup_trials=3)
    draws = [agent.propose(constrained, history, pending=[Proposal()] * i).params["shrink"] for i in range(12)]
    assert all(d <= 0.5 for d in draws)
    assert np.mean(np.array(draws) <= 0.3) >= 0.75, draws


def test_workers_one_matches_the_sequential_loop(demo, starting_val):
    """--workers 1 proposes and scores exactly what one agent.propose after another does."""
    record = run_campaign("demo/mean", "optuna", trials=6, seed=7, workers=1)
    agent = OptunaAgent(seed=7, starting_score=starting_val)
    history = []
    for trial in record.trials:
        assert agent.propose(demo, history).params == trial.params
        history.append(trial)
    again = run_campaign("demo/mean", "optuna", trials=6, seed=7)
    assert [t.val_score for t in again.trials] == [t.val_score for t in record.trials]


def test_workers_run_a_batch_commit_in_order_and_spread_the_batch(demo):
    seen_pending: list[int] = []
    real = OptunaAgent.propose

    def spy(self, task, history, pending=()):
        seen_pending.append(len(pending))
        return real(self, task, history, pending)

    OptunaAgent.propose = spy
    try:
        record = run_campaign("demo/mean", "optuna", trials=8, seed=2, workers=3)
    finally:
        OptunaAgent.propose = real
    assert [t.n for t in record.trials] == list(range(1, 9))
    assert max(seen_pending) >= 2  # three in flight: proposals saw the others still uncommitted
    params = [tuple(sorted(t.params.items())) for t in record.trials]
    assert len(set(params)) == 8  # the constant liar never proposes a running point again
    assert record.status == "finished" and record.normalized_test is not None
    random = run_campaign("demo/mean", "random", trials=5, seed=9, workers=3)
    sequential = run_campaign("demo/mean", "random", trials=5, seed=9)
    assert [t.params for t in random.trials] == [t.params for t in sequential.trials]


def test_resume_refuses_another_task_or_agent():
    record = run_campaign("demo/mean", "random", trials=1, seed=0)
    cid = record.campaign_id
    code, output = invoke("campaign", "run", "sae/toy", "--resume", cid)
    assert code == 2 and f"campaign {cid} runs agent random on task demo/mean" in output and "not task sae/toy" in output
    code, output = invoke("campaign", "run", "demo/mean", "--agent", "optuna", "--resume", cid)
    assert code == 2 and "runs agent random on task demo/mean" in output and "not agent optuna" in output
    with pytest.raises(UserError, match="--workers must be >= 1"):
        run_campaign("demo/mean", "random", trials=1, workers=0)


def test_campaign_run_and_show_print_the_trials_and_json_has_them(tmp_path):
    out = tmp_path / "c.json"
    code, output = invoke("campaign", "run", "demo/mean", "--agent", "random", "--trials", "3", "--seed", "2",
                          "--workers", "2", "--json", str(out))
    assert code == 0, output
    data = json.loads(out.read_text())
    for t in data["trials"]:
        assert {"params", "diff", "note", "metrics", "error"} <= set(t)
        assert set(t["params"]) == {"shrink", "trim"} and "mse" in t["metrics"]
    best = next(t for t in data["trials"] if t["n"] == data["best"]["trial"])
    shrink = f"shrink={best['params']['shrink']:.3g}"
    assert shrink in output and "best config: shrink=" in output  # the winning config is shown
    code, shown = invoke("campaign", "show", data["campaign_id"])
    assert code == 0 and shrink in shown and "best config" in shown and not shown.lstrip().startswith("{")


def test_leaderboard_lists_campaign_ids(tmp_path):
    record = run_campaign("demo/mean", "random", trials=1, seed=3)
    out = tmp_path / "lb.json"
    code, output = invoke("leaderboard", "--task", "demo/mean", "--json", str(out))
    assert code == 0, output
    rows = json.loads(out.read_text())["rows"]
    row = next(r for r in rows if r["agent"] == "random")
    assert record.campaign_id in row["campaign_ids"] and record.campaign_id in output


@pytest.mark.parametrize("kill_after_trials", [0, 2, pytest.param(4, marks=pytest.mark.slow)])
def test_sigkill_with_workers_then_resume_loses_and_duplicates_nothing(tmp_path, monkeypatch, kill_after_trials):
    home = tmp_path / "home"
    monkeypatch.setenv("INTERPGYM_HOME", str(home))
    RunStore()
    db = home / "runs.db"
    trials = 6
    proc = _cli("campaign", "run", "demo/mean", "--agent", "random", "--trials", str(trials), "--seed", "5",
                "--workers", "3")
    deadline = time.time() + 90
    while not _campaigns(db) and time.time() < deadline:
        time.sleep(0.005)
    while len(_committed(db)) < kill_after_trials and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _committed(db)
    assert len(before) < trials and len(before) >= kill_after_trials
    (campaign_id,) = _campaigns(db)
    resumed = _cli("campaign", "run", "--resume", campaign_id, "--workers", "2", "--json", str(tmp_path / "o.json"))
    _, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err.decode()
    assert _committed(db) == [(campaign_id, n) for n in range(1, trials + 1)]
    assert set(before) <= set(_committed(db))
    clean = run_campaign("demo/mean", "random", trials=trials, seed=5)
    killed = RunStore().campaign(campaign_id)
    assert [t.params for t in killed.trials] == [t.params for t in clean.trials]
    assert [t.val_score for t in killed.trials] == pytest.approx([t.val_score for t in clean.trials])


def test_sae_toy_declares_the_k_constraint():
    task = get_task("sae/toy")
    assert task.violated_constraint({"arch": "topk", "k": 6}) is not None
    assert "k <= L0 budget" in task.violated_constraint({"arch": "batchtopk", "k": 8})
    assert task.violated_constraint({"arch": "topk", "k": 5}) is None
    assert task.violated_constraint({"arch": "batchtopk", "k": 5}) is not None  # held-out L0 only averages k
    assert task.violated_constraint({"arch": "batchtopk", "k": 4}) is None
    task.validate_params(task.starting.params)
    task.validate_params(task.reference.params)
    rng = np.random.default_rng(0)
    from interpgym.harness.agents.search import sample_valid

    draws = [sample_valid(task, task.search_space, rng) for _ in range(200)]
    assert all(d["k"] <= (5 if d["arch"] == "topk" else 4) for d in draws)
    assert {d["arch"] for d in draws} == {"topk", "batchtopk"}

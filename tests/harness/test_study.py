"""The study: budget curves (mean ± SEM over campaigns), the `study` command, ranking on >= 3 campaigns."""

from __future__ import annotations

import json
import math

import pytest

from interpgym.harness.leaderboard import leaderboard_rows
from interpgym.harness.records import Budgets, CampaignRecord, TrialRecord
from interpgym.harness.study import budget_curves, mean_sem
from tests.harness.test_campaign import invoke


def _campaign(cid: str, agent: str, scores: list[float | None], wall: float = 10.0, test: float | None = None,
              kind: str = "builtin") -> CampaignRecord:
    trials = [TrialRecord(n=i + 1, status="ok" if s is not None else "invalid", val_score=s, normalized=s, wall_s=wall)
              for i, s in enumerate(scores)]
    return CampaignRecord(campaign_id=cid, task="demo/mean", task_version="2", agent=agent, agent_kind=kind,  # type: ignore[arg-type]
                          seed=0, budgets=Budgets(), harness_version="1", status="finished", trials=trials,
                          normalized_test=test, started_at=float(cid[-1]))


def test_budget_curves_by_hand() -> None:
    curves = budget_curves([
        _campaign("a1", "x", [0.2, None, 0.5], test=0.4),
        _campaign("a2", "x", [None, 0.4], test=0.6),
        _campaign("a3", "x", [0.1, 0.3, 0.2], test=0.5),
        _campaign("b1", "alice", [0.9], wall=60.0, test=0.8, kind="human"),
    ])
    alice, x = curves
    assert alice.agent_kind == "human" and [p["mean"] for p in alice.by_trial] == [0.9]
    # x, trial 1: best so far 0.2, 0 (nothing scored yet: the starting solution), 0.1
    assert x.by_trial[0]["mean"] == pytest.approx(0.1) and x.by_trial[0]["campaigns"] == 3
    assert x.by_trial[0]["sem"] == pytest.approx(math.sqrt(((0.1) ** 2 + 0.1 ** 2 + 0) / 2 / 3))
    # trial 3: only a1 and a3 ran it: 0.5 and 0.3
    assert x.by_trial[2]["mean"] == pytest.approx(0.4) and x.by_trial[2]["campaigns"] == 2
    assert (x.test_mean, x.test_scores) == (pytest.approx(0.5), 3) and x.test_sem == pytest.approx(0.1 / math.sqrt(3))
    assert x.status_fractions["invalid"] == pytest.approx(2 / 8) and x.status_fractions["ok"] == pytest.approx(6 / 8)
    # by time: the grid ends at the longest campaign (60 s); at 60 s every x campaign has ended
    assert x.by_time[-1]["seconds"] == pytest.approx(60.0) and x.by_time[-1]["mean"] == pytest.approx((0.5 + 0.4 + 0.3) / 3)
    assert x.by_time[0]["seconds"] == pytest.approx(3.0) and x.by_time[0]["mean"] == 0.0  # no trial done by 3 s
    assert mean_sem([]) == (None, None) and mean_sem([2.0]) == (2.0, None)


def test_leaderboard_ranks_on_the_mean_only_with_three_campaigns() -> None:
    three = [_campaign(f"t{i}", "steady", [0.5], test=t) for i, t in enumerate((0.5, 0.6, 0.7))]
    lucky = [_campaign("l1", "lucky", [0.9], test=0.95)]
    rows = {r.agent: r for r in leaderboard_rows(three + lucky)}
    assert rows["steady"].ranked and rows["steady"].rank == 1 and not rows["lucky"].ranked
    assert rows["steady"].mean_normalized_test == pytest.approx(0.6)
    assert rows["steady"].sem_normalized_test == pytest.approx(0.1 / math.sqrt(3))
    assert rows["steady"].to_json()["campaign_ids"] == ["t0", "t1", "t2"]


def test_study_command_runs_campaigns_and_reports_curves(tmp_path) -> None:
    out = tmp_path / "study.json"
    code, output = invoke("study", "demo/mean", "--agents", "random,optuna", "--campaigns", "3", "--trials", "3",
                          "--out", str(tmp_path / "report"), "--json", str(out))
    assert code == 0, output
    data = json.loads(out.read_text())
    agents = {a["agent"]: a for a in data["agents"]}
    assert {"random", "optuna"} <= set(agents)
    for name in ("random", "optuna"):
        assert len(agents[name]["campaign_ids"]) >= 3 and len(agents[name]["by_trial"]) == 3
        assert agents[name]["test"]["campaigns"] >= 3 and agents[name]["test"]["sem"] is not None
        assert agents[name]["status_fractions"]["ok"] == 1.0
    from interpgym.harness.tasks import get_task

    assert (tmp_path / "report" / "curves" / f"demo-mean-v{get_task('demo/mean').version}.png").exists()
    assert "Budget curves" in (tmp_path / "report" / "index.html").read_text()
    code, output = invoke("study", "demo/mean", "--agents", "", "--campaigns", "3")
    assert code == 2 and "--agents" in output
    code, output = invoke("study", "demo/mean", "--agents", "random,genius", "--campaigns", "1")
    assert code == 2 and "unknown agent(s) genius" in output

"""Leaderboard rows: pooling, ranking, failures, noise marks, rendering, JSON."""

from __future__ import annotations

import json
import random

import pytest
from rich.console import Console

from interpgym.core.errors import UserError
from interpgym.harness.leaderboard import leaderboard_rows, noise_floor, render_leaderboard
from interpgym.harness.records import Budgets, CampaignRecord, TrialRecord


def trial(n: int, status: str = "ok", normalized: float | None = None, wall_s: float = 1.0) -> TrialRecord:
    val = None if normalized is None else 10.0 * normalized
    return TrialRecord(n=n, status=status, val_score=val, normalized=normalized, wall_s=wall_s)  # type: ignore[arg-type]


def campaign(
    cid: str,
    agent: str,
    kind: str,
    trials: list[TrialRecord],
    normalized_test: float | None,
    task: str = "sae/toy",
    version: str = "1",
) -> CampaignRecord:
    return CampaignRecord(
        campaign_id=cid,
        task=task,
        task_version=version,
        agent=agent,
        agent_kind=kind,  # type: ignore[arg-type]
        seed=0,
        budgets=Budgets(),
        harness_version="test",
        status="finished",
        trials=trials,
        normalized_test=normalized_test,
        test_score=None if normalized_test is None else 10.0 * normalized_test,
    )


CAMPAIGNS = [
    campaign("o1", "optuna", "builtin", [trial(0, normalized=0.5), trial(1, "crash"), trial(2, normalized=0.9)], 0.85),
    campaign("o2", "optuna", "builtin", [trial(0, normalized=0.7), trial(1, "timeout", wall_s=30.0)], 0.75),
    campaign("r1", "random", "builtin", [trial(0, normalized=0.2), trial(1, "invalid"), trial(2, "invalid")], 0.2),
    campaign("h1", "alice", "human", [trial(0, normalized=0.95)], 0.82),
    campaign("a1", "claude", "ai", [trial(0, normalized=1.3)], None),  # still running: no test score
    campaign("p1", "optuna", "builtin", [trial(0, normalized=0.4)], 0.4, task="proofs/maxk"),
    campaign("v2", "optuna", "builtin", [trial(0, normalized=0.1)], 0.1, version="2"),
]


def test_rows_pool_campaigns_per_task_version_and_agent() -> None:
    rows = leaderboard_rows(CAMPAIGNS)
    boards = [(row.task, row.task_version, row.agent) for row in rows]
    assert boards == [
        ("proofs/maxk", "1", "optuna"),
        ("sae/toy", "1", "optuna"),
        ("sae/toy", "1", "alice"),
        ("sae/toy", "1", "random"),
        ("sae/toy", "1", "claude"),
        ("sae/toy", "2", "optuna"),
    ]
    optuna = rows[1]
    assert (optuna.campaigns, optuna.trials, optuna.ok) == (2, 5, 3)
    assert optuna.failures == {"invalid": 0, "crash": 1, "timeout": 1, "oom": 0}
    assert optuna.best_normalized_val == 0.9 and optuna.best_val == 9.0
    assert optuna.best_normalized_test == 0.85 and optuna.best_test == pytest.approx(8.5)
    assert optuna.mean_normalized_test == pytest.approx(0.8)
    assert optuna.wall_s == pytest.approx(34.0)
    assert [row.rank for row in rows[1:5]] == [1, 2, 3, 4]
    # Without a test score a row ranks after every tested row, even with the best val.
    claude = rows[4]
    assert claude.best_normalized_test is None and claude.best_normalized_val == 1.3 and claude.agent_kind == "ai"
    assert rows[3].failures["invalid"] == 2


def test_order_of_campaigns_does_not_matter() -> None:
    shuffled = list(CAMPAIGNS)
    random.Random(0).shuffle(shuffled)
    assert leaderboard_rows(shuffled) == leaderboard_rows(CAMPAIGNS)


def test_noise_marks() -> None:
    rows = {row.agent: row for row in leaderboard_rows(CAMPAIGNS, {"sae/toy": 0.05}) if row.task_version == "1"}
    assert rows["optuna"].tied_with_leader is True  # the leader itself
    assert rows["alice"].tied_with_leader is True  # 0.85 - 0.82 <= 0.05
    assert rows["random"].tied_with_leader is False
    assert rows["claude"].tied_with_leader is None and rows["claude"].vs_reference is None
    assert rows["optuna"].vs_reference == "below" and rows["optuna"].vs_starting == "above"
    without_floor = leaderboard_rows(CAMPAIGNS)
    assert all(row.tied_with_leader is None and row.vs_reference is None for row in without_floor)
    near_ref = leaderboard_rows([campaign("x", "a", "ai", [trial(0, normalized=0.98)], 0.98)], {"sae/toy": 0.05})
    assert near_ref[0].vs_reference == "within noise"
    # A deterministic task (floor 0): float rounding is not progress.
    rederived = leaderboard_rows([campaign("x", "a", "ai", [trial(0, normalized=1.0)], 1.0 + 4e-8)], {"sae/toy": 0.0})
    assert rederived[0].vs_reference == "within noise"
    better = leaderboard_rows([campaign("x", "a", "ai", [trial(0, normalized=1.0)], 1.001)], {"sae/toy": 0.0})
    assert better[0].vs_reference == "above"


def test_noise_floor_from_reference_seeds() -> None:
    assert noise_floor([0.80, 0.82, 0.81], start_score=0.3, reference_score=0.81) == pytest.approx(0.02 / 0.51)
    # Direction does not matter: a lower-is-better task has s_ref < s_start.
    assert noise_floor([1.0, 1.5, 1.2], start_score=5.0, reference_score=1.2) == pytest.approx(0.5 / 3.8)
    with pytest.raises(UserError, match=">= 3"):
        noise_floor([0.8, 0.81], 0.3, 0.8)
    with pytest.raises(UserError, match="must differ"):
        noise_floor([0.8, 0.81, 0.82], 0.8, 0.8)
    with pytest.raises(UserError, match="noise floor"):
        leaderboard_rows(CAMPAIGNS, {"sae/toy": float("nan")})


def test_json_rows_and_rendering() -> None:
    rows = leaderboard_rows(CAMPAIGNS, {"sae/toy": 0.05})
    payload = json.loads(json.dumps([row.to_json() for row in rows], allow_nan=False))
    assert set(payload[0]) >= {
        "task",
        "task_version",
        "agent",
        "agent_kind",
        "rank",
        "trials",
        "ok",
        "failures",
        "best_normalized_val",
        "best_normalized_test",
        "wall_s",
        "noise_floor",
        "tied_with_leader",
    }
    console = Console(record=True, width=220)
    console.print(render_leaderboard(rows))
    text = console.export_text()
    for name in ("optuna", "alice", "random", "claude", "human", "crash 1, timeout 1", "invalid 2", "tied with leader"):
        assert name in text
    assert leaderboard_rows([]) == []


def test_rendering_fits_an_80_column_terminal() -> None:
    rows = leaderboard_rows(CAMPAIGNS, {"sae/toy": 0.05})
    console = Console(record=True, width=80)
    console.print(render_leaderboard(rows))
    text = console.export_text()
    assert "…" not in text  # no squeezed cells
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in ("sae/toy", "optuna", "alice", "claude", "(human)", "invalid 2", "< ref", "tied with"):
        assert name in text, name
    for row in rows:
        if row.best_normalized_test is not None:
            assert f"{row.best_normalized_test:.3f}" in text

"""The run store survives SIGKILL: `--resume` finishes the campaign without losing or duplicating a trial."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interpgym.harness.campaign import run_campaign
from interpgym.harness.records import Budgets, TrialRecord
from interpgym.harness.store import RunStore

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "interpgym", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _committed(db: Path) -> list[tuple[str, int]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute("SELECT campaign_id, n FROM trials ORDER BY campaign_id, n").fetchall()
        except sqlite3.OperationalError:
            return []


def _campaigns(db: Path) -> list[str]:
    with sqlite3.connect(db, timeout=30) as con:
        return [r[0] for r in con.execute("SELECT campaign_id FROM campaigns")]


@pytest.mark.parametrize("kill_after_trials", [0, 3])
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path, monkeypatch, kill_after_trials):
    home = tmp_path / "home"
    monkeypatch.setenv("INTERPGYM_HOME", str(home))
    RunStore()  # creates runs.db
    db = home / "runs.db"
    trials = 7

    proc = _cli("campaign", "run", "demo/mean", "--agent", "random", "--trials", str(trials), "--seed", "5")
    deadline = time.time() + 60
    while not _campaigns(db) and time.time() < deadline:
        time.sleep(0.005)
    while len(_committed(db)) < kill_after_trials and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # a real SIGKILL: no handler, no cleanup
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = _committed(db)
    assert len(before) < trials
    (campaign_id,) = _campaigns(db)

    resumed = _cli("campaign", "run", "demo/mean", "--resume", campaign_id, "--json", str(tmp_path / "out.json"))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err.decode()
    result = json.loads((tmp_path / "out.json").read_text())
    assert [t["n"] for t in result["trials"]] == list(range(1, trials + 1))
    assert _committed(db) == [(campaign_id, n) for n in range(1, trials + 1)]
    assert set(before) <= set(_committed(db))  # nothing committed before the kill was lost

    # Same seed, never killed: the very same proposals and scores (the random agent is a function of (seed, n)).
    monkeypatch.setenv("INTERPGYM_HOME", str(home))
    clean = run_campaign("demo/mean", "random", trials=trials, seed=5)
    killed = RunStore().campaign(campaign_id)
    assert [t.params for t in killed.trials] == [t.params for t in clean.trials]
    assert [t.val_score for t in killed.trials] == pytest.approx([t.val_score for t in clean.trials])
    assert killed.status == "finished" and killed.test_score == pytest.approx(clean.test_score)


def test_trial_numbers_are_enforced(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    cid = store.create_campaign(task="demo/mean", task_version="1", agent="x", agent_kind="builtin", seed=0,
                                budgets=Budgets(trials=3), harness_version="1")
    store.add_trial(cid, TrialRecord(n=1, status="ok", val_score=1.0, normalized=0.5))
    with pytest.raises(RuntimeError, match="out of order"):
        store.add_trial(cid, TrialRecord(n=1, status="ok", val_score=1.0, normalized=0.5))
    with pytest.raises(RuntimeError, match="out of order"):
        store.add_trial(cid, TrialRecord(n=3, status="ok", val_score=1.0, normalized=0.5))
    assert [t.n for t in store.trials(cid)] == [1]
    with sqlite3.connect(tmp_path / "runs.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_budgets_stay_typed_through_the_store(tmp_path):
    """Budgets become a dict only inside the store: what goes in comes back as the same `Budgets`,
    and a row from an older store that lacks a key reads with that key's default."""
    store = RunStore(tmp_path / "runs.db")
    budgets = Budgets(trials=3, minutes=2.5, trial_timeout_s=7.0, trial_memory_mb=512)
    cid = store.create_campaign(task="demo/mean", task_version="1", agent="x", agent_kind="builtin", seed=0,
                                budgets=budgets, harness_version="1")
    assert store.campaign(cid).budgets == budgets
    with sqlite3.connect(tmp_path / "runs.db") as con:
        con.execute("UPDATE campaigns SET budgets=? WHERE campaign_id=?", ('{"trials": 4}', cid))
    assert store.campaign(cid).budgets == Budgets(trials=4)

"""The run store fails with one clear line when its file is unusable, and commands that need no store still work."""

from __future__ import annotations

import os

import pytest

from interpgym.core.cache import home
from interpgym.core.errors import UserError
from interpgym.harness.store import RunStore
from tests.harness.test_campaign import invoke


@pytest.fixture
def corrupt_store(tmp_path, monkeypatch) -> str:
    # A home of its own: the session's shared home (and its store) must stay intact for other tests.
    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path / "home"))
    path = home() / "runs.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(4096))
    return str(path)


def test_a_corrupt_store_is_named_with_the_fix(corrupt_store):
    with pytest.raises(UserError, match="is corrupt.*move it aside"):
        RunStore()


@pytest.mark.parametrize("args", [["leaderboard"], ["report", "--out", "/tmp/interpgym-report-test"],
                                  ["campaign", "show", "x"]])
def test_store_commands_exit_2_with_one_line(corrupt_store, args):
    code, output = invoke(*args)
    assert code == 2 and "is corrupt" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_commands_without_the_store_still_work(corrupt_store, monkeypatch):
    monkeypatch.setattr("interpgym.harness.tasks.TASKS", {"demo/mean": "interpgym.harness.tasks.demo_mean:make_task"})
    code, output = invoke("tasks")
    assert code == 0 and "demo/mean" in output

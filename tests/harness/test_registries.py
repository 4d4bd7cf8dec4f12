"""The harness registries fail loudly on interpgym's own broken imports and name a missing optional package."""

from __future__ import annotations

import pytest

from interpgym.core.errors import UserError
from interpgym.harness import tasks


@pytest.fixture(autouse=True)
def fresh_registry():
    tasks.get_task.cache_clear()
    yield
    tasks.get_task.cache_clear()


def test_our_own_import_error_surfaces(monkeypatch):
    monkeypatch.setitem(tasks.TASKS, "broken/own", "interpgym.harness.tasks.no_such_module:make_task")
    with pytest.raises(ModuleNotFoundError, match="interpgym.harness.tasks.no_such_module"):
        tasks.get_task("broken/own")
    with pytest.raises(ModuleNotFoundError):
        tasks.available_task_ids()  # never silently dropped from `interpgym tasks`


def test_a_missing_third_party_package_is_named(monkeypatch):
    monkeypatch.setitem(tasks.TASKS, "needs/extra", "interpgym_test_absent_package.module:make_task")
    with pytest.raises(UserError, match="interpgym_test_absent_package"):
        tasks.get_task("needs/extra")
    assert "needs/extra" not in tasks.available_task_ids()

"""Fixtures for the harness tests: the fast `demo/mean` task and its starting score."""

from __future__ import annotations

import pytest

from interpgym.harness.campaign import baselines
from interpgym.harness.task import Task
from interpgym.harness.tasks import get_task


@pytest.fixture
def demo() -> Task:
    return get_task("demo/mean")


@pytest.fixture
def starting_val(demo: Task) -> float:
    return baselines(demo).starting_val

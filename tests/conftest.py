"""Test-wide fixtures: every test gets a private, empty INTERPGYM_HOME unless it shares the session one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Small models are fastest (and reproducible) on one thread; CI has two cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One INTERPGYM_HOME shared by the whole session, so trained subjects are built once."""
    return tmp_path_factory.mktemp("interpgym_home")


@pytest.fixture(autouse=True)
def _isolated_home(shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERPGYM_HOME", str(shared_home))
    for key in list(os.environ):
        if key.endswith("_API_KEY"):
            monkeypatch.delenv(key, raising=False)

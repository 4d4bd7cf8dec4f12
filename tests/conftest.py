"""Test-wide fixtures: every test gets a private, empty INTERPGYM_HOME unless it shares the session one."""

from __future__ import annotations

import os
import subprocess
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


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory no one (root included) can create files in: chmod for users, chattr +i for root."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        (directory / ".probe").touch()
    except OSError:
        return directory
    (directory / ".probe").unlink()
    if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr: no way to make a read-only directory here")
    return directory


@pytest.fixture
def read_only_dir(tmp_path: Path):
    directory = _read_only_dir(tmp_path)
    yield directory
    subprocess.run(["chattr", "-i", str(directory)], capture_output=True)
    directory.chmod(0o755)

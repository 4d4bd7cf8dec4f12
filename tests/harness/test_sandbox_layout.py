"""The sandbox works wherever interpgym is installed, including under the host's /tmp (a CI clone)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import interpgym
from interpgym.harness.sandbox import namespaces_available

RUN_INSIDE = """
import sys, tempfile
from pathlib import Path
from interpgym.harness import sandbox
ws = Path(tempfile.mkdtemp())
result = sandbox.run_sandboxed([sys.executable, "-c", "import interpgym; print(interpgym.__file__)"], ws,
                               sandbox.Limits(timeout_s=60), env={"PYTHONPATH": sys.argv[1]})
print(result.returncode, result.stdout_tail.strip(), result.stderr_tail[-500:])
"""


@pytest.mark.skipif(not namespaces_available(), reason="the isolated sandbox is unavailable here")
def test_an_installation_under_tmp_is_visible_inside_the_sandbox(tmp_path: Path) -> None:
    # The sandbox mounts a private /tmp: an installation below the host's /tmp must be bound on top of it
    # (it used to be covered, and every trial of a CI clone under /tmp failed).
    assert str(tmp_path).startswith("/tmp/"), "this test needs a pytest tmp_path under /tmp"
    copy = tmp_path / "src"
    shutil.copytree(Path(interpgym.__file__).resolve().parent, copy / "interpgym",
                    ignore=shutil.ignore_patterns("__pycache__"))
    probe = subprocess.run([sys.executable, "-c", RUN_INSIDE, str(copy)], capture_output=True, text=True, timeout=180,
                           env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert probe.returncode == 0, probe.stderr[-2000:]
    returncode, location = probe.stdout.split()[:2]
    assert returncode == "0" and location.startswith(str(copy)), probe.stdout

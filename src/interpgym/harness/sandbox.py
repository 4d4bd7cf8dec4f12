"""Run untrusted solution code in a contained subprocess.

`run_sandboxed(argv, workspace, limits, hidden)` runs `argv` with the workspace as its
working directory and guarantees, whatever the code does:

* **time**: the whole process tree is killed (SIGKILL to its process group; with a PID
  namespace, killing the namespace's first process kills every process in it, even
  ones that called `setsid`) once `limits.timeout_s` of wall clock has passed;
* **memory**: `RLIMIT_AS` caps each process's address space at `limits.memory_mb`;
  `RLIMIT_NPROC` caps process creation (fork bombs fail with EAGAIN);
* **files** (when namespaces are available): every mount is remounted read-only except
  the workspace, and each directory in `hidden` is covered by an empty read-only tmpfs
  (each file by `/dev/null`), so the harness's cache, run store, private test data and
  the user's credential files cannot be read or written;
* **network** (when namespaces are available): a fresh network namespace with only a
  down loopback device;
* **secrets**: the environment is rebuilt from a small allow-list; nothing named like a
  key, token or secret is passed on.

Namespaces come from util-linux `unshare -r -n -m -p` (unprivileged user namespaces).
Where they are unavailable the run still has time, memory, process and environment
limits, and `SandboxResult.isolation` says `"rlimits-only"` so the record shows it.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Environment variables passed through to the solution (values from the harness env).
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")

# Runs inside the new namespaces, before the solution: make the workspace its own
# writable mount, hide private paths, then remount everything else read-only.
_INIT_SCRIPT = r"""
set -e
ws="$1"; shift
nhidden="$1"; shift
i=0
while [ "$i" -lt "$nhidden" ]; do
  if [ -d "$1" ]; then mount -t tmpfs -o ro,size=4k,mode=000 interpgym-hidden "$1"
  else mount --bind /dev/null "$1"; fi
  shift; i=$((i+1))
done
mount --bind "$ws" "$ws"
awk '{print $5}' /proc/self/mountinfo | while read -r mp; do
  case "$mp" in "$ws"|/proc|/proc/*|/dev|/dev/*|/sys|/sys/*) continue;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
mount -t tmpfs -o size=64m,mode=1777 interpgym-shm /dev/shm 2>/dev/null || true
cd "$ws"  # re-enter through the new writable mount (the inherited cwd points at the old one)
exec "$@"
"""


# First process inside the sandbox: runs the solution as its child, then reports the exit
# status and the peak RSS of the solution's process tree on a pipe. (The harness can't
# measure this itself: a forked child's max RSS starts at the harness's own RSS.) The
# solution does not inherit the pipe (close_fds), so it cannot forge the report.
_REPORTER = (
    "import os, resource, subprocess, sys\n"
    "fd = int(sys.argv[1])\n"
    "try:\n"
    "    rc = subprocess.call(sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    print(f'cannot start solution: {exc}', file=sys.stderr); rc = 127\n"
    "peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "os.write(fd, f'{rc} {peak_kib}'.encode())\n"
    "sys.exit(0)\n"
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run."""

    timeout_s: float = 300.0
    memory_mb: int = 4096
    max_processes: int = 64
    max_output_mb: int = 256  # RLIMIT_FSIZE: largest file the solution may write


@dataclass
class SandboxResult:
    """What happened to one sandboxed run (the harness decides the trial status)."""

    returncode: int | None
    timed_out: bool
    wall_s: float
    peak_mem_mb: float | None
    stdout_tail: str
    stderr_tail: str
    isolation: str  # "namespaces" | "rlimits-only"

    @property
    def killed_by_signal(self) -> int | None:
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None


@functools.cache
def namespaces_available() -> bool:
    """True iff `unshare -r -n -m -p` works here and read-only remounts succeed (probed once)."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run(
            ["unshare", "-r", "-n", "-m", "-p", "--fork", "--kill-child", "--mount-proc",
             "sh", "-c", _INIT_SCRIPT, "interpgym-init", tmp, "0", "sh", "-c", "touch \"$0\"/ok", tmp],
            capture_output=True, timeout=30,
        )
        return probe.returncode == 0 and (Path(tmp) / "ok").exists()


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for untrusted code: allow-listed variables plus `extra`, no secrets."""
    env = {k: os.environ[k] for k in _ENV_ALLOW if k in os.environ}
    env.update(extra or {})
    return {k: v for k, v in env.items() if not any(m in k.upper() for m in _SECRET_MARKERS)}


@functools.cache
def _prctl():  # noqa: ANN202
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1


def _set_limits(limits: Limits, prctl) -> None:  # noqa: ANN001
    # Runs in the child between fork and exec: only async-signal-safe-ish calls.
    os.setsid()
    if prctl is not None:  # if the harness dies (even by SIGKILL), the sandbox dies with it
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_output_mb << 20, limits.max_output_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = limits.max_processes
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _tail(path: Path, chars: int = 4000) -> str:
    """The last `chars` characters of a (possibly huge) output file, reading only its end."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4 * chars))
        return handle.read().decode("utf-8", errors="replace")[-chars:]


def run_sandboxed(
    argv: Sequence[str],
    workspace: Path,
    limits: Limits,
    *,
    hidden: Sequence[Path] = (),  # directories (-> empty tmpfs) and files (-> /dev/null) to hide; others skipped
    env: dict[str, str] | None = None,
) -> SandboxResult:
    """Run `argv` in `workspace` under `limits` (see module docs). Never raises for what the code does.

    stdout/stderr go to files in a harness temp dir (not the workspace), so output volume
    cannot exhaust the harness's memory; only their tails are returned.
    """
    workspace = Path(workspace).resolve()
    isolation = "namespaces" if namespaces_available() else "rlimits-only"
    report_read, report_write = os.pipe()
    command = [sys.executable, "-S", "-c", _REPORTER, str(report_write), *argv]
    if isolation == "namespaces":
        existing_hidden = [str(Path(p).resolve()) for p in hidden if Path(p).is_dir() or Path(p).is_file()]
        # A hidden path that contains the workspace would hide the workspace too.
        existing_hidden = [p for p in existing_hidden if not str(workspace).startswith(p.rstrip("/") + "/")]
        # A path inside another hidden one is hidden already (and no longer exists to mount on).
        existing_hidden = [p for p in existing_hidden
                           if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in existing_hidden)]
        command = ["unshare", "-r", "-n", "-m", "-p", "--fork", "--kill-child", "--mount-proc",
                   "sh", "-c", _INIT_SCRIPT, "interpgym-init", str(workspace),
                   str(len(existing_hidden)), *existing_hidden, *command]
    with tempfile.TemporaryDirectory(prefix="interpgym-io-") as io_dir:
        out_path, err_path = Path(io_dir) / "stdout", Path(io_dir) / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                command, cwd=workspace, env=scrubbed_env(env), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, preexec_fn=functools.partial(_set_limits, limits, _prctl()),
                close_fds=True, pass_fds=(report_write,),
            )
            os.close(report_write)
            timed_out = False
            deadline = start + limits.timeout_s
            status, rusage = 0, None
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    timed_out = True
                    _kill_group(proc.pid)
                    _, status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.02)
            wall = time.perf_counter() - start
            # Whatever the solution left running in its group (rlimits-only mode) dies too.
            _kill_group(proc.pid)
            with os.fdopen(report_read, "rb") as report:
                fields = report.read(256).decode(errors="replace").split()
        returncode, peak = None, None
        if len(fields) == 2 and not timed_out:
            returncode, peak = int(fields[0]), int(fields[1]) / 1024  # Linux ru_maxrss: KiB -> MiB
        elif not timed_out:  # the reporter itself died (e.g. killed for memory before reporting)
            returncode = os.waitstatus_to_exitcode(status) or -9
        return SandboxResult(
            returncode=returncode, timed_out=timed_out, wall_s=wall, peak_mem_mb=peak,
            stdout_tail=_tail(out_path),
            stderr_tail=_tail(err_path), isolation=isolation,
        )


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

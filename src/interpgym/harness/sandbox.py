"""Run untrusted solution code in a contained subprocess.

`run_sandboxed(argv, workspace, limits, hidden)` runs `argv` with the workspace as its
working directory and guarantees, whatever the code does:

* **time**: the whole process tree is killed (SIGKILL to its process group; with a PID
  namespace, killing the namespace's first process kills every process in it, even
  ones that called `setsid`) once `limits.timeout_s` of wall clock has passed;
* **memory**: `RLIMIT_AS` caps each process's address space at `limits.memory_mb`;
  `RLIMIT_NPROC` caps process creation (fork bombs fail with EAGAIN); where a control
  group can be made (`harness.cgroup`, as root) the whole trial shares one memory and
  process budget and its recorded peak counts every process;
* **isolation** (when namespaces are available: the harness is root, or unprivileged user
  namespaces are allowed): the solution runs in fresh mount, PID, network, IPC, UTS and
  cgroup namespaces, in a minimal root of read-only system and Python directories where
  the workspace (at `/workspace`) is the only writable host path, with no capabilities,
  `no_new_privs`, a seccomp filter (no Unix sockets, no new namespaces, no mount calls)
  and, when the harness is root, a fresh unprivileged uid. See `sandbox_init`, which
  builds that root, for the full list. Paths in `hidden` that would still be visible
  there (under a bound directory) are covered by an empty read-only tmpfs or `/dev/null`;
* **an honest report**: exit code and peak memory come from the sandbox's first process,
  which the solution can neither trace nor reach; a report that does not parse is a
  crash of the sandbox, never a number the harness trusts;
* **secrets**: the environment is rebuilt from a small allow-list; nothing named like a
  key, token or secret is passed on.

Where namespaces are unavailable the run still has time, memory, process and environment
limits, and `SandboxResult.isolation` says `"rlimits-only"` so the record shows it; a
root harness then still runs the solution as a fresh unprivileged uid with no
capabilities (it needs a Python that uid can execute).
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from interpgym.core.errors import UserError
from interpgym.harness import sandbox_init
from interpgym.harness.cgroup import TrialCgroup
from interpgym.harness.scratch import scratch_tree

# Environment variables passed through to the solution (values from the harness env).
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")
INSIDE_WORKSPACE = sandbox_init.INSIDE_WORKSPACE
# System directories the minimal root binds read-only (those that exist; symlinks are recreated).
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt/conda",
                 "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/passwd",
                 "/etc/group", "/etc/nsswitch.conf", "/etc/localtime", "/etc/os-release", "/sys")
# Character devices the solution may use; GPUs only where the driver made them.
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
            "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidia1",
            "/dev/nvidia2", "/dev/nvidia3", "/dev/nvidia4", "/dev/nvidia5", "/dev/nvidia6", "/dev/nvidia7")
# Trial uids when the harness is root: far above any real account's, one fresh per run.
_TRIAL_UID_BASE, _TRIAL_UID_SPAN = 1_000_000, 1_000_000
_REPORT = re.compile(r"(-?\d{1,3}) (\d{1,12})")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run."""

    timeout_s: float = 300.0
    memory_mb: int = 4096
    max_processes: int = 64
    max_output_mb: int = 256  # RLIMIT_FSIZE: largest file the solution may write
    disk_mb: int = 1024  # all the solution may write in its workspace, where the harness can enforce it (root)
    max_files: int = 50_000  # entries the solution may create there (same condition)


@dataclass
class SandboxResult:
    """What happened to one sandboxed run (the harness decides the trial status)."""

    returncode: int | None
    timed_out: bool
    wall_s: float
    peak_mem_mb: float | None
    stdout_tail: str
    stderr_tail: str
    isolation: str  # "namespaces" | "rlimits-only", "+cgroup" where the trial had a control group of its own
    oom_killed: bool = False  # the kernel killed a process of the trial's control group for memory

    @property
    def killed_by_signal(self) -> int | None:
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None


def harness_is_root() -> bool:
    return os.geteuid() == 0


_PROBE_OK = False


def namespaces_available() -> bool:
    """True iff the full sandbox works here: a trivial solution runs in it and writes its workspace.

    A success is remembered for the process; a failure is not (a probe that timed out
    under load is retried by the next trial rather than downgrading every later one).
    """
    global _PROBE_OK
    if not _PROBE_OK:
        _PROBE_OK = _probe()
    return _PROBE_OK


def _probe() -> bool:
    if shutil.which("unshare") is None or shutil.which("setpriv") is None or sys.platform != "linux":
        return False
    with scratch_tree("probe-") as tree:
        workspace = tree / "ws"
        workspace.mkdir()
        uid = None
        if harness_is_root():
            uid = _TRIAL_UID_BASE + secrets.randbelow(_TRIAL_UID_SPAN)
            _own([workspace], uid)
        try:
            result = _run_isolated([sys.executable, "-S", "-c", "open('ok', 'w').write('1')"], workspace, tree,
                                   Limits(timeout_s=60), hidden=(), env=None, uid=uid)
        except OSError:
            return False
        return result.returncode == 0 and (workspace / "ok").exists()


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for untrusted code: allow-listed variables plus `extra`, no secrets."""
    env = {k: os.environ[k] for k in _ENV_ALLOW if k in os.environ}
    env.update(extra or {})
    return {k: v for k, v in env.items() if not any(m in k.upper() for m in _SECRET_MARKERS)}


def inside_path(workspace: Path, path: Path) -> str:
    """Where `path` (inside `workspace`) appears to the solution: under `/workspace` when isolated."""
    if not namespaces_available():
        return str(path)
    rel = Path(path).resolve().relative_to(Path(workspace).resolve())
    return str(Path(INSIDE_WORKSPACE) / rel) if rel.parts else INSIDE_WORKSPACE


@functools.cache
def _prctl():
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1


def _set_limits(limits: Limits, prctl, cgroup_fds: Sequence[int] = ()) -> None:
    # Runs in the child between fork and exec: only async-signal-safe-ish calls.
    os.setsid()
    for fd in cgroup_fds:  # join the trial's control group before anything else runs
        os.write(fd, b"0")
    try:  # under memory pressure the kernel kills the trial, not the harness
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass
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


def _python_dirs() -> list[str]:
    """The directories the solution's Python needs: interpreter prefixes and the interpgym installation."""
    import interpgym

    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            str(Path(interpgym.__file__).resolve().parent.parent)}
    dirs |= {str(Path(p).resolve()) for p in dirs}
    dirs.add(str(Path(sys.executable).resolve().parent.parent))
    return sorted(dirs)


def _init_config(argv: Sequence[str], workspace: Path, tree: Path, hidden: Sequence[Path], report_fd: int,
                 uid: int | None) -> dict:
    root = tree / "root"
    root.mkdir()
    return {
        "root": str(root), "workspace": str(workspace), "argv": list(argv), "report_fd": report_fd, "uid": uid,
        "ro_paths": [*_SYSTEM_PATHS, *_python_dirs()], "devices": list(_DEVICES),
        "hidden": [str(Path(p).resolve()) for p in hidden if os.path.lexists(p)],
    }


def _own(paths: Sequence[Path], uid: int) -> None:
    """Hand the writable folders (and everything in them) to the trial's uid; the rest stays root's, read-only."""
    for top in paths:
        os.chown(top, uid, uid, follow_symlinks=False)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def _open_up(workspace: Path) -> None:
    """Make the workspace readable (not writable) by any uid: the trial's uid must read its inputs."""
    for dirpath, _dirnames, filenames in os.walk(workspace):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def _require_executable_by_anyone(program: str) -> None:
    """`UserError` unless an unprivileged uid can execute `program` (every folder on its real path searchable)."""
    path = Path(shutil.which(program) or program).resolve()
    blocked = [p for p in [*reversed(path.parents), path] if not os.stat(p).st_mode & 0o001]
    if blocked:
        raise UserError(f"the sandbox's namespaces are unavailable and the harness runs as root: trials then run as an "
                        f"unprivileged user, who cannot execute {path} ({blocked[0]} is closed to others); install "
                        "Python where any user can run it, or enable user/mount namespaces")


def _parse_report(raw: bytes) -> tuple[int, float] | None:
    """(exit code, peak MiB) from the first process's report, or None if it is not exactly that."""
    match = _REPORT.fullmatch(raw.decode("ascii", errors="replace"))
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) / 1024  # Linux ru_maxrss: KiB -> MiB


def run_sandboxed(
    argv: Sequence[str],
    workspace: Path,
    limits: Limits,
    *,
    hidden: Sequence[Path] = (),  # directories (-> empty tmpfs) and files (-> /dev/null) to hide; others skipped
    env: dict[str, str] | None = None,
    writable: Sequence[Path] = (),  # folders of the workspace the solution may write (default: the workspace)
    prepared: TrialUser | None = None,  # from `prepare_workspace`, when the caller prepared it already
) -> SandboxResult:
    """Run `argv` in `workspace` under `limits` (see module docs). Never raises for what the code does.

    stdout/stderr go to files in the trial's private scratch tree (not the workspace), so
    output volume cannot exhaust the harness's memory; only their tails are returned.
    """
    workspace = Path(workspace).resolve()
    with scratch_tree("run-") as tree:
        user = prepared or prepare_workspace(workspace, tuple(writable) or (workspace,))
        if namespaces_available():
            return _run_isolated(argv, workspace, tree, limits, hidden=hidden, env=env, uid=user.uid)
        if user.uid is not None:  # never run untrusted code as root, isolated or not
            _require_executable_by_anyone(argv[0])
            argv = sandbox_init.solution_command({"uid": user.uid, "argv": list(argv)})
        return _run(argv, workspace, tree, limits, env=env, isolation="rlimits-only", report=False)


@contextmanager
def workspace_quota(workspace: Path, limits: Limits, inputs_bytes: int, inputs_files: int) -> Iterator[bool]:
    """Make `workspace` (empty) a tmpfs holding the inputs plus `limits.disk_mb` and `limits.max_files` more.

    Yields True where enforced (the harness is root): the solution's writes then cannot
    fill the host's disk or inodes, and, being memory, they also count against the
    trial's control group. Elsewhere yields False and changes nothing. The mount is
    removed on exit; a tree left mounted by a killed harness is unmounted by
    `scratch.sweep_stale` before it is removed.
    """
    if not harness_is_root() or sys.platform != "linux":
        yield False
        return
    size = inputs_bytes + (limits.disk_mb << 20) + (64 << 10)  # + the folders' own pages
    inodes = inputs_files + limits.max_files + 64
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes},mode=0700,nosuid,nodev",
                              "interpgym-workspace", str(workspace)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(workspace)], capture_output=True)


@dataclass(frozen=True)
class TrialUser:
    """Who the solution runs as: a fresh unprivileged uid (harness is root) or the harness's own user (None)."""

    uid: int | None


def prepare_workspace(workspace: Path, writable: Sequence[Path]) -> TrialUser:
    """Set the workspace's ownership for one run, before the caller stamps its read-only files.

    As root (with or without namespaces: untrusted code never runs as root): every file becomes readable
    by anyone and writable by root only, the workspace folder becomes sticky (the solution may add entries there, not touch
    root's), and the `writable` folders are handed to a fresh trial uid. Otherwise nothing changes (the
    solution runs as the harness's user, and the harness's read-only check applies).
    """
    if not harness_is_root():
        return TrialUser(uid=None)
    uid = _TRIAL_UID_BASE + secrets.randbelow(_TRIAL_UID_SPAN)
    _open_up(Path(workspace))
    # Sticky and world-writable: the solution may add entries next to its folders (atomic
    # saves rename a sibling temp folder onto artifact/), never remove or rename root's.
    os.chmod(workspace, 0o1777)
    _own(writable, uid)
    return TrialUser(uid=uid)


def _run_isolated(argv: Sequence[str], workspace: Path, tree: Path, limits: Limits, *, hidden: Sequence[Path],
                  env: dict[str, str] | None, uid: int | None) -> SandboxResult:
    namespaces = ["--net", "--mount", "--pid", "--ipc", "--uts", "--cgroup", "--fork", "--kill-child"]
    if not harness_is_root():
        namespaces = ["--user", "--map-root-user", *namespaces]

    def wrap(report_fd: int) -> list[str]:
        # The configuration goes in a file of the private scratch tree, not on the command line,
        # where every local user could read it (/proc/<pid>/cmdline).
        config = tree / "init.json"
        config.write_text(json.dumps(_init_config(argv, workspace, tree, hidden, report_fd, uid)))
        return ["unshare", *namespaces, sys.executable, "-S", "-I", "-B", sandbox_init.__file__, str(config)]

    return _run(argv, workspace, tree, limits, env=env, isolation="namespaces", report=True, wrap=wrap)


def _run(argv: Sequence[str], workspace: Path, tree: Path, limits: Limits, *, env: dict[str, str] | None,
         isolation: str, report: bool, wrap=None) -> SandboxResult:
    report_read, report_write = os.pipe() if report else (None, None)
    command = wrap(report_write) if wrap else list(argv)
    out_path, err_path = tree / "stdout", tree / "stderr"
    # A few processes more than the solution's own: unshare, the first process, setpriv.
    group = TrialCgroup.create(limits.memory_mb, limits.max_processes + 8)
    cgroup_fds = [os.open(path, os.O_WRONLY) for path in group.procs_files()] if group else []
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                command, cwd=workspace, env=scrubbed_env(env), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, preexec_fn=functools.partial(_set_limits, limits, _prctl(), cgroup_fds),
                close_fds=True, pass_fds=(report_write,) if report else (),
            )
        except BaseException:
            if group:
                group.remove()
            raise
        finally:
            if report:
                os.close(report_write)
            for fd in cgroup_fds:
                os.close(fd)
        timed_out = False
        deadline = start + limits.timeout_s
        status = 0
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                _kill_group(proc.pid)
                _, status, _ = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - start
        # Whatever the solution left running in its group (rlimits-only mode) dies too.
        _kill_group(proc.pid)
        raw = b""
        if report:
            with os.fdopen(report_read, "rb") as handle:
                raw = handle.read(64)
    group_peak, oom_killed = (group.peak_mb(), group.oom_killed()) if group else (None, False)
    if group:
        group.remove()
    returncode, peak, problem = None, None, ""
    if timed_out:
        pass
    elif not report:
        returncode = os.waitstatus_to_exitcode(status)
    else:
        parsed = _parse_report(raw)
        if parsed is not None:
            returncode, peak = parsed
        else:  # the first process died before reporting (e.g. killed for memory) or could not build the root
            returncode = os.waitstatus_to_exitcode(status) or -9
            if raw:
                problem = f"interpgym sandbox: set-up failed ({raw[:32].decode(errors='replace')})\n"
    return SandboxResult(
        returncode=returncode, timed_out=timed_out, wall_s=wall, peak_mem_mb=group_peak if group else peak,
        stdout_tail=_tail(out_path), stderr_tail=problem + _tail(err_path),
        isolation=isolation + ("+cgroup" if group else ""), oom_killed=oom_killed,
    )


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

"""Per-trial control groups: one memory and process budget for the whole trial, and its true peak.

`RLIMIT_AS` and `RLIMIT_NPROC` bound each process of a trial, not the trial: 64
processes of 256 MiB each hold 16 GiB. Where the kernel lets the harness make a child
control group (as root, cgroup v1 or v2 with the memory and pids controllers), every
trial gets one, a sibling of nothing else, and:

* `memory` caps everything the trial charges (resident memory of all its processes,
  the private `/tmp` and `/dev/shm` tmpfs it fills, page cache it reads) at its memory
  limit; the kernel reclaims cache first, then kills inside the group only;
* `pids` caps its processes and threads together;
* the peak (`memory.max_usage_in_bytes` / `memory.peak`) counts every process, waited
  for or not, and an OOM kill inside the group is reported as such.

Where no group can be made (not root, no controllers) `TrialCgroup.create` returns None
and the per-process rlimits are all there is (the record's peak is then the largest
reaped process tree's RSS, measured by the sandbox's first process).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

_PREFIX = "interpgym-trial-"


def _own_cgroups() -> dict[str, str]:
    """controller (or "" for the v2 hierarchy) -> this process's cgroup path, from /proc/self/cgroup."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(fstype, root, mount point, super options) of every cgroup mount."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((tail[0], fields[3], fields[4], set(tail[2].split(","))))
    return found


def _v1_dir(controller: str) -> Path | None:
    path = _own_cgroups().get(controller)
    for fstype, root, mount_point, options in _mounts():
        if fstype == "cgroup" and controller in options and path is not None and path.startswith(root):
            return Path(mount_point) / path[len(root):].lstrip("/")
    return None


def _v2_dir() -> Path | None:
    path = _own_cgroups().get("")
    for fstype, root, mount_point, _ in _mounts():
        if fstype == "cgroup2" and path is not None and path.startswith(root):
            candidate = Path(mount_point) / path[len(root):].lstrip("/")
            try:
                enabled = (candidate / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            if {"memory", "pids"} <= set(enabled):
                return candidate
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _owner_alive(name: str) -> bool:
    """Whether the harness process that made group `name` (`<prefix><pid>-<token>`) still runs."""
    try:
        pid = int(name[len(_PREFIX):].split("-", 1)[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _sweep(parent: Path) -> None:
    """Remove trial groups left by a harness that was killed. A group whose harness still runs is
    left alone even while empty (it may be about to receive its trial's first process)."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(_PREFIX) and not _owner_alive(entry.name):
            try:
                entry.rmdir()
            except OSError:
                pass


@dataclass
class TrialCgroup:
    """The control-group directories of one trial (one per v1 controller, or one v2 group)."""

    dirs: list[Path]
    memory_dir: Path
    version: int

    @classmethod
    def create(cls, memory_mb: int, max_processes: int) -> TrialCgroup | None:
        """A fresh group capped at `memory_mb` and `max_processes`, or None where none can be made."""
        if os.geteuid() != 0:
            return None
        name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        limit = str(memory_mb << 20)
        try:
            v2 = _v2_dir()
            if v2 is not None:
                _sweep(v2)
                group = v2 / name
                group.mkdir()
                _write(group / "memory.max", limit)
                _write(group / "memory.swap.max", "0") if (group / "memory.swap.max").exists() else None
                _write(group / "pids.max", str(max_processes))
                return cls(dirs=[group], memory_dir=group, version=2)
            memory, pids = _v1_dir("memory"), _v1_dir("pids")
            if memory is None or pids is None:
                return None
            made = []
            try:
                for parent in (memory, pids):
                    _sweep(parent)
                    (parent / name).mkdir()
                    made.append(parent / name)
                _write(memory / name / "memory.limit_in_bytes", limit)
                if (memory / name / "memory.memsw.limit_in_bytes").exists():
                    _write(memory / name / "memory.memsw.limit_in_bytes", limit)
                _write(pids / name / "pids.max", str(max_processes))
            except OSError:
                for group in made:
                    try:
                        group.rmdir()
                    except OSError:
                        pass
                raise
            return cls(dirs=made, memory_dir=memory / name, version=1)
        except OSError:
            return None

    def procs_files(self) -> list[str]:
        """The files a process writes "0" to in order to join the group (opened before forking)."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def peak_mb(self) -> float | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.memory_dir / name).read_text().split()[0]) / (1 << 20)
        except (OSError, ValueError, IndexError):
            return None

    def oom_killed(self) -> bool:
        """True iff the kernel killed a process of the group for exceeding its memory."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (self.memory_dir / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        """Kill whatever is left in the group and remove it (retrying briefly while the kernel reaps)."""
        for group in self.dirs:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)

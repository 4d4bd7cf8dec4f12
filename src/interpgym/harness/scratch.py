"""Private scratch trees for trials: one directory per trial, nobody else can read it, never leaked.

Every trial (and the sandbox's availability probe) works inside `scratch_tree()`, a fresh
directory under `scratch_root()` = `$INTERPGYM_SCRATCH` or `<system temp>/interpgym-<uid>`.
Guarantees:

* **private**: the root and every tree are mode 0700 and owned by the harness's user; a
  root that is someone else's (or a link, or group/world-accessible) is refused, so
  another user cannot pre-create it to watch or swap trials;
* **cleaned**: a tree is removed when its `with` block ends, however it ends; a tree whose
  owning process was killed (SIGKILL, power loss) is removed by the next `scratch_tree()`
  on the machine: each live tree holds an exclusive `flock` on its `.lock` file, and a
  tree whose lock can be taken has no live owner.
"""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from interpgym.core.errors import UserError

_LOCK = ".lock"
_GRACE_S = 60.0  # a tree still being created (or lock-less) younger than this is left alone
_CREATING = ".creating-"


def scratch_root() -> Path:
    """The per-user root of trial trees, created 0700 (a foreign or loose one is a `UserError`)."""
    configured = os.environ.get("INTERPGYM_SCRATCH")
    root = Path(configured) if configured else Path(tempfile.gettempdir()) / f"interpgym-{os.geteuid()}"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(root)
    except OSError as exc:
        raise UserError(f"cannot create the trial scratch directory {root}: {exc.strerror}; "
                        "set INTERPGYM_SCRATCH to a writable directory") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise UserError(f"{root} must be a directory owned by uid {os.geteuid()} with mode 0700 (it is not); "
                        "remove it or set INTERPGYM_SCRATCH to a private directory")
    return root


def sweep_stale(root: Path) -> int:
    """Remove the trees under `root` whose owner process is gone; return how many were removed."""
    removed = 0
    for entry in os.scandir(root):
        try:
            removed += _remove_if_stale(entry)
        except OSError:  # removed meanwhile by its owner or another sweep: nothing to do
            continue
    return removed


def _remove_if_stale(entry: os.DirEntry) -> int:
    """Remove `entry` (a tree) if its owner is gone; 1 if removed, else 0. May raise OSError if it vanished."""
    if not entry.is_dir(follow_symlinks=False):
        return 0
    if entry.name.startswith(_CREATING) and time.time() - entry.stat(follow_symlinks=False).st_mtime < _GRACE_S:
        return 0  # being created: its lock is taken before it gets its final name
    try:
        fd = os.open(os.path.join(entry.path, _LOCK), os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        # Died before taking its lock: stale once it is old.
        if time.time() - entry.stat(follow_symlinks=False).st_mtime < _GRACE_S:
            return 0
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # a live trial holds it
    finally:
        if fd is not None:
            os.close(fd)
    remove_tree(Path(entry.path))
    return 1


def _unmount_under(tree: Path) -> None:
    """Lazily unmount every mount at or below `tree` (a killed harness may have left a workspace mounted)."""
    prefix = str(Path(tree).resolve())
    try:
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return
    for point in sorted({p for p in points if p == prefix or p.startswith(prefix + "/")}, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def remove_tree(tree: Path) -> None:
    """Remove `tree` entirely, however deep, and also where a solution left folders without permissions.

    coreutils' `rm` walks iteratively (Python's `shutil.rmtree` recurses and fails on a
    deep folder chain) and never crosses into another file system.
    """
    if not os.path.lexists(tree):
        return
    _unmount_under(tree)
    if os.geteuid() != 0:  # root ignores permission bits; anyone else restores them first
        subprocess.run(["chmod", "-R", "u+rwx", "--", str(tree)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(tree)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)


@contextmanager
def scratch_tree(prefix: str = "trial-") -> Iterator[Path]:
    """A fresh private directory for one trial, locked while in use and removed afterwards."""
    root = scratch_root()
    sweep_stale(root)
    # Made under a name the sweep leaves alone, locked, then renamed: no other process's sweep
    # can see this tree without its lock held.
    creating = Path(tempfile.mkdtemp(prefix=_CREATING + prefix, dir=root))
    fd = os.open(creating / _LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    tree = creating.with_name(creating.name[len(_CREATING):])
    try:
        os.rename(creating, tree)
        yield tree
    finally:
        remove_tree(tree)
        os.close(fd)

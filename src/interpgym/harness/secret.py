"""The installation's harness secret: seeds private data (hidden ground truth, test splits).

Generated once per `$INTERPGYM_HOME` from the OS's random source and stored in
`$INTERPGYM_HOME/harness/secret`, which the sandbox hides. Tasks derive the seeds of
anything a solution must not be able to regenerate (e.g. the toy model's true features)
from it, so reading the public source code does not reveal private data. Scores are
therefore comparable within one installation; the reference's spread over seeds (the
noise floor) says how much they move between installations.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from interpgym.core.cache import home


def _secret_path() -> Path:
    return home() / "harness" / "secret"


def harness_secret() -> str:
    """The 128-bit hex secret of this installation, created on first use (atomically)."""
    path = _secret_path()
    if not path.is_file():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".secret.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(16))
        try:
            os.link(tmp, path)  # fails if another process won the race; theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    _make_private(path)
    return path.read_text().strip()


def _make_private(secret_file: Path) -> None:
    """Owner-only permissions on the secret, its folder and the harness home (for installations made before)."""
    for path, mode in ((home(), 0o700), (secret_file.parent, 0o700), (secret_file, 0o600)):
        try:
            if os.stat(path).st_uid == os.geteuid() and os.stat(path).st_mode & 0o077:
                os.chmod(path, mode)
        except OSError:
            pass


def secret_id() -> str:
    """A public fingerprint of the secret (cache keys may contain it; it reveals nothing)."""
    return hashlib.sha256(("id:" + harness_secret()).encode()).hexdigest()[:12]


PRIVATE_SEED_BITS = 256


def private_seed(purpose: str) -> int:
    """A 256-bit seed for `purpose` derived from the secret; unknowable without reading it.

    Use it through `core.seeding.generator` / `numpy_random_state`, which keep every bit
    (a 64-bit `manual_seed` would make the private data searchable from public data).
    """
    return int.from_bytes(hashlib.sha256(f"{harness_secret()}:{purpose}".encode()).digest(), "big")


def private_dir(task_id: str, version: str, build) -> Path:
    """The cached private-data directory of a task version (inside the hidden home), built once."""
    from interpgym.core.cache import get_or_build

    return get_or_build("harness-private", {"task": task_id, "version": version, "secret": secret_id()}, build)

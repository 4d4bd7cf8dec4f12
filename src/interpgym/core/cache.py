"""The subject cache: build-once directories under `$INTERPGYM_HOME`, keyed by config hash.

Layout: `$INTERPGYM_HOME/cache/<kind>/<config-hash>/` holding the built files plus
`MANIFEST.json` (the full config, and size + sha256 of every file). An entry is only
ever published by an atomic rename of a fully written temporary directory, and the
manifest is checked on every load: a partial, truncated or edited entry is detected,
deleted and rebuilt, never silently used. A file lock serialises concurrent builders
of the same entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interpgym.core.errors import UserError
from interpgym.core.hashing import config_hash, to_jsonable

MANIFEST = "MANIFEST.json"


def home() -> Path:
    """`$INTERPGYM_HOME` (default `~/.cache/interpgym`), created owner-only (0700) if missing: it holds the
    harness secret, private splits and the run store."""
    path = Path(os.environ.get("INTERPGYM_HOME") or Path.home() / ".cache" / "interpgym")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create INTERPGYM_HOME at {path}: {exc.strerror}; set INTERPGYM_HOME to a writable directory") from exc
    return path


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(directory: Path, config: Any) -> None:
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {"config": to_jsonable(config), "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def verify_entry(directory: Path, *, full: bool = True) -> bool:
    """True iff `directory` holds a complete entry matching its manifest.

    `full=True` re-hashes every file (cost: one read of the entry); `full=False` checks
    presence and sizes only (for multi-GB activation stores on hot paths).
    """
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    if present - {MANIFEST} != set(files):
        return False
    for rel, meta in files.items():
        path = directory / rel
        if path.stat().st_size != meta.get("size"):
            return False
        if full and _sha256(path) != meta.get("sha256"):
            return False
    return True


def entry_dir(kind: str, config: Any) -> Path:
    """Where the entry for (kind, config) lives (it may not exist yet)."""
    return home() / "cache" / kind / config_hash(config)


def get_or_build(
    kind: str,
    config: Any,
    build: Callable[[Path], None],
    *,
    full_verify: bool = True,
) -> Path:
    """Return the verified cache directory for (kind, config), building it if needed.

    `build(tmpdir)` must write every file of the entry into `tmpdir`; it is called at
    most once per call, only when no valid entry exists (a corrupt one is removed
    first). If `build` raises, nothing is published and the temporary directory is
    removed.
    """
    final = entry_dir(kind, config)
    final.parent.mkdir(parents=True, exist_ok=True)
    if verify_entry(final, full=full_verify):
        return final
    lock_path = final.parent / f".{final.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if verify_entry(final, full=full_verify):  # another process built it meanwhile
            return final
        if final.exists():
            shutil.rmtree(final)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            _write_manifest(tmp, config)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final

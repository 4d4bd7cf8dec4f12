"""Output files: checked before any work (so a long command never fails at its last step), written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from interpgym.core.errors import UserError


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_path(path: str | Path | None, flag: str, *, directory: bool = False) -> None:
    """Raise a one-line `UserError` now if `path` (given as `flag`) could not be written later.

    A file path (`directory=False`) must not be an existing directory; a directory path
    must not be an existing file. Missing parents are fine if they can be created: the
    closest existing ancestor must be a directory in which a file can be created, which
    is probed by creating and removing an empty temporary file there (the only side
    effect). The probe, not `os.access`, decides: it sees read-only mounts, immutable
    directories and root alike. `None` (no output asked for) passes.
    """
    if path is None:
        return
    path = Path(path)
    if not directory and path.is_dir():
        raise UserError(f"{flag} {path} is a directory: pass a file path")
    if directory and path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file: pass a directory path")
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise UserError(f"{flag} {path}: {ancestor} is a file, not a directory; choose another path")
    try:
        with tempfile.NamedTemporaryFile(dir=ancestor, prefix=".interpgym-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write in {ancestor} ({exc.strerror or exc}); choose a writable path") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it becomes `path` by one rename.

    The file gets the permissions a plain `open(path, "w")` would (0666 minus the umask),
    not `mkstemp`'s 0600. On any failure the temporary file is removed and an existing
    `path` is left untouched, so a reader never sees a half-written file. Parent folders
    are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

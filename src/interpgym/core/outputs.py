"""Checking an output path before doing the work that fills it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from interpgym.core.errors import UserError


def check_output_file(path: Path | None, flag: str = "--json") -> None:
    """Fail now (one-line `UserError`) if a file could not be written at `path` later.

    Creates missing parent folders and probes them with a temporary file, so a long run
    never computes for minutes only to lose its result to an unwritable path.
    `harness.cli.check_output` and `proofs.cli._check_writable` do the same job for their commands.
    """
    if path is None:
        return
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".interpgym-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write {flag} {path}: {exc.strerror or exc}; choose a writable file path") from None

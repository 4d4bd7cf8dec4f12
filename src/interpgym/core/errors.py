"""User-facing errors.

`UserError` is the one exception type that the CLI turns into a one-line message on
stderr and exit code 2. Raise it for anything the *user* got wrong (bad argument,
missing file, NaN weights, unknown name) with a message that names the problem and
the fix. Bugs should stay ordinary exceptions so they keep their tracebacks.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: reported as one line, exit code 2, no partial output."""

    exit_code = 2


def require(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)

"""Optional third-party packages: report a missing one by name, never hide our own broken imports.

A registry that lazily imports a module (a subject, a task, an agent) may find that an
*optional third-party* package is not installed; that is reported as a `UserError`
naming the package. An ImportError raised by interpgym's own code is a bug and is
re-raised unchanged, so it surfaces with its traceback instead of turning into
"unavailable in this build".
"""

from __future__ import annotations

import importlib
from types import ModuleType

from interpgym.core.errors import UserError


def is_own_import_error(exc: ImportError) -> bool:
    """True when `exc` comes from interpgym itself (or names no module): a bug, not a missing extra."""
    name = getattr(exc, "name", None)
    return not isinstance(exc, ModuleNotFoundError) or not name or name.split(".")[0] == "interpgym"


def import_feature(module: str, feature: str) -> ModuleType:
    """Import `module` (an interpgym module providing `feature`).

    A missing third-party package becomes `UserError("<feature> needs the package <pkg>...")`;
    any other ImportError (ours, or a package that is installed but broken) propagates.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if is_own_import_error(exc):
            raise
        package = exc.name.split(".")[0]  # type: ignore[union-attr]
        raise UserError(f"{feature} needs the Python package {package!r}, which is not installed: pip install {package}") from exc

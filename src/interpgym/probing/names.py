"""Parsing `all` / comma-separated name lists given on the command line."""

from __future__ import annotations

from collections.abc import Sequence

from interpgym.core.errors import UserError


def parse_names(spec: str, known: Sequence[str], what: str, flag: str) -> list[str]:
    """`all` -> every known name; else the listed names (`UserError` for an empty list or an unknown name)."""
    if spec.strip() == "all":
        return list(known)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UserError(f"{flag} is empty: pass 'all' or a comma-separated list of {what} names")
    for name in names:
        if name not in known:
            raise UserError(f"unknown {what} {name!r}; choose from: {', '.join(known)}")
    return names

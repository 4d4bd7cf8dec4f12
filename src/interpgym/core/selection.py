"""Parsing the "'all' or a comma-separated list" options (`--archs`, `--strategies`)."""

from __future__ import annotations

from collections.abc import Sequence

from interpgym.core.errors import UserError


def parse_selection(text: str, known: Sequence[str], *, flag: str, what: str) -> list[str]:
    """`known` (in its order) for 'all', else the listed names in the given order, duplicates dropped.

    Whitespace around names is ignored. An empty list or a name not in `known` is a
    `UserError` naming `flag`, the bad name (`what` says what kind of name) and the choices.
    """
    if text.strip() == "all":
        return list(known)
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise UserError(f"{flag} is empty: pass 'all' or a comma-separated list of {', '.join(known)}")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(f"unknown {what} {unknown[0]!r}: choose 'all' or from {', '.join(known)}")
    return names

"""Device selection: CPU by default, CUDA when asked for (or `auto` and present)."""

from __future__ import annotations

import os

import torch

from interpgym.core.errors import UserError


def resolve_device(name: str | None = None) -> torch.device:
    """Resolve a device name.

    `None` reads `$INTERPGYM_DEVICE` (default `cpu`). `auto` picks CUDA when present.
    Asking for CUDA on a machine without it is a `UserError`.
    """
    name = name or os.environ.get("INTERPGYM_DEVICE", "cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UserError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available: use --device cpu")
    return device

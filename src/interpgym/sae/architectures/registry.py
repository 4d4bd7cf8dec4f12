"""Name -> SAE class. `@register` on a `SparseAutoencoder` subclass is all a new architecture needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from interpgym.core.errors import UserError

if TYPE_CHECKING:
    from interpgym.sae.architectures.base import SparseAutoencoder
    from interpgym.sae.config import SAEConfig

ARCHITECTURES: dict[str, type[SparseAutoencoder]] = {}
T = TypeVar("T")


def register(cls: T) -> T:
    """Class decorator: make `cls` available under `cls.arch`."""
    name = cls.arch  # type: ignore[attr-defined]
    if name in ARCHITECTURES and ARCHITECTURES[name] is not cls:
        raise ValueError(f"SAE architecture {name!r} registered twice")
    ARCHITECTURES[name] = cls  # type: ignore[assignment]
    return cls


def architecture(name: str) -> type[SparseAutoencoder]:
    """The class registered as `name`; `UserError` naming the choices otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UserError(f"unknown SAE architecture {name!r}: choose one of {', '.join(sorted(ARCHITECTURES))}") from None


def build_sae(cfg: SAEConfig) -> SparseAutoencoder:
    """An uninitialised SAE of `cfg.arch` (call `.initialize` or load weights next)."""
    return architecture(cfg.arch)(cfg)

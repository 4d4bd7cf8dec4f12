"""Probing and steering: concept datasets, detection methods, steering, the offline judge.

Public API:

    from interpgym.probing import train_direction, steer, ablate, Direction
    from interpgym.probing import concept_names, load_concept

See `docs/probing.md`. Names are imported on first use, so that `import interpgym.probing.cli`
(hence `interpgym --help`) does not pay for torch, transformers and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "Direction": "interpgym.probing.api",
    "ablate": "interpgym.probing.api",
    "steer": "interpgym.probing.api",
    "train_direction": "interpgym.probing.api",
    "concept_names": "interpgym.probing.concepts",
    "load_concept": "interpgym.probing.concepts",
}

if TYPE_CHECKING:
    from interpgym.probing.api import Direction, ablate, steer, train_direction
    from interpgym.probing.concepts import concept_names, load_concept


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'interpgym.probing' has no attribute {name!r}")


__all__ = ["Direction", "ablate", "concept_names", "load_concept", "steer", "train_direction"]
assert sorted(__all__) == sorted(_PUBLIC)

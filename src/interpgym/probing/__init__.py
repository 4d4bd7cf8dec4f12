"""Probing and steering: concept datasets, detection methods, steering, the offline judge.

Public API:

    from interpgym.probing import train_direction, steer, ablate, Direction
    from interpgym.probing import concept_names, load_concept

See `docs/probing.md`.
"""

from interpgym.probing.api import Direction, ablate, steer, train_direction
from interpgym.probing.concepts import concept_names, load_concept

__all__ = ["Direction", "ablate", "concept_names", "load_concept", "steer", "train_direction"]

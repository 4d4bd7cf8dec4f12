"""Activation subjects by name: `load_subject("toy" | "digits" | "smollm2", ...)`.

Imports are lazy so that a subject's heavy dependencies (transformers, gguf) are
only touched when that subject is asked for. A missing optional package is reported
by name; an ImportError from interpgym's own modules propagates (it is a bug).
"""

from __future__ import annotations

from interpgym.core.errors import UserError
from interpgym.core.optional import import_feature
from interpgym.subjects.activations import ActivationSubject

SUBJECTS = ("toy", "digits", "smollm2")


def load_subject(name: str, *, seed: int = 0, layer: int | None = None, model: str | None = None) -> ActivationSubject:
    """Load the activation subject `name`. `layer`/`model` only apply to smollm2."""
    if name not in SUBJECTS:
        raise UserError(f"unknown subject {name!r}: choose one of {', '.join(SUBJECTS)}")
    if name != "smollm2" and (layer is not None or model is not None):
        raise UserError(f"--layer/--model only apply to the smollm2 subject, not {name!r}")
    if name == "toy":
        from interpgym.subjects import toy_superposition

        return toy_superposition.load(seed=seed)
    if name == "digits":
        return import_feature("interpgym.subjects.digits", "the digits subject").load(seed=seed)
    return import_feature("interpgym.subjects.smollm2", "the smollm2 subject").load(layer=layer, model=model, seed=seed)

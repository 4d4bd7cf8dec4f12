"""The contract between activation sources (subjects) and the SAE family.

An `ActivationSubject` hands out activations of one model site, split into `train`,
`val` and `test` (held-out: never used for training). Optional capabilities:

* `labels(split)` -> concept name -> per-row integer labels, for sparse probing and
  monosemanticity (digits: the class; smollm2: binary corpus concepts);
* `ground_truth()` -> the true feature directions (toy model of superposition only);
* `downstream(reconstruct, split)` -> metrics of the model with the site's activations
  replaced by `reconstruct(acts)` (digits: test CE / accuracy; smollm2: CE loss
  recovered vs zero and mean ablation, KL of spliced vs clean).

Every subject also states `sae_defaults` (what an SAE trained on it uses when the
command line leaves width, k or the learning rate open) and, for SAELens metadata,
`hook_name` / `model_name` (None when the subject is not a named model site).

Rows of every tensor returned for a split are aligned: row i of `activations(split)`
is the same input as row i of each `labels(split)[name]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from jaxtyping import Float, Int
from torch import Tensor

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")

Reconstruct = Callable[[Float[Tensor, "n d"]], Float[Tensor, "n d"]]


@dataclass(frozen=True)
class SAEDefaults:
    """What an SAE on a subject uses when the user leaves a setting open.

    `width`: latents; `k`: active latents for the top-k family (None: the architecture's
    default); `lr`: Adam learning rate (None: the trainer's width-based default).
    """

    width: int
    k: int | None = None
    lr: float | None = None


@runtime_checkable
class ActivationSubject(Protocol):
    """An activation source. See the module docstring for the optional capabilities."""

    name: str
    d_in: int
    sae_defaults: SAEDefaults
    hook_name: str | None
    model_name: str | None

    def activations(self, split: Split) -> Float[Tensor, "n d_in"]:
        """All activations of a split (may be a memory-mapped tensor; treat as read-only)."""
        ...

    def labels(self, split: Split) -> dict[str, Int[Tensor, " n"]]:
        """Concept labels aligned with `activations(split)`; empty dict if none."""
        ...

    def ground_truth(self) -> Float[Tensor, "n_features d_in"] | None:
        """True feature directions (unit rows), or None when unknown."""
        ...

    def downstream(self, reconstruct: Reconstruct, split: Split = "test") -> dict[str, float]:
        """Downstream metrics with activations replaced by `reconstruct(acts)`; {} if none."""
        ...

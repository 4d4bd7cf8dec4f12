"""The library API, in the style of steering-vectors / repeng, on any Hugging Face causal LM.

    from interpgym.probing import train_direction, steer, ablate

    direction = train_direction(lm, positives, negatives, layer=15, method="diff_means")
    with steer(lm, direction, alpha=8.0):
        out = lm_model.generate(...)          # steered; hooks gone after the block
    with ablate(lm, direction):
        ...                                   # direction projected out from `layer` on

`lm` is an interpgym `LanguageModel` (see `subjects.lm_loader.load_language_model`:
packaged SmolLM2 offline, any local path or cached HF name) or a pair
`(hf_model, tokenizer)`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.probing import methods as M
from interpgym.probing.activations import POOLINGS, check_layer, pooled_activations
from interpgym.probing.steering import ablation, steering


@dataclass(frozen=True)
class Direction:
    """A direction in the residual stream entering block `layer`.

    `vector` is the raw mean difference for `diff_means` (as steering-vectors' mean
    aggregator) and unit norm for every other method (as repeng's PCA).
    """

    vector: Float[Tensor, " d"]
    layer: int
    method: str
    pooling: str


def _unpack(lm) -> tuple[torch.nn.Module, object]:
    if isinstance(lm, tuple) and len(lm) == 2:
        return lm
    if hasattr(lm, "model") and hasattr(lm, "tokenizer"):
        return lm.model, lm.tokenizer
    raise UserError("lm must be an interpgym LanguageModel or a (model, tokenizer) pair")


def train_direction(lm, positives: Sequence[str], negatives: Sequence[str], layer: int, method: str = "diff_means", *,
                    pooling: str = "last", seed: int = 0, sae=None, batch_size: int = 16) -> Direction:
    """Fit `method` (see `methods.METHODS`) on `positives` vs `negatives` at `layer`.

    Texts are read at `pooling` (`last` token by default, as steering-vectors and repeng
    do). For `pca`, positives[i] and negatives[i] are a contrast pair.
    """
    model, tokenizer = _unpack(lm)
    check_layer(model, layer)
    if pooling not in POOLINGS:
        raise UserError(f"unknown pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
    if not positives or not negatives:
        raise UserError("train_direction needs at least one positive and one negative text")
    if method == "pca" and len(positives) != len(negatives):
        raise UserError("pca needs contrast pairs: as many positives as negatives")
    texts = [t for pair in zip(positives, negatives, strict=False) for t in pair]
    texts += list(positives[len(negatives) :]) + list(negatives[len(positives) :])
    n_pair = min(len(positives), len(negatives))
    labels = [1, 0] * n_pair + [1] * (len(positives) - n_pair) + [0] * (len(negatives) - n_pair)
    x = pooled_activations(model, tokenizer, texts, layer, batch_size=batch_size)[pooling]
    y = torch.tensor(labels)
    if method == "diff_means":
        vector = x[y == 1].mean(0) - x[y == 0].mean(0)
    else:
        vector = M.fit(method, x, y, seed=seed, sae=sae).direction
    return Direction(vector=vector, layer=layer, method=method, pooling=pooling)


@contextmanager
def steer(lm, direction: Direction, alpha: float) -> Iterator[None]:
    """Add `alpha * direction.vector` to the residual entering block `direction.layer` inside the block (hooks always removed)."""
    model, _ = _unpack(lm)
    with steering(model, direction.vector, alpha, direction.layer):
        yield


@contextmanager
def ablate(lm, direction: Direction, from_layer: int | None = None) -> Iterator[None]:
    """Project `direction` out of the residual entering every block from `from_layer` (default its own layer) inside the block."""
    model, _ = _unpack(lm)
    with ablation(model, direction.vector, direction.layer if from_layer is None else from_layer):
        yield

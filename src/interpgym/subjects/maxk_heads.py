"""Max-of-K with several attention heads: the one-head subject (`maxk`) with H heads summed.

Architecture (TransformerLens conventions, no LayerNorm, zero biases): x_i = W_E[t_i] +
W_pos[i]; head h scores (x_K W_Q[h]) . (x_i W_K[h]) / sqrt(d_head), softmax over i, z_h =
sum_i a_hi x_i W_V[h]; logits = (x_K + sum_{h, e} z_h[e] W_O[h, e]) W_U (the head sum and
the d_head sum are one contraction). Trained exactly like `maxk` (`maxk.train_loop`: same
optimiser, data stream and checkpoints), cached under `$INTERPGYM_HOME/cache/maxk_heads/`.
Default: H = 2 heads of d_head = 16 on d_model = 32 (the one-head model's width split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import require
from interpgym.core.threads import torch_threads
from interpgym.subjects.maxk import WEIGHT_NAMES, MaxKConfig, MaxKModel, MaxKWeights, read_float_tensors, train_loop
from interpgym.subjects.weights import require_names, require_shapes_and_finite


@dataclass(frozen=True)
class MaxKHeadsConfig(MaxKConfig):
    """`MaxKConfig` plus the number of heads; d_head is per head."""

    n_heads: int = 2
    d_head: int = 16

    def validate(self) -> None:
        super().validate()
        require(self.n_heads >= 1, f"--heads must be >= 1 (got {self.n_heads})")


@dataclass(frozen=True)
class MaxKHeadsWeights:
    """W_Q, W_K, W_V [H, d_model, d_head], W_O [H, d_head, d_model]; the rest as in `MaxKWeights`."""

    W_E: Float[Tensor, "vocab d_model"]
    W_pos: Float[Tensor, "k d_model"]
    W_Q: Float[Tensor, "heads d_model d_head"]
    W_K: Float[Tensor, "heads d_model d_head"]
    W_V: Float[Tensor, "heads d_model d_head"]
    W_O: Float[Tensor, "heads d_head d_model"]
    W_U: Float[Tensor, "d_model vocab"]

    @property
    def vocab(self) -> int:
        return self.W_E.shape[0]

    @property
    def k(self) -> int:
        return self.W_pos.shape[0]

    @property
    def n_heads(self) -> int:
        return self.W_Q.shape[0]

    @property
    def d_head(self) -> int:
        return self.W_Q.shape[2]

    def head(self, h: int) -> MaxKWeights:
        """Head h alone as a one-head model (same embeddings and unembedding)."""
        return MaxKWeights(W_E=self.W_E, W_pos=self.W_pos, W_Q=self.W_Q[h], W_K=self.W_K[h], W_V=self.W_V[h],
                           W_O=self.W_O[h], W_U=self.W_U)

    def as_dict(self) -> dict[str, Tensor]:
        return {n: getattr(self, n) for n in WEIGHT_NAMES}

    @classmethod
    def from_dict(cls, tensors: dict[str, Tensor], source: str = "weights") -> MaxKHeadsWeights:
        """Build from a name -> tensor dict, checking names, shapes and finiteness (`UserError` if not)."""
        require_names(tensors, WEIGHT_NAMES, source)
        w = cls(**{n: tensors[n] for n in WEIGHT_NAMES})
        require(w.W_Q.dim() == 3, f"{source}: W_Q must be [heads, d_model, d_head]")
        v, d, h, dh, k = w.vocab, w.W_E.shape[1], w.n_heads, w.d_head, w.k
        expected = {"W_E": (v, d), "W_pos": (k, d), "W_Q": (h, d, dh), "W_K": (h, d, dh), "W_V": (h, d, dh), "W_O": (h, dh, d),
                    "W_U": (d, v)}
        require_shapes_and_finite(tensors, expected, source)
        return w

    @classmethod
    def random(cls, vocab: int, k: int, d_model: int, d_head: int, n_heads: int, generator: torch.Generator,
               scale: float | None = None) -> MaxKHeadsWeights:
        """Gaussian init, std 0.8 / sqrt(d_model) unless `scale` is given (as `MaxKWeights.random`)."""
        std = 0.8 / math.sqrt(d_model) if scale is None else scale
        shapes = {"W_E": (vocab, d_model), "W_pos": (k, d_model), "W_Q": (n_heads, d_model, d_head),
                  "W_K": (n_heads, d_model, d_head), "W_V": (n_heads, d_model, d_head), "W_O": (n_heads, d_head, d_model),
                  "W_U": (d_model, vocab)}
        return cls(**{n: torch.randn(shapes[n], generator=generator) * std for n in WEIGHT_NAMES})


def opposed_heads_model(vocab: int, k: int, token_score: float = 1.0, position_score: float = 1.0,
                        copy: float = 4.0) -> MaxKHeadsWeights:
    """A hand-built two-head max-of-K model whose heads prefer opposite ends of the sequence.

    Residual: [token one-hot (v) | position one-hot (K) | constant 1 | output (v)],
    d_model = 2v + K + 1, d_head = v. Head h scores key (t, i) by token_score * t +
    s_h position_score * i (s = +1 for head 0: late positions, -1 for head 1: early ones)
    and copies the key's token into the output block with weight `copy`; the unembedding
    reads only the output block (no direct path). Each head alone is worst at the opposite
    arrangement of the max copies, so this is a subject on which a joint two-head argument
    (both heads at the same arrangement) can beat bounding the heads independently.
    """
    d_model, d_head = 2 * vocab + k + 1, vocab
    tokens, positions, constant, output = slice(0, vocab), slice(vocab, vocab + k), vocab + k, slice(vocab + k + 1, d_model)
    W_E = torch.zeros(vocab, d_model)
    W_E[:, tokens] = torch.eye(vocab)
    W_E[:, constant] = 1.0
    W_pos = torch.zeros(k, d_model)
    W_pos[:, positions] = torch.eye(k)
    W_Q, W_K, W_V, W_O = (torch.zeros(2, d_model, d_head), torch.zeros(2, d_model, d_head), torch.zeros(2, d_model, d_head),
                          torch.zeros(2, d_head, d_model))
    root = math.sqrt(d_head)
    for h, sign in enumerate((1.0, -1.0)):
        W_Q[h, constant, 0] = token_score * root  # query . key = token_score * t + sign * position_score * i (times sqrt(d_head))
        W_Q[h, constant, 1] = sign * position_score * root
        W_K[h, tokens, 0] = torch.arange(vocab, dtype=torch.float32)
        W_K[h, positions, 1] = torch.arange(k, dtype=torch.float32)
        W_V[h, tokens, :] = torch.eye(vocab)
        W_O[h, :, output] = copy * torch.eye(vocab)
    W_U = torch.zeros(d_model, vocab)
    W_U[output, :] = torch.eye(vocab)
    return MaxKHeadsWeights(W_E=W_E, W_pos=W_pos, W_Q=W_Q, W_K=W_K, W_V=W_V, W_O=W_O, W_U=W_U)


def heads_last_logits(w: MaxKHeadsWeights, tokens: Int[Tensor, "batch k"]) -> Float[Tensor, "batch vocab"]:
    """The model's forward pass at the last position (float32 as stored)."""
    x = w.W_E[tokens] + w.W_pos  # [batch, k, d]
    q = torch.einsum("bd,hde->bhe", x[:, -1], w.W_Q)
    keys = torch.einsum("bkd,hde->bhke", x, w.W_K)
    scores = torch.einsum("bhke,bhe->bhk", keys, q) / math.sqrt(w.d_head)
    attn = scores.softmax(dim=-1)
    values = torch.einsum("bkd,hde->bhke", x, w.W_V)
    z = torch.einsum("bhk,bhke->bhe", attn, values)
    resid = x[:, -1] + torch.einsum("bhe,hed->bd", z, w.W_O)
    return resid @ w.W_U


@dataclass(frozen=True)
class MaxKHeadsModel(MaxKModel):
    """A trained multi-head model: `MaxKModel` whose weights and checkpoints are `MaxKHeadsWeights`."""

    def checkpoint(self, step: int) -> MaxKHeadsWeights:  # type: ignore[override]
        return load_heads_weights(self.directory / "checkpoints" / f"step_{step:06d}.safetensors")


def load_heads_weights(path: str | Path) -> MaxKHeadsWeights:
    """Load and validate multi-head max-of-K weights from safetensors (`UserError` on any problem)."""
    return MaxKHeadsWeights.from_dict(read_float_tensors(path), source=str(path))


def train_maxk_heads(config: MaxKHeadsConfig, *, progress: bool = True) -> MaxKHeadsModel:
    """Train (or load from cache) the multi-head model for `config`. Deterministic given the config."""
    config.validate()

    def build(tmp: Path) -> None:
        generator = torch.Generator().manual_seed(config.seed)
        w = MaxKHeadsWeights.random(config.vocab, config.k, config.d_model, config.d_head, config.n_heads, generator)
        with torch_threads(1):
            train_loop(config, w.as_dict(), lambda params, tokens: heads_last_logits(MaxKHeadsWeights(**params), tokens), tmp,
                       progress, f"training {config.n_heads}-head max-of-{config.k} (v={config.vocab}, seed={config.seed})")

    directory = get_or_build("maxk_heads", config, build)
    return MaxKHeadsModel(config=config, weights=load_heads_weights(directory / "weights.safetensors"), directory=directory)


__all__ = ["MaxKHeadsConfig", "MaxKHeadsWeights", "MaxKHeadsModel", "train_maxk_heads", "heads_last_logits", "load_heads_weights"]

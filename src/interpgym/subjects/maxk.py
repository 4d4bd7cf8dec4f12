"""The max-of-K subject: a 1-layer, 1-head, attention-only transformer predicting max(tokens).

Architecture (TransformerLens conventions, no LayerNorm, all biases zero): for input
tokens t in [0, v)^K, residual x_i = W_E[t_i] + W_pos[i]; the last position queries
all K positions with scores (x_K W_Q) . (x_i W_K) / sqrt(d_head), softmax over i;
the output is logits = (x_K + sum_i a_i x_i W_V W_O) W_U. The label is max(t), and a
prediction is correct iff the argmax of the last-position logits is the max token
*strictly* (a tie counts as wrong).

Training is seeded and deterministic on CPU (one intra-op thread), cached under
`$INTERPGYM_HOME/cache/maxk/<config-hash>/` with `weights.safetensors` (final),
`checkpoints/step_NNNNNN.safetensors` and `train_log.json`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import UserError, require
from interpgym.core.progress import progress_bar
from interpgym.core.threads import torch_threads
from interpgym.subjects.weights import require_names, require_shapes_and_finite

WEIGHT_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U")


@dataclass(frozen=True)
class MaxKConfig:
    """Full recipe of a max-of-K model; its hash keys the cache."""

    vocab: int = 64
    k: int = 4
    d_model: int = 32
    d_head: int = 32
    seed: int = 0
    steps: int = 3000
    batch: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01  # torch's AdamW default
    checkpoint_every: int = 100

    def validate(self) -> None:
        """Raise `UserError` for impossible values."""
        require(self.vocab >= 2, f"--vocab must be >= 2 (got {self.vocab})")
        require(self.k >= 1, f"--k must be >= 1 (got {self.k})")
        require(self.d_model >= 1 and self.d_head >= 1, "--d-model and d_head must be >= 1")
        require(self.steps >= 0, f"steps must be >= 0 (got {self.steps})")
        require(self.batch >= 1, "batch must be >= 1")
        require(self.checkpoint_every >= 1, "checkpoint_every must be >= 1")


@dataclass(frozen=True)
class MaxKWeights:
    """The seven weight matrices of a max-of-K model (single head squeezed)."""

    W_E: Float[Tensor, "vocab d_model"]
    W_pos: Float[Tensor, "k d_model"]
    W_Q: Float[Tensor, "d_model d_head"]
    W_K: Float[Tensor, "d_model d_head"]
    W_V: Float[Tensor, "d_model d_head"]
    W_O: Float[Tensor, "d_head d_model"]
    W_U: Float[Tensor, "d_model vocab"]

    @property
    def vocab(self) -> int:
        return self.W_E.shape[0]

    @property
    def k(self) -> int:
        return self.W_pos.shape[0]

    @property
    def d_model(self) -> int:
        return self.W_E.shape[1]

    @property
    def d_head(self) -> int:
        return self.W_Q.shape[1]

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> MaxKWeights:
        return MaxKWeights(**{n: getattr(self, n).to(dtype=dtype, device=device) for n in WEIGHT_NAMES})

    def as_dict(self) -> dict[str, Tensor]:
        return {n: getattr(self, n) for n in WEIGHT_NAMES}

    @classmethod
    def from_dict(cls, tensors: dict[str, Tensor], source: str = "weights") -> MaxKWeights:
        """Build from a name -> tensor dict, checking names, shapes and finiteness (`UserError` if not)."""
        require_names(tensors, WEIGHT_NAMES, source)
        w = cls(**{n: tensors[n] for n in WEIGHT_NAMES})
        v, d, dh, k = w.vocab, w.d_model, w.d_head, w.k
        expected = {"W_E": (v, d), "W_pos": (k, d), "W_Q": (d, dh), "W_K": (d, dh), "W_V": (d, dh), "W_O": (dh, d), "W_U": (d, v)}
        require_shapes_and_finite(tensors, expected, source)
        return w

    @classmethod
    def random(cls, vocab: int, k: int, d_model: int, d_head: int, generator: torch.Generator, scale: float | None = None) -> MaxKWeights:
        """Gaussian init (TransformerLens' GPT-2 style std 0.8 / sqrt(d_model) unless `scale` given)."""
        std = 0.8 / math.sqrt(d_model) if scale is None else scale
        shapes = {"W_E": (vocab, d_model), "W_pos": (k, d_model), "W_Q": (d_model, d_head), "W_K": (d_model, d_head),
                  "W_V": (d_model, d_head), "W_O": (d_head, d_model), "W_U": (d_model, vocab)}
        return cls(**{n: torch.randn(shapes[n], generator=generator) * std for n in WEIGHT_NAMES})


def last_logits(w: MaxKWeights, tokens: Int[Tensor, "batch k"]) -> Float[Tensor, "batch vocab"]:
    """The model's forward pass at the last position (the only one the task reads)."""
    x = w.W_E[tokens] + w.W_pos  # [batch, k, d]
    q = x[:, -1] @ w.W_Q  # [batch, dh]
    keys = x @ w.W_K  # [batch, k, dh]
    scores = torch.einsum("bkh,bh->bk", keys, q) / math.sqrt(w.d_head)
    attn = scores.softmax(dim=-1)
    values = x @ w.W_V  # [batch, k, dh]
    z = torch.einsum("bk,bkh->bh", attn, values)
    resid = x[:, -1] + z @ w.W_O
    return resid @ w.W_U


def correct_mask(logits: Float[Tensor, "batch vocab"], tokens: Int[Tensor, "batch k"]) -> torch.Tensor:
    """True where the max token's logit is strictly above every other logit (ties are wrong)."""
    target = tokens.max(dim=-1).values
    target_logit = logits.gather(1, target[:, None])
    others = logits.scatter(1, target[:, None], float("-inf"))
    return target_logit[:, 0] > others.max(dim=-1).values


def train_loop(
    config: MaxKConfig,
    initial: dict[str, Tensor],
    forward: Callable[[dict[str, Tensor], Tensor], Tensor],
    out: Path,
    progress: bool,
    label: str,
) -> None:
    """The max-of-K training recipe on any weight dict: AdamW on cross-entropy at the last
    position, fresh uniform batches from a generator seeded by `config.seed + 1_000_003`,
    checkpoints (`checkpoints/step_NNNNNN.safetensors`), `weights.safetensors`,
    `config.json` and `train_log.json` written under `out`. Deterministic on CPU given the inputs."""
    params = {n: torch.nn.Parameter(t.clone()) for n, t in initial.items()}
    opt = torch.optim.AdamW(params.values(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    data_gen = torch.Generator().manual_seed(config.seed + 1_000_003)
    (out / "checkpoints").mkdir()
    log = []

    def snapshot(step: int) -> None:
        save_file({n: p.detach().clone().contiguous() for n, p in params.items()},
                  str(out / "checkpoints" / f"step_{step:06d}.safetensors"))

    snapshot(0)
    with progress_bar(enabled=progress, transient=True) as bar:
        task = bar.add_task(label, total=config.steps)
        for step in range(1, config.steps + 1):
            tokens = torch.randint(0, config.vocab, (config.batch, config.k), generator=data_gen)
            logits = forward(params, tokens)
            loss = torch.nn.functional.cross_entropy(logits, tokens.max(dim=-1).values)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % config.checkpoint_every == 0 or step == config.steps:
                snapshot(step)
                log.append({"step": step, "loss": loss.item()})
            bar.advance(task)
    save_file({n: p.detach().clone().contiguous() for n, p in params.items()}, str(out / "weights.safetensors"))
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
    (out / "train_log.json").write_text(json.dumps(log))


def _train(config: MaxKConfig, out: Path, progress: bool) -> None:
    generator = torch.Generator().manual_seed(config.seed)
    w = MaxKWeights.random(config.vocab, config.k, config.d_model, config.d_head, generator)
    train_loop(config, w.as_dict(), lambda params, tokens: last_logits(MaxKWeights(**params), tokens), out, progress,
               f"training max-of-{config.k} (v={config.vocab}, seed={config.seed})")


@dataclass(frozen=True)
class MaxKModel:
    """A trained max-of-K model: its config, final weights, and cache directory."""

    config: MaxKConfig
    weights: MaxKWeights
    directory: Path

    @property
    def weights_path(self) -> Path:
        return self.directory / "weights.safetensors"

    def checkpoint_steps(self) -> list[int]:
        """Steps of the saved checkpoints, ascending (0 is the initialisation)."""
        return sorted(int(p.stem.split("_")[1]) for p in (self.directory / "checkpoints").glob("step_*.safetensors"))

    def checkpoint(self, step: int) -> MaxKWeights:
        return load_weights(self.directory / "checkpoints" / f"step_{step:06d}.safetensors")


def read_float_tensors(path: str | Path) -> dict[str, Tensor]:
    """All tensors of a safetensors file as float32 (`UserError` if missing or unreadable)."""
    path = Path(path)
    require(path.is_file(), f"weights file {path} does not exist")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as safetensors ({exc}); delete it to rebuild") from exc
    return {k: v.float() for k, v in tensors.items()}


def load_weights(path: str | Path) -> MaxKWeights:
    """Load and validate max-of-K weights from a safetensors file (`UserError` on any problem)."""
    return MaxKWeights.from_dict(read_float_tensors(path), source=str(path))


def train_maxk(config: MaxKConfig, *, progress: bool = True) -> MaxKModel:
    """Train (or load from cache) the model for `config`. Deterministic given the config."""
    config.validate()

    def build(tmp: Path) -> None:
        with torch_threads(1):
            _train(config, tmp, progress)

    directory = get_or_build("maxk", config, build)
    return MaxKModel(config=config, weights=load_weights(directory / "weights.safetensors"), directory=directory)


__all__ = ["MaxKConfig", "MaxKWeights", "MaxKModel", "train_maxk", "last_logits", "correct_mask", "load_weights",
           "train_loop", "read_float_tensors"]

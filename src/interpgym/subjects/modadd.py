"""The modular-addition subject: a one-layer transformer (attention + ReLU MLP) computing (a + b) mod p.

Architecture (the grokking line of work: Power et al., Nanda et al.; TransformerLens
conventions, no LayerNorm, no biases): the input is the three tokens a, b, '=' with
a, b in [0, p) and '=' the token p. Residual x_i = W_E[t_i] + W_pos[i]. The last
position (the '=' token) attends to all three positions with H heads; its residual
after attention, r = x_2 + sum_h (sum_i a_hi x_i W_V[h]) W_O[h], feeds a ReLU MLP,
r' = r + ReLU(r W_in) W_out, and the logits over the p answers are r' W_U. The label is
(a + b) mod p; an input is correct iff that answer's logit is strictly above every
other (a tie counts as wrong).

`attention="uniform"` (the default) fixes every head's pattern to 1/3 per position: the
constant-attention "pizza" model of Zhong et al. 2023, the one Yip et al. 2024 compress;
W_Q and W_K are then unused (kept, untrained, so the weight files have one shape). It
reaches 100% at p = 59 in 2250 steps. `attention="learned"` trains the attention scores
as in Nanda et al.'s grokking model (99.91% at p = 59 after the default 3000 steps).

Training (the grokking recipe): full-batch AdamW (lr 1e-3, betas (0.9, 0.98), weight
decay 1.0) on a seeded random `train_fraction` of the p^2 pairs. Seeded and
deterministic on CPU (one intra-op thread); cached under
`$INTERPGYM_HOME/cache/modadd/<config-hash>/` (`weights.safetensors`,
`checkpoints/step_NNNNNN.safetensors`, `train_log.json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import require
from interpgym.core.progress import progress_bar
from interpgym.core.threads import torch_threads
from interpgym.subjects.maxk import read_float_tensors
from interpgym.subjects.weights import require_names, require_shapes_and_finite

WEIGHT_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U")
ATTENTION_KINDS = ("learned", "uniform")
SEQUENCE = 3  # a, b, '='


@dataclass(frozen=True)
class ModAddConfig:
    """Full recipe of a modular-addition model; its hash keys the cache."""

    p: int = 59
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    attention: str = "uniform"
    seed: int = 0
    steps: int = 3000
    train_fraction: float = 0.4
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 1.0
    checkpoint_every: int = 250

    def validate(self) -> None:
        """Raise `UserError` for impossible values."""
        require(2 <= self.p <= 1000, f"--p must be in [2, 1000] (got {self.p})")
        require(min(self.d_model, self.n_heads, self.d_head, self.d_mlp) >= 1, "d_model, n_heads, d_head and d_mlp must be >= 1")
        require(self.attention in ATTENTION_KINDS, f"--attention must be one of {', '.join(ATTENTION_KINDS)} (got {self.attention!r})")
        require(self.steps >= 0, f"--steps must be >= 0 (got {self.steps})")
        require(0.0 < self.train_fraction <= 1.0, f"train_fraction must be in (0, 1] (got {self.train_fraction})")
        require(self.checkpoint_every >= 1, "checkpoint_every must be >= 1")


@dataclass(frozen=True)
class ModAddWeights:
    """The weight matrices of a modular-addition model (per-head matrices stacked on dim 0)."""

    W_E: Float[Tensor, "p_plus_1 d_model"]
    W_pos: Float[Tensor, "3 d_model"]
    W_Q: Float[Tensor, "heads d_model d_head"]
    W_K: Float[Tensor, "heads d_model d_head"]
    W_V: Float[Tensor, "heads d_model d_head"]
    W_O: Float[Tensor, "heads d_head d_model"]
    W_in: Float[Tensor, "d_model d_mlp"]
    W_out: Float[Tensor, "d_mlp d_model"]
    W_U: Float[Tensor, "d_model p"]
    uniform_attention: bool = False

    @property
    def p(self) -> int:
        return self.W_U.shape[1]

    @property
    def d_model(self) -> int:
        return self.W_E.shape[1]

    @property
    def n_heads(self) -> int:
        return self.W_Q.shape[0]

    @property
    def d_head(self) -> int:
        return self.W_Q.shape[2]

    @property
    def d_mlp(self) -> int:
        return self.W_in.shape[1]

    def as_dict(self) -> dict[str, Tensor]:
        return {n: getattr(self, n) for n in WEIGHT_NAMES}

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> ModAddWeights:
        return ModAddWeights(**{n: getattr(self, n).to(dtype=dtype, device=device) for n in WEIGHT_NAMES},
                             uniform_attention=self.uniform_attention)

    @classmethod
    def from_dict(cls, tensors: dict[str, Tensor], *, uniform_attention: bool = False, source: str = "weights") -> ModAddWeights:
        """Build from a name -> tensor dict, checking names, shapes and finiteness (`UserError` if not)."""
        require_names(tensors, WEIGHT_NAMES, source)
        require(all(tensors[n].dim() == (3 if n in ("W_Q", "W_K", "W_V", "W_O") else 2) for n in WEIGHT_NAMES),
                f"{source}: wrong number of dimensions")
        w = cls(**{n: tensors[n] for n in WEIGHT_NAMES}, uniform_attention=uniform_attention)
        p, d, h, dh, m = w.p, w.d_model, w.n_heads, w.d_head, w.d_mlp
        expected = {"W_E": (p + 1, d), "W_pos": (SEQUENCE, d), "W_Q": (h, d, dh), "W_K": (h, d, dh), "W_V": (h, d, dh),
                    "W_O": (h, dh, d), "W_in": (d, m), "W_out": (m, d), "W_U": (d, p)}
        require_shapes_and_finite(tensors, expected, source)
        return w

    @classmethod
    def random(cls, p: int, d_model: int, n_heads: int, d_head: int, d_mlp: int, generator: torch.Generator,
               *, uniform_attention: bool = False, scale: float | None = None) -> ModAddWeights:
        """Gaussian init, std 1/sqrt(fan-in) per matrix (W_E, W_pos: std 1 / sqrt(d_model)) unless `scale` given."""
        shapes = {"W_E": (p + 1, d_model), "W_pos": (SEQUENCE, d_model), "W_Q": (n_heads, d_model, d_head),
                  "W_K": (n_heads, d_model, d_head), "W_V": (n_heads, d_model, d_head), "W_O": (n_heads, d_head, d_model),
                  "W_in": (d_model, d_mlp), "W_out": (d_mlp, d_model), "W_U": (d_model, p)}
        fan_in = {"W_E": d_model, "W_pos": d_model, "W_Q": d_model, "W_K": d_model, "W_V": d_model, "W_O": d_head,
                  "W_in": d_model, "W_out": d_mlp, "W_U": d_model}
        return cls(**{n: torch.randn(shapes[n], generator=generator) * (scale if scale is not None else fan_in[n] ** -0.5)
                      for n in WEIGHT_NAMES}, uniform_attention=uniform_attention)


def all_inputs(p: int, device: torch.device | str = "cpu") -> Int[Tensor, "pairs 2"]:
    """Every (a, b) in [0, p)^2, index a * p + b."""
    values = torch.arange(p, device=device)
    return torch.cartesian_prod(values, values)


def _position_tables(w: ModAddWeights) -> Float[Tensor, "3 p_plus_1 d_model"]:
    """x = W_E[t] + W_pos[i] for every token t at every position i (rounded as per input)."""
    return w.W_E[None, :, :] + w.W_pos[:, None, :]


def _gather(
    table: Float[Tensor, "3 p_plus_1 heads d_head"], pairs: Int[Tensor, "batch 2"], p: int
) -> Float[Tensor, "batch heads 3 d_head"]:
    """Rows of a per-(position, token) table for the inputs (a, b, '=')."""
    equals = table[2, p].expand(pairs.shape[0], -1, -1)
    return torch.stack([table[0, pairs[:, 0]], table[1, pairs[:, 1]], equals], dim=2)


def attention_pattern(w: ModAddWeights, pairs: Int[Tensor, "batch 2"]) -> Float[Tensor, "batch heads 3"]:
    """Each head's attention from the '=' position to (a, b, '=')."""
    if w.uniform_attention:
        return torch.full((pairs.shape[0], w.n_heads, SEQUENCE), 1.0 / SEQUENCE, dtype=w.W_E.dtype, device=w.W_E.device)
    x = _position_tables(w)
    query = torch.einsum("d,hde->he", x[2, w.p], w.W_Q)  # the '=' query is the same for every input
    keys = _gather(torch.einsum("itd,hde->ithe", x, w.W_K), pairs, w.p)  # [batch, H, 3, dh]
    scores = torch.einsum("he,bhie->bhi", query, keys) / math.sqrt(w.d_head)
    return scores.softmax(dim=-1)


def logits(w: ModAddWeights, pairs: Int[Tensor, "batch 2"]) -> Float[Tensor, "batch p"]:
    """The model's forward pass at the '=' position (the only one the task reads).

    Keys and values are computed once per (position, token) and gathered per input: the
    same float32 operations per input as a per-input forward, p^2 / (3 (p + 1)) times fewer."""
    x = _position_tables(w)
    attn = attention_pattern(w, pairs)
    values = _gather(torch.einsum("itd,hde->ithe", x, w.W_V), pairs, w.p)  # [batch, H, 3, dh]
    z = torch.einsum("bhi,bhie->bhe", attn, values)
    resid = x[2, w.p] + torch.einsum("bhe,hed->bd", z, w.W_O)
    resid = resid + torch.relu(resid @ w.W_in) @ w.W_out
    return resid @ w.W_U


def labels(pairs: Int[Tensor, "batch 2"], p: int) -> Int[Tensor, " batch"]:
    return (pairs[:, 0] + pairs[:, 1]) % p


def correct_mask(out: Float[Tensor, "batch p"], pairs: Int[Tensor, "batch 2"]) -> torch.Tensor:
    """True where the answer's logit is strictly above every other logit (ties are wrong)."""
    target = labels(pairs, out.shape[1])
    target_logit = out.gather(1, target[:, None])
    others = out.scatter(1, target[:, None], float("-inf"))
    return target_logit[:, 0] > others.max(dim=-1).values


def train_split(p: int, fraction: float, seed: int) -> Int[Tensor, " n_train"]:
    """Indices (a * p + b) of the training pairs: a seeded random `fraction` of the p^2 pairs (at least one)."""
    generator = torch.Generator().manual_seed(seed + 7_919)
    order = torch.randperm(p * p, generator=generator)
    return order[: max(1, int(round(fraction * p * p)))]


def _train(config: ModAddConfig, out: Path, progress: bool) -> None:
    generator = torch.Generator().manual_seed(config.seed)
    initial = ModAddWeights.random(config.p, config.d_model, config.n_heads, config.d_head, config.d_mlp, generator,
                                   uniform_attention=config.attention == "uniform")
    params = {n: torch.nn.Parameter(t.clone()) for n, t in initial.as_dict().items()}
    trainable = [t for n, t in params.items() if not (initial.uniform_attention and n in ("W_Q", "W_K"))]
    opt = torch.optim.AdamW(trainable, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    pairs = all_inputs(config.p)[train_split(config.p, config.train_fraction, config.seed)]
    target = labels(pairs, config.p)
    (out / "checkpoints").mkdir()
    log = []

    def snapshot(path: Path) -> None:
        from safetensors.torch import save_file

        save_file({n: t.detach().clone().contiguous() for n, t in params.items()}, str(path))

    snapshot(out / "checkpoints" / "step_000000.safetensors")
    with progress_bar(enabled=progress, transient=True) as bar:
        task = bar.add_task(f"training modular addition (p={config.p}, seed={config.seed})", total=config.steps)
        for step in range(1, config.steps + 1):
            w = ModAddWeights(**params, uniform_attention=initial.uniform_attention)
            loss = torch.nn.functional.cross_entropy(logits(w, pairs).double(), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % config.checkpoint_every == 0 or step == config.steps:
                snapshot(out / "checkpoints" / f"step_{step:06d}.safetensors")
                log.append({"step": step, "train_loss": loss.item()})
            bar.advance(task)
    snapshot(out / "weights.safetensors")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
    (out / "train_log.json").write_text(json.dumps(log))


@dataclass(frozen=True)
class ModAddModel:
    """A trained modular-addition model: its config, final weights and cache directory."""

    config: ModAddConfig
    weights: ModAddWeights
    directory: Path

    @property
    def weights_path(self) -> Path:
        return self.directory / "weights.safetensors"

    def checkpoint_steps(self) -> list[int]:
        """Steps of the saved checkpoints, ascending (0 is the initialisation)."""
        return sorted(int(p.stem.split("_")[1]) for p in (self.directory / "checkpoints").glob("step_*.safetensors"))

    def checkpoint(self, step: int) -> ModAddWeights:
        return load_weights(self.directory / "checkpoints" / f"step_{step:06d}.safetensors",
                            uniform_attention=self.config.attention == "uniform")


def load_weights(path: str | Path, *, uniform_attention: bool = False) -> ModAddWeights:
    """Load and validate modular-addition weights from a safetensors file (`UserError` on any problem)."""
    return ModAddWeights.from_dict(read_float_tensors(path), uniform_attention=uniform_attention, source=str(path))


def train_modadd(config: ModAddConfig, *, progress: bool = True) -> ModAddModel:
    """Train (or load from cache) the model for `config`. Deterministic given the config (CPU)."""
    config.validate()

    def build(tmp: Path) -> None:
        with torch_threads(1):
            _train(config, tmp, progress)

    directory = get_or_build("modadd", config, build)
    return ModAddModel(config=config, weights=load_weights(directory / "weights.safetensors",
                                                           uniform_attention=config.attention == "uniform"),
                       directory=directory)


__all__ = ["ModAddConfig", "ModAddWeights", "ModAddModel", "train_modadd", "logits", "attention_pattern", "correct_mask",
           "labels", "all_inputs", "train_split", "load_weights", "constructed_pizza", "ATTENTION_KINDS", "WEIGHT_NAMES"]


def spread_frequencies(p: int) -> tuple[int, ...]:
    """Three distinct frequencies in [1, (p-1)//2] spread over the range (1, 2, 3 for p = 7; 6, 14, 22 for p = 59)."""
    top = max(1, (p - 1) // 2)
    return tuple(sorted({min(top, max(1, round(top * f))) for f in (0.22, 0.5, 0.78)} or {1}))


def constructed_pizza(p: int, frequencies: tuple[int, ...] | None = None, neurons_per_frequency: int = 16) -> ModAddWeights:
    """A hand-built constant-attention ("pizza") model that implements the numerical-integration
    algorithm exactly (a reference for tests and benchmarks, no training); frequencies default to
    `spread_frequencies(p)`.

    One head, uniform attention, d_model = 4 K for K frequencies: W_E[a] holds 3 (cos w a, sin w a)
    per frequency (so the attention average carries cos w a + cos w b), the '=' token and the
    positions are zero, W_V = W_O = identity. Neuron (k, j) has phase phi = 2 pi j / N and reads
    cos(w a + phi) + cos(w b + phi); it writes cos(w c + 2 phi) into separate output coordinates
    that W_U reads, so the logits are the quadrature sum_j ReLU(cos(theta + phi_j)) cos(w c + 2 phi_j)
    of each frequency, maximal at c = a + b mod p.
    """
    frequencies = spread_frequencies(p) if frequencies is None else frequencies
    K, N = len(frequencies), neurons_per_frequency
    d = 4 * K
    W_E = torch.zeros(p + 1, d)
    W_in = torch.zeros(d, K * N)
    W_out = torch.zeros(K * N, d)
    W_U = torch.zeros(d, p)
    values = torch.arange(p, dtype=torch.float64)
    for index, k in enumerate(frequencies):
        omega = 2 * math.pi * k / p
        W_E[:p, 2 * index] = (3 * torch.cos(omega * values)).float()
        W_E[:p, 2 * index + 1] = (3 * torch.sin(omega * values)).float()
        out = 2 * K + 2 * index
        W_U[out] = torch.cos(omega * values).float()
        W_U[out + 1] = torch.sin(omega * values).float()
        for j in range(N):
            phi = 2 * math.pi * j / N
            neuron = index * N + j
            W_in[2 * index, neuron], W_in[2 * index + 1, neuron] = math.cos(phi), -math.sin(phi)
            W_out[neuron, out], W_out[neuron, out + 1] = math.cos(2 * phi), -math.sin(2 * phi)
    eye = torch.eye(d)[None]
    return ModAddWeights(W_E=W_E, W_pos=torch.zeros(SEQUENCE, d), W_Q=torch.zeros(1, d, d), W_K=torch.zeros(1, d, d),
                         W_V=eye.clone(), W_O=eye.clone(), W_in=W_in, W_out=W_out, W_U=W_U, uniform_attention=True)

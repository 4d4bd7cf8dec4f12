"""The digits subject: a small MLP classifier of scikit-learn's 8x8 handwritten digits.

The first "vision model" of the SAE family. Recipe (all fixed by `DigitsConfig`, whose
hash keys the cache):

* data: `sklearn.datasets.load_digits` (1797 images, 8x8 pixels in 0..16, scaled to
  [0, 1]), split once, stratified by class, with a fixed `split_seed` independent of
  the model seed: 70% train / 10% val / 20% test. The splits are disjoint sets of
  *images*;
* augmentation (to get enough activations for an SAE and a more robust classifier):
  every image appears under the 9 shifts by (dy, dx) in {-1, 0, 1}^2 (zero fill, no
  wrap-around). Train images additionally get `train_noise_copies` copies with
  Gaussian pixel noise (sd `noise_std`) per shift; val/test images are only shifted;
* model: `Linear(64, hidden[0]) -> ReLU -> Linear(hidden[0], hidden[1]) -> ReLU ->
  Linear(hidden[1], 10)`, trained with AdamW on the augmented train set, seeded and
  deterministic on CPU (one intra-op thread);
* SAE site: the post-ReLU output of the first hidden layer (`d_in = hidden[0]`). The
  "downstream" part of the network is everything after it.

Cached under `$INTERPGYM_HOME/cache/digits/<config-hash>/` as `weights.safetensors`
and `train_log.json`. Building takes a few seconds on one CPU core.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from interpgym.core.cache import get_or_build
from interpgym.core.errors import require
from interpgym.core.seeding import numpy_random_state
from interpgym.core.threads import torch_threads
from interpgym.subjects.activations import SPLITS, Reconstruct, SAEDefaults, Split
from interpgym.subjects.splice import ablation_metrics, apply_reconstruct, kl_div

N_PIXELS = 64
N_CLASSES = 10
SHIFTS: tuple[tuple[int, int], ...] = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@dataclass(frozen=True)
class DigitsConfig:
    """Full recipe of the digits classifier and its data; its hash keys the cache."""

    seed: int = 0
    split_seed: int = 0  # fixes which images are train/val/test, independently of `seed`
    hidden: tuple[int, int] = (64, 64)
    train_noise_copies: int = 2
    noise_std: float = 0.05
    epochs: int = 30
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4

    def validate(self) -> None:
        """Raise `UserError` for impossible values."""
        require(len(self.hidden) == 2 and min(self.hidden) >= 1, f"hidden must be two positive widths (got {self.hidden})")
        require(self.train_noise_copies >= 0, "train_noise_copies must be >= 0")
        require(self.noise_std >= 0, "noise_std must be >= 0")
        require(self.epochs >= 1 and self.batch >= 1, "epochs and batch must be >= 1")
        require(self.lr > 0, "lr must be > 0")


def _split_indices(labels: np.ndarray, split_seed: int) -> dict[Split, np.ndarray]:
    """Disjoint, stratified 70/10/20 split of image indices (sorted within each split)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=0.2, stratify=labels, random_state=numpy_random_state(split_seed))
    train, val = train_test_split(rest, test_size=0.125, stratify=labels[rest],
                                  random_state=numpy_random_state(split_seed))
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _shift(images: Float[np.ndarray, "n 8 8"], dy: int, dx: int) -> Float[np.ndarray, "n 8 8"]:
    """Shift images by (dy, dx) pixels with zero fill (content shifted off the edge is lost)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return padded[:, 1 - dy : 9 - dy, 1 - dx : 9 - dx]


def augmented_split(config: DigitsConfig, split: Split) -> tuple[Float[Tensor, "n 64"], Int[Tensor, " n"]]:
    """The augmented images (flattened, in [0, 1] before noise) and classes of one split.

    Row order: shift-major, then image (then noise copy for train). Deterministic given
    `config` (noise drawn from a generator seeded by `config.seed`).
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)
    classes = data.target.astype(np.int64)
    chosen = _split_indices(classes, config.split_seed)[split]
    shifted = np.concatenate([_shift(images[chosen], dy, dx) for dy, dx in SHIFTS]).reshape(-1, N_PIXELS)
    y = np.tile(classes[chosen], len(SHIFTS))
    x = torch.from_numpy(shifted)
    y_t = torch.from_numpy(y)
    if split == "train" and config.train_noise_copies > 0:
        gen = torch.Generator().manual_seed(config.seed)
        noisy = [x + config.noise_std * torch.randn(x.shape, generator=gen) for _ in range(config.train_noise_copies)]
        x = torch.cat([x, *noisy])
        y_t = y_t.repeat(1 + config.train_noise_copies)
    return x, y_t


class DigitsMLP(nn.Module):
    """64 -> hidden[0] -> hidden[1] -> 10 ReLU MLP, split at the SAE site (after the first ReLU)."""

    def __init__(self, hidden: tuple[int, int]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(N_PIXELS, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], N_CLASSES)

    def site(self, x: Float[Tensor, "n 64"]) -> Float[Tensor, "n h0"]:
        """Activations at the SAE site: the post-ReLU first hidden layer."""
        return torch.relu(self.fc1(x))

    def head(self, h: Float[Tensor, "n h0"]) -> Float[Tensor, "n 10"]:
        """Logits from site activations (the part of the network after the site)."""
        return self.fc3(torch.relu(self.fc2(h)))

    def forward(self, x: Float[Tensor, "n 64"]) -> Float[Tensor, "n 10"]:
        return self.head(self.site(x))


def _train(config: DigitsConfig, directory: Path) -> None:
    """Train the classifier deterministically and write `weights.safetensors` + `train_log.json`."""
    with torch_threads(1):
        torch.manual_seed(config.seed)
        model = DigitsMLP(config.hidden)
        x, y = augmented_split(config, "train")
        x_val, y_val = augmented_split(config, "val")
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps_per_epoch = -(-len(x) // config.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
        gen = torch.Generator().manual_seed(config.seed + 1)
        log = []
        for epoch in range(config.epochs):
            order = torch.randperm(len(x), generator=gen)
            total = 0.0
            for start in range(0, len(x), config.batch):
                idx = order[start : start + config.batch]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            with torch.no_grad():
                val_acc = (model(x_val).argmax(-1) == y_val).float().mean().item()
            log.append({"epoch": epoch, "train_ce": total / len(x), "val_accuracy": val_acc})
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "weights.safetensors"))
    (directory / "train_log.json").write_text(json.dumps(log, indent=1))


class DigitsSubject:
    """`ActivationSubject` for the digits MLP (see the module docstring).

    Activations are recomputed from the cached weights on first use per split (cheap:
    ~40k x 64 floats for train) and kept in memory.
    """

    name = "digits"

    def __init__(self, config: DigitsConfig, directory: Path, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.directory = directory
        self.device = torch.device(device)
        self.model = DigitsMLP(config.hidden)
        self.model.load_state_dict(load_file(str(directory / "weights.safetensors")))
        self.model.to(self.device).eval().requires_grad_(False)
        self.d_in = config.hidden[0]
        self.sae_defaults = SAEDefaults(width=8 * self.d_in)
        self.hook_name: str | None = None
        self.model_name: str | None = None
        self._inputs: dict[Split, tuple[Tensor, Tensor]] = {}

    def _split(self, split: Split) -> tuple[Float[Tensor, "n 64"], Int[Tensor, " n"]]:
        require(split in SPLITS, f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        if split not in self._inputs:
            x, y = augmented_split(self.config, split)
            self._inputs[split] = (x.to(self.device), y.to(self.device))
        return self._inputs[split]

    @torch.no_grad()
    def activations(self, split: Split) -> Float[Tensor, "n d_in"]:
        """Post-ReLU first-hidden-layer activations of every augmented image of `split`."""
        return self.model.site(self._split(split)[0])

    def labels(self, split: Split) -> dict[str, Int[Tensor, " n"]]:
        """`{"digit": class 0..9}` aligned with `activations(split)`."""
        return {"digit": self._split(split)[1]}

    def ground_truth(self) -> None:
        """Unknown for a trained network."""
        return None

    @cached_property
    def train_mean(self) -> Float[Tensor, " d_in"]:
        """Mean site activation over the train split (the mean-ablation baseline)."""
        return self.activations("train").mean(0)

    @torch.no_grad()
    def downstream(self, reconstruct: Reconstruct, split: Split = "test") -> dict[str, float]:
        """Classifier CE and accuracy on `split` with the site replaced by `reconstruct(acts)`.

        Returns clean / spliced / zero-ablated / mean-ablated (train mean) `ce_loss_*` and
        `accuracy_*`, the recovered fractions `ce_loss_recovered_zero` =
        (CE_zero - CE_spliced) / (CE_zero - CE_clean) and `ce_loss_recovered_mean`, and
        `kl_div` = mean KL(clean || spliced) of the class distributions.
        """
        x, y = self._split(split)
        acts = self.model.site(x)
        spliced_acts = apply_reconstruct(reconstruct, acts)
        logits = {
            "clean": self.model.head(acts),
            "spliced": self.model.head(spliced_acts),
            "zero": self.model.head(torch.zeros_like(acts)),
            "mean": self.model.head(self.train_mean.expand_as(acts)),
        }
        ce = {k: nn.functional.cross_entropy(v, y).item() for k, v in logits.items()}
        metrics = ablation_metrics(ce, kl_div(logits["clean"], logits["spliced"]))
        for k, v in logits.items():
            metrics[f"accuracy_{k}"] = (v.argmax(-1) == y).float().mean().item()
        metrics["downstream_inputs"] = float(len(y))
        return metrics


def build(config: DigitsConfig) -> Path:
    """Train (or fetch from the cache) the classifier for `config`; return its cache directory."""
    config.validate()
    return get_or_build("digits", dataclasses.asdict(config), lambda tmp: _train(config, tmp))


def load(seed: int = 0, device: torch.device | str = "cpu", config: DigitsConfig | None = None) -> DigitsSubject:
    """The digits subject for `seed`, trained on first use (seconds).

    An explicit `config` replaces the default recipe (its own `seed` then applies).
    """
    config = config if config is not None else DigitsConfig(seed=seed)
    return DigitsSubject(config, build(config), device)

"""The toy model of superposition: sparse non-negative features on known directions.

`n_features` unit directions D (rows) live in `d_in < n_features` dimensions; an
input is x = sum_i a_i D_i (+ optional isotropic noise), where feature i fires with
probability p_i and then has magnitude ~ Uniform[`min_magnitude`, `max_magnitude`].
Firing rates are Zipf-like, p_i proportional to (i + 1)^(-`zipf_exponent`), scaled so
that sum_i p_i = `mean_l0` (the expected number of active features per input — the
*true mean L0*) and capped at `max_rate`. With `correlated_groups` > 0, features are
split into that many contiguous groups and fire through a Gaussian copula: feature
i fires iff sqrt(rho) g_group + sqrt(1 - rho) e_i < Phi^-1(p_i), which keeps every
marginal rate p_i exactly while correlating firing inside a group (rho =
`group_correlation`).

SAE defaults on this subject: width 2 x n_features, Adam lr 1e-2, k = round(mean_l0).

Default (seed 0): 256 features in 64 dims, true mean L0 = 5 (expected; the empirical
value per split is `empirical_mean_l0`), 131072 / 16384 / 16384 train / val / test
inputs. Generation is a pure function of the config (no cache needed: < 1 s).
The rarest default feature fires with probability ~0.0070 (~920 train inputs).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.errors import require
from interpgym.core.seeding import derived_seed, generator
from interpgym.subjects.activations import SPLITS, Reconstruct, SAEDefaults, Split


@dataclass(frozen=True)
class ToyConfig:
    """Full recipe of a toy superposition dataset."""

    n_features: int = 256
    d_in: int = 64
    mean_l0: float = 5.0
    zipf_exponent: float = 0.7
    max_rate: float = 0.5
    min_magnitude: float = 0.5
    max_magnitude: float = 1.5
    correlated_groups: int = 0
    group_correlation: float = 0.5
    noise_std: float = 0.0
    n_train: int = 131072
    n_val: int = 16384
    n_test: int = 16384
    seed: int = 0

    def validate(self) -> None:
        """Raise `UserError` for impossible values."""
        require(self.d_in >= 1 and self.n_features >= 1, "toy d_in and n_features must be >= 1")
        require(0 < self.mean_l0 <= self.n_features * self.max_rate, "toy mean_l0 must be in (0, n_features * max_rate]")
        require(0 < self.max_rate <= 1, "toy max_rate must be in (0, 1]")
        require(0 <= self.min_magnitude <= self.max_magnitude, "toy magnitudes need 0 <= min <= max")
        require(0 <= self.correlated_groups <= self.n_features, "toy correlated_groups must be in [0, n_features]")
        require(0 <= self.group_correlation < 1, "toy group_correlation must be in [0, 1)")
        require(self.noise_std >= 0, "toy noise_std must be >= 0")
        require(min(self.n_train, self.n_val, self.n_test) >= 1, "toy split sizes must be >= 1")


def firing_rates(cfg: ToyConfig) -> Float[Tensor, " n_features"]:
    """Per-feature firing probabilities: Zipf-like, summing to `mean_l0`, capped at `max_rate`."""
    raw = (torch.arange(cfg.n_features, dtype=torch.float64) + 1.0).pow(-cfg.zipf_exponent)
    rates = raw * (cfg.mean_l0 / raw.sum())
    # Cap, then spread the removed mass over the uncapped features; validate() makes this
    # feasible and each pass caps at least one more feature, so it ends within n passes.
    while rates.max() > cfg.max_rate * (1 + 1e-9):
        capped = rates >= cfg.max_rate
        rates[capped] = cfg.max_rate
        free = ~capped
        rates[free] *= (cfg.mean_l0 - cfg.max_rate * capped.sum()) / rates[free].sum()
    return rates.float()


def feature_directions(cfg: ToyConfig) -> Float[Tensor, "n_features d_in"]:
    """The true feature directions: seeded Gaussian vectors normalised to unit length."""
    directions = torch.randn(cfg.n_features, cfg.d_in, generator=generator(cfg.seed * 7919 + 1))
    return directions / directions.norm(dim=1, keepdim=True)


def sample_features(cfg: ToyConfig, n: int, seed: int) -> Float[Tensor, "n n_features"]:
    """Sparse non-negative feature activations for `n` inputs (deterministic in `seed`)."""
    gen = generator(seed)
    rates = firing_rates(cfg)
    noise = torch.randn(n, cfg.n_features, generator=gen)
    if cfg.correlated_groups > 0:
        group_of = torch.arange(cfg.n_features) * cfg.correlated_groups // cfg.n_features
        shared = torch.randn(n, cfg.correlated_groups, generator=gen)[:, group_of]
        rho = cfg.group_correlation
        noise = rho**0.5 * shared + (1 - rho) ** 0.5 * noise
    fires = noise < torch.special.ndtri(rates)
    magnitudes = torch.rand(n, cfg.n_features, generator=gen) * (cfg.max_magnitude - cfg.min_magnitude) + cfg.min_magnitude
    return magnitudes * fires


class ToySubject:
    """`ActivationSubject` for the toy model (see the module docstring)."""

    name = "toy"

    def __init__(self, cfg: ToyConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.d_in = cfg.d_in
        # Width twice the true feature count (at exactly n_features a single dead latent costs
        # a feature) and Adam lr 1e-2 (best of 1e-3..3e-2): measurements in docs/sae.md, "Subjects".
        self.sae_defaults = SAEDefaults(width=2 * cfg.n_features, k=max(1, round(cfg.mean_l0)), lr=1e-2)
        self.hook_name: str | None = None
        self.model_name: str | None = None
        self.true_mean_l0 = cfg.mean_l0
        self._directions = feature_directions(cfg)

    @functools.lru_cache(maxsize=3)  # noqa: B019  (one subject object per config; splits are small)
    def _split(self, split: Split) -> tuple[Tensor, Tensor]:
        require(split in SPLITS, f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        size = {"train": self.cfg.n_train, "val": self.cfg.n_val, "test": self.cfg.n_test}[split]
        split_seed = derived_seed(self.cfg.seed, 17 + SPLITS.index(split))
        features = sample_features(self.cfg, size, split_seed)
        acts = features @ self._directions
        if self.cfg.noise_std > 0:
            acts = acts + self.cfg.noise_std * torch.randn(acts.shape, generator=generator(split_seed + 5))
        return acts, features

    def activations(self, split: Split) -> Float[Tensor, "n d_in"]:
        return self._split(split)[0]

    def features(self, split: Split) -> Float[Tensor, "n n_features"]:
        """The true feature activations behind `activations(split)`."""
        return self._split(split)[1]

    def empirical_mean_l0(self, split: Split) -> float:
        """Mean number of active true features per input on `split`."""
        return float((self.features(split) > 0).sum(1).float().mean())

    def labels(self, split: Split) -> dict[str, Int[Tensor, " n"]]:
        return {}

    def ground_truth(self) -> Float[Tensor, "n_features d_in"]:
        return self._directions.clone()

    def downstream(self, reconstruct: Reconstruct, split: Split = "test") -> dict[str, float]:
        return {}


def load(seed: int = 0, **overrides: object) -> ToySubject:
    """The toy subject with default config (fields can be overridden by keyword)."""
    return ToySubject(ToyConfig(seed=seed, **overrides))  # type: ignore[arg-type]

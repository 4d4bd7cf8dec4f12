"""The subcubic proofs are sound per input (against the float32 forward) on trained,
partly trained, random, tied and hypothesis-generated models, and useful on trained ones."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpgym.proofs.certificates import certified_mask
from interpgym.proofs.result import ProofResult
from interpgym.proofs.subcubic import STRATEGIES, VARIANTS, SubcubicVariant, run_subcubic
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, train_maxk

from .helpers import SMALL_CONFIGS, all_tokens, forward_correct, random_weights, small_model, tied_model, zero_model


def assert_sound(w: MaxKWeights, variants: tuple[SubcubicVariant, ...] = VARIANTS) -> dict[str, ProofResult]:
    """Every input any variant certifies is correct in float32; counts agree; no bound exceeds accuracy."""
    truth = forward_correct(w)
    tokens = all_tokens(w)
    results = {}
    for variant in variants:
        result = run_subcubic(w, variant)
        covered = certified_mask(result.ok, result.ok_pure, tokens)
        unsound = covered & ~truth
        assert not unsound.any(), f"{variant.name} certified wrong inputs {tokens[unsound][:5].tolist()}"
        assert int(covered.sum()) == result.certified
        assert result.certified <= int(truth.sum())  # bound <= exact accuracy, compared exactly
        results[variant.name] = result
    return results


def test_strategy_names_cover_every_sound_combination() -> None:
    assert len(STRATEGIES) == 16
    assert all(name.startswith("subcubic/eqke=") and "," not in name for name in STRATEGIES)


@pytest.mark.parametrize("config", SMALL_CONFIGS)
def test_sound_and_useful_on_trained_models(config: tuple) -> None:
    w = small_model(*config)
    results = assert_sound(w)
    accuracy = float(forward_correct(w).float().mean())
    best_exact = max(r.bound for name, r in results.items() if "eqke=exact" in name)
    best_low_rank = max(r.bound for name, r in results.items() if "eqke=exact" not in name)
    # non-vacuous on every trained model (the default-model targets live in benchmarks/proofs_maxk.py)
    assert best_exact >= 0.8 * accuracy
    assert best_low_rank >= 0.3 * accuracy


def test_sound_on_partly_trained_checkpoints() -> None:
    """Checkpoints mid-training have many wrong inputs next to certified ones: the hard regime."""
    config = MaxKConfig(vocab=10, k=3, d_model=8, d_head=8, steps=400, seed=5, checkpoint_every=100)
    model = train_maxk(config, progress=False)
    straddled = False
    for step in model.checkpoint_steps():
        w = model.checkpoint(step)
        results = assert_sound(w)
        wrong = int((~forward_correct(w)).sum())
        straddled |= wrong > 0 and max(r.certified for r in results.values()) > 0
    assert straddled, "no checkpoint had both certified and misclassified inputs"


@pytest.mark.parametrize(("vocab", "k", "d", "seed", "scale"), [
    (2, 1, 3, 0, None), (6, 2, 4, 1, 1.5), (7, 3, 5, 2, None), (9, 4, 3, 3, 3.0), (5, 5, 4, 4, 1.5),
])
def test_sound_on_random_weights(vocab: int, k: int, d: int, seed: int, scale: float | None) -> None:
    assert_sound(random_weights(vocab, k, d, seed, scale=scale))


def test_sound_on_exact_ties() -> None:
    """Tied unembedding columns make every input whose max is either tied token a tie (= wrong);
    tied embeddings make attention blind between two tokens; all-zero weights tie everything."""
    w = small_model(*SMALL_CONFIGS[1])
    tied = tied_model(w)
    for result in assert_sound(tied).values():
        assert not result.ok[-1].any() and not result.ok[-2].any()
        assert not result.ok_pure[-1].any() and not result.ok_pure[-2].any()
    zero = zero_model(w)
    assert all(r.certified == 0 for r in assert_sound(zero).values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vocab=st.integers(2, 7), k=st.integers(1, 4), d=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.3, 1.0, 3.0, 10.0]),
)
def test_sound_on_hypothesis_random_weights(vocab: int, k: int, d: int, seed: int, scale: float) -> None:
    assert_sound(random_weights(vocab, k, d, seed, scale=scale))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), noise=st.sampled_from([0.01, 0.03, 0.1, 0.3]))
def test_sound_on_hypothesis_perturbed_trained_model(seed: int, noise: float) -> None:
    """Near-correct models: a trained model plus noise, so certificates sit next to errors."""
    w = small_model(*SMALL_CONFIGS[4])
    generator = torch.Generator().manual_seed(seed)
    noisy = {n: t + noise * t.abs().mean() * torch.randn(t.shape, generator=generator) for n, t in w.as_dict().items()}
    variants = tuple(v for v in VARIANTS if v.attention == "mean+diff")
    assert_sound(MaxKWeights(**noisy), variants)

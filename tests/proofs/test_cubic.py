"""The cubic proof is sound per input (against the float32 forward) and non-trivial on trained models."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpgym.proofs.certificates import certified_mask, count_certified
from interpgym.proofs.cubic import _certificate_scaled, cubic, cubic_certificate, pessimized_value_tables
from interpgym.proofs.roundoff import margin_slack, value_logit_bound
from interpgym.proofs.tables import compute_tables
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, train_maxk

from .helpers import SMALL_CONFIGS, all_tokens, forward_correct, random_weights, small_model, tied_model, zero_model


def assert_sound(w: MaxKWeights) -> tuple[int, int]:
    """Every input the cubic proof certifies is correct under the float32 forward; returns (certified, correct)."""
    result = cubic(w)
    truth = forward_correct(w)
    covered = certified_mask(result.ok, result.ok_pure, all_tokens(w))
    unsound = covered & ~truth
    assert not unsound.any(), f"certified but wrong: {all_tokens(w)[unsound][:5].tolist()}"
    assert int(covered.sum()) == result.certified == count_certified(result.ok, result.ok_pure)
    assert result.certified <= int(truth.sum())
    return result.certified, int(truth.sum())


@pytest.mark.parametrize("config", SMALL_CONFIGS)
def test_sound_and_useful_on_trained_models(config: tuple) -> None:
    certified, correct = assert_sound(small_model(*config))
    # a trained model's mechanism is what the proof exploits: it must certify most of it
    assert correct > 0.9 * small_model(*config).vocab ** config[1]
    assert certified >= 0.8 * correct


@pytest.mark.parametrize(("vocab", "k", "d", "seed"), [(2, 1, 3, 0), (6, 2, 4, 1), (7, 3, 5, 2), (9, 4, 3, 3), (5, 5, 4, 4)])
def test_sound_on_random_weights(vocab: int, k: int, d: int, seed: int) -> None:
    assert_sound(random_weights(vocab, k, d, seed, scale=1.5))


def test_sound_on_exact_ties() -> None:
    """Tied unembedding columns and tied embeddings: nothing involving the tied max may be certified."""
    w = small_model(*SMALL_CONFIGS[1])
    tied = tied_model(w)
    result = cubic(tied)
    assert not result.ok[-1].any() and not result.ok[-2].any()
    assert not result.ok_pure[-1].any() and not result.ok_pure[-2].any()
    assert_sound(tied)


def test_sound_at_every_training_stage() -> None:
    """Partly trained models have small margins: the regime where a sloppy bound would slip."""
    config = MaxKConfig(vocab=10, k=4, d_model=8, d_head=8, seed=5, steps=400, checkpoint_every=50)
    model = train_maxk(config, progress=False)
    certified = [assert_sound(model.checkpoint(step))[0] for step in model.checkpoint_steps()]
    assert len(certified) == 9 and certified[-1] > 0


def test_zero_model_certifies_nothing() -> None:
    zero = zero_model(random_weights(4, 3, 2, 0))
    assert cubic(zero).certified == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vocab=st.integers(2, 6),
    k=st.integers(1, 4),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([0.3, 1.0, 3.0, 8.0]),
    sharpen=st.booleans(),
)
def test_sound_on_random_small_weights(vocab: int, k: int, d: int, seed: int, scale: float, sharpen: bool) -> None:
    """Hypothesis search for a counterexample; `sharpen` builds a max-like direct path so proofs succeed often."""
    w = random_weights(vocab, k, d, seed, scale=scale)
    if sharpen:
        # unembedding that rewards larger tokens through the residual's first coordinate
        W_E = w.W_E.clone()
        W_E[:, 0] = torch.linspace(-1, 1, vocab) * scale
        W_U = w.W_U.clone()
        W_U[0] = torch.linspace(-1, 1, vocab) * scale
        w = MaxKWeights(**{**w.as_dict(), "W_E": W_E, "W_U": W_U})
    assert_sound(w)


def test_flops_scale_cubically() -> None:
    small = cubic(random_weights(16, 4, 8, 0)).flops
    large = cubic(random_weights(32, 4, 8, 0)).flops
    assert 4 < large / small <= 8.5


@pytest.mark.parametrize("index", range(len(SMALL_CONFIGS)))
def test_scaled_and_log_space_paths_agree(index: int) -> None:
    for w in (small_model(*SMALL_CONFIGS[index]), random_weights(7, 4, 3, index, scale=2.0)):
        tables = compute_tables(w)
        slack = margin_slack(w, value_logit_bound(tables.EVOU, tables.PVOU))
        fast, robust = cubic_certificate(tables, slack), cubic_certificate(tables, slack, log_space=True)
        assert torch.equal(fast[0], robust[0]) and torch.equal(fast[1], robust[1])


def test_huge_score_ranges_take_the_log_space_path_soundly() -> None:
    w = random_weights(5, 3, 2, seed=3, scale=12.0)
    tables = compute_tables(w)
    assert (
        _certificate_scaled(tables, pessimized_value_tables(tables, margin_slack(w, value_logit_bound(tables.EVOU, tables.PVOU)))) is None
    )
    assert_sound(w)

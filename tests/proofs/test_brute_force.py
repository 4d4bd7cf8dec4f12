"""Brute force agrees with the float32 forward on every input, with bounded work."""

from __future__ import annotations

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.core.flops import FlopCounter
from interpgym.proofs.brute_force import brute_force, exact_correctness, naive_forward_flops
from interpgym.proofs.tables import compute_tables, logits_from_tables
from interpgym.subjects.maxk import MaxKWeights, last_logits

from .helpers import SMALL_CONFIGS, all_tokens, forward_correct, random_weights, small_model


@pytest.mark.parametrize("config", SMALL_CONFIGS)
def test_agrees_with_forward_trained(config: tuple) -> None:
    w = small_model(*config)
    result = brute_force(w)
    truth = forward_correct(w)
    assert torch.equal(result.correct, truth)
    assert result.certified == int(truth.sum())
    assert result.total == w.vocab**w.k


@pytest.mark.parametrize(("vocab", "k", "d", "seed"), [(2, 1, 3, 0), (7, 1, 4, 1), (6, 3, 5, 2), (9, 4, 3, 3), (5, 5, 4, 4)])
def test_agrees_with_forward_random(vocab: int, k: int, d: int, seed: int) -> None:
    w = random_weights(vocab, k, d, seed, scale=1.5)
    assert torch.equal(exact_correctness(w).correct, forward_correct(w))


def test_chunking_does_not_change_verdicts() -> None:
    w = small_model(*SMALL_CONFIGS[2])
    reference = exact_correctness(w).correct
    for prefixes in (1, 7, 10_000):
        assert torch.equal(exact_correctness(w, prefixes_per_chunk=prefixes).correct, reference)


def test_exact_ties_are_wrong_and_decided_by_forward() -> None:
    """Two identical unembedding columns: the max token always ties, so it is always wrong."""
    w = random_weights(6, 3, 4, seed=5)
    W_U = w.W_U.clone()
    W_U[:, 5] = W_U[:, 4]
    tied = MaxKWeights(**{**w.as_dict(), "W_U": W_U})
    exact = exact_correctness(tied)
    assert torch.equal(exact.correct, forward_correct(tied))
    tokens = all_tokens(tied)
    max_is_tied = (tokens.max(dim=1).values == 5) | (tokens.max(dim=1).values == 4)
    assert not exact.correct[max_is_tied].any()
    # where the tied pair holds the top logit, the table margin is exactly 0: the forward decides
    top_is_tied = logits_from_tables(compute_tables(tied), tokens).argmax(dim=1) >= 4
    assert exact.decided_by_forward >= int((max_is_tied & top_is_tied).sum()) > 0


def test_all_zero_model_is_never_correct() -> None:
    zero = MaxKWeights(**{n: torch.zeros_like(t) for n, t in random_weights(4, 3, 2, 0).as_dict().items()})
    result = brute_force(zero)
    assert result.certified == 0
    assert result.extra["decided_by_forward"] == 4**3


def test_flops_are_counted_and_far_below_naive() -> None:
    w = small_model(*SMALL_CONFIGS[2])
    result = brute_force(w)
    n_inputs, k, v = w.vocab**w.k, w.k, w.vocab
    # the table path does about 2 K v multiply-adds per input, plus softmax and the margin
    assert 2 * k * v * n_inputs <= result.flops <= 12 * k * v * n_inputs + 10**6
    naive = naive_forward_flops(w, sample=n_inputs)
    tokens = all_tokens(w)
    with FlopCounter() as counter:
        last_logits(w, tokens)
    assert naive == counter.total
    assert result.flops < naive


def test_refuses_input_spaces_too_large_to_enumerate() -> None:
    w = random_weights(2**11, 3, 2, 0)
    with pytest.raises(UserError, match="too many"):
        exact_correctness(w)

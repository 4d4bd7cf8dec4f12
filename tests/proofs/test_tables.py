"""The component tables reproduce the model, and the margin slack covers the float32 forward's error."""

from __future__ import annotations

import pytest
import torch

from interpgym.proofs.roundoff import MAGNITUDES, forward_error_bound, margin_slack, value_logit_bound
from interpgym.proofs.tables import compute_tables, logits_from_tables
from interpgym.subjects.maxk import last_logits

from .helpers import SMALL_CONFIGS, all_tokens, random_weights, small_model


def _margins(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """logit[max] - logit[j] for every j (the quantity the slack bounds), shape [batch, v]."""
    target = tokens.max(dim=1).values
    return logits.gather(1, target[:, None]) - logits


@pytest.mark.parametrize("config", SMALL_CONFIGS[:3])
def test_tables_equal_float64_forward(config: tuple) -> None:
    w = small_model(*config)
    tokens = all_tokens(w)
    from_tables = logits_from_tables(compute_tables(w), tokens)
    forward64 = last_logits(w.to(torch.float64), tokens)
    assert torch.allclose(from_tables, forward64, rtol=0, atol=1e-11)


@pytest.mark.parametrize("magnitudes", MAGNITUDES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slack_covers_float32_error(seed: int, magnitudes: str) -> None:
    trained = small_model(*SMALL_CONFIGS[seed])
    # large random weights: scores of tens to hundreds, where the softmax terms dominate
    for w in (trained, random_weights(9, 4, 6, seed, scale=2.0), random_weights(7, 3, 5, seed, scale=6.0)):
        tables = compute_tables(w)
        tokens = all_tokens(w)
        error = (_margins(last_logits(w, tokens).double(), tokens) - _margins(logits_from_tables(tables, tokens), tokens)).abs().max()
        value_logits = value_logit_bound(tables.EVOU, tables.PVOU)
        forward_bound, logit_bound = forward_error_bound(w, value_logits, magnitudes)
        assert float(error) <= forward_bound
        # the margin bound is twice a bound on each logit's own error
        logit_error = (last_logits(w, tokens).double() - last_logits(w.to(torch.float64), tokens)).abs().max()
        assert 0 < float(logit_error) <= forward_bound / 2
        assert margin_slack(w, value_logits, magnitudes) > forward_bound
        assert logits_from_tables(tables, tokens).abs().max() <= logit_bound


def test_query_position_convention() -> None:
    """W_pos[K-1] sits on the query side of EQKE/EQKP/EU; keys keep their own positions."""
    w = random_weights(5, 3, 4, seed=7)
    t = compute_tables(w)
    E, P = w.W_E.double(), w.W_pos.double()
    query = (E[2] + P[-1]) @ w.W_Q.double()
    key = (E[4] + P[0]) @ w.W_K.double()
    score = float(query @ key) / w.d_head**0.5
    assert score == pytest.approx(float(t.EQKE[2, 4] + t.EQKP[2, 0]), abs=1e-12)
    assert torch.allclose(t.EU[2], (E[2] + P[-1]) @ w.W_U.double(), atol=1e-12)


def test_coordinate_magnitudes_never_tighter_than_pairwise() -> None:
    """Coordinate maxima dominate every per-pair magnitude, so their bound is the larger one."""
    for w in (small_model(*SMALL_CONFIGS[1]), random_weights(9, 4, 6, 3, scale=2.0)):
        tables = compute_tables(w)
        value_logits = value_logit_bound(tables.EVOU, tables.PVOU)
        pairwise, _ = forward_error_bound(w, value_logits, "pairwise")
        coordinate, _ = forward_error_bound(w, value_logits, "coordinate")
        assert 0 < pairwise <= coordinate

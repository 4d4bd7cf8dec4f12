"""The per-entry float32 error bounds (`roundoff_tables`) hold on every input, per entry.

The float32 intermediates (scores, attention) are recomputed with the forward's own ops and
checked to reproduce `last_logits` bit for bit; the exact values come from the float64 tables.
Families: trained small models, random weights, large-scale (adversarial) random weights.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import Tensor

from interpgym.proofs.pure_inputs import pure_float32_certified, pure_margins
from interpgym.proofs.roundoff_tables import ErrorTables, error_tables
from interpgym.proofs.tables import MaxKTables, compute_tables
from interpgym.subjects.maxk import MaxKWeights, last_logits

from .helpers import SMALL_CONFIGS, all_tokens, forward_correct, random_weights, small_model

UNDERFLOW = 2.0**-140  # absolute: float32 attention weights that underflow (module docstring)


def float32_attention(w: MaxKWeights, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(scores, attention, logits) of the float32 forward, op for op as in `last_logits` (checked bitwise)."""
    x = w.W_E[tokens] + w.W_pos
    q = x[:, -1] @ w.W_Q
    keys = x @ w.W_K
    scores = torch.einsum("bkh,bh->bk", keys, q) / math.sqrt(w.d_head)
    attn = scores.softmax(dim=-1)
    values = x @ w.W_V
    logits = (x[:, -1] + torch.einsum("bk,bkh->bh", attn, values) @ w.W_O) @ w.W_U
    assert torch.equal(logits, last_logits(w, tokens))
    return scores, attn, logits


def families() -> list[MaxKWeights]:
    trained = [small_model(*SMALL_CONFIGS[i]) for i in (0, 1, 2)]
    random = [random_weights(6, 3, 4, seed, scale=1.5) for seed in range(2)]
    adversarial = [random_weights(5, 3, 4, 7, scale=8.0), random_weights(4, 4, 6, 8, scale=30.0)]
    return trained + random + adversarial


def family_setup(index: int) -> tuple[MaxKWeights, Tensor, MaxKTables, ErrorTables]:
    """(weights, every input, exact tables, error tables) of `families()[index]`."""
    w = families()[index]
    tables = compute_tables(w)
    return w, all_tokens(w), tables, error_tables(w, tables)


def _key_gather(table: Tensor, tokens: Tensor) -> Tensor:
    """table[t_i, i, ...] per input and position: [batch, K, ...]."""
    return table[tokens, torch.arange(tokens.shape[1])]


@pytest.mark.parametrize("index", range(7))
def test_scores_attention_and_logits_within_their_bounds(index: int) -> None:
    w, tokens, tables, errors = family_setup(index)
    scores, attn, logits = (t.double() for t in float32_attention(w, tokens))
    q = tokens[:, -1]
    exact_scores = tables.EQKE[q[:, None], tokens] + tables.EQKP[q]
    exponent = errors.exponent[q[:, None], tokens, torch.arange(w.k)]  # [batch, K]
    assert ((scores - exact_scores).abs() <= exponent).all()
    exact_attn = exact_scores.softmax(dim=-1)
    ratio = torch.exp(2 * exponent.amax(dim=1, keepdim=True)) * (1 + errors.weight_relative) - 1
    assert ((attn - exact_attn).abs() <= exact_attn * ratio + UNDERFLOW).all()
    value_logits = tables.EVOU[tokens] + tables.PVOU  # [batch, K, v]
    reconstructed = tables.EU[q] + torch.einsum("bk,bkv->bv", attn, value_logits)
    bound = errors.direct[q] + torch.einsum("bk,bkv->bv", attn, _key_gather(errors.key, tokens))
    assert ((logits - reconstructed).abs() <= bound).all()


def worst_margin_bound(tables: MaxKTables, errors: ErrorTables, tokens: Tensor) -> Tensor:
    """Per input and output j: the largest sum_i b_i H_i(j) over b = softmax(s + e), |e_i| <= exponent
    (module docstring of `roundoff_tables`), by trying every sign pattern of e (2^K)."""
    q, m = tokens[:, -1], tokens.max(dim=1).values
    eps = errors.weight_relative
    value = tables.EVOU[tokens] + tables.PVOU  # [batch, K, v]
    relative = value - value.gather(2, m[:, None, None].expand(-1, tables.k, 1))  # w_i(j)
    key = _key_gather(errors.key, tokens)
    keys = key + key.gather(2, m[:, None, None].expand(-1, tables.k, 1))
    direct = (tables.EU[q] - tables.EU[q, m][:, None] + errors.direct[q] + errors.direct[q, m][:, None] + errors.float64)
    H = direct[:, None, :] + relative + eps * relative.abs() + (1 + eps) * keys  # [batch, K, v]
    scores = tables.EQKE[q[:, None], tokens] + tables.EQKP[q]
    exponent = errors.exponent[q[:, None], tokens, torch.arange(tables.k)]
    best = torch.full_like(direct, float("-inf"))
    for signs in itertools.product((-1.0, 1.0), repeat=tables.k):
        b = (scores + exponent * torch.tensor(signs, dtype=scores.dtype)).softmax(dim=-1)
        best = torch.maximum(best, torch.einsum("bk,bkv->bv", b, H))
    return best


@pytest.mark.parametrize("index", range(7))
def test_float32_margins_below_the_per_entry_bound(index: int) -> None:
    """logit^_j - logit^_m <= the bound the cubic proof certifies against, for every input and every j != m."""
    w, tokens, tables, errors = family_setup(index)
    logits = last_logits(w, tokens).double()
    m = tokens.max(dim=1).values
    margins = logits - logits.gather(1, m[:, None])
    bound = worst_margin_bound(tables, errors, tokens)
    wrong = torch.arange(w.vocab)[None, :] != m[:, None]
    assert (margins <= bound)[wrong].all()


def test_pure_decision_is_exact_without_errors() -> None:
    """With every error bound zero, the pure check is exactly `margin > 0` of the exact pure input."""
    w = small_model(*SMALL_CONFIGS[2])
    tables = compute_tables(w)
    errors = error_tables(w, tables)
    zero = ErrorTables(direct=torch.zeros_like(errors.direct), key=torch.zeros_like(errors.key),
                       exponent=torch.zeros_like(errors.exponent), weight_relative=0.0, float64=0.0)
    index = torch.arange(w.vocab)
    expected = (pure_margins(tables) > 0) & (index[None, :] <= index[:, None])
    assert torch.equal(pure_float32_certified(tables, zero), expected)
    assert expected.any()


@pytest.mark.parametrize("index", range(7))
def test_pure_inputs_certified_are_correct_in_float32(index: int) -> None:
    w = families()[index]
    tables = compute_tables(w)
    certified = pure_float32_certified(tables, error_tables(w, tables))
    truth = forward_correct(w)
    m, q = torch.nonzero(certified, as_tuple=True)
    tokens = torch.cat([m[:, None].expand(-1, w.k - 1), q[:, None]], dim=1)
    position = (tokens * w.vocab ** torch.arange(w.k - 1, -1, -1)).sum(dim=1)
    assert truth[position].all()

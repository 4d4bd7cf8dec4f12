"""The pieces of the subcubic proofs keep their stated guarantees, the two known traps of
the reference implementation are avoided, and verification FLOPs are counted."""

from __future__ import annotations

import math

import pytest
import torch

from interpgym.core.flops import FlopCounter
from interpgym.proofs.certificates import certified_mask
from interpgym.proofs.subcubic import SubcubicVariant, run_subcubic, verification_tables
from interpgym.proofs.subcubic_cases import attention_extremes, certificate_tables, certified_cases, logit_gap_at
from interpgym.proofs.subcubic_search import leading_directions, search_certificate
from interpgym.proofs.subcubic_tables import direct_tables, eqke_tables, query_key_factors
from interpgym.proofs.tables import compute_tables
from interpgym.subjects.maxk import MaxKWeights

from .helpers import SMALL_CONFIGS, all_tokens, forward_correct, random_weights, small_model

LOW_RANK = ("svd", "max_diff", "mean+max_diff")


@pytest.mark.parametrize("method", LOW_RANK)
@pytest.mark.parametrize("directions", ["svd", "random"])
def test_eqke_residual_bound_holds_for_any_directions(method: str, directions: str) -> None:
    """The rank-1 split is exact algebra: the row-difference bound holds whatever directions search picks."""
    w = small_model(*SMALL_CONFIGS[2]).to(dtype=torch.float64)
    factors = query_key_factors(w)
    if directions == "svd":
        u, v = leading_directions(factors)
    else:
        generator = torch.Generator().manual_seed(7)
        u, v = (torch.randn(w.vocab, generator=generator, dtype=torch.float64) * 3 for _ in range(2))
    tables = eqke_tables(factors, method, u, v)
    residual = compute_tables(w).EQKE - tables.eqke
    row_spread = residual.amax(dim=1) - residual.amin(dim=1)
    assert (row_spread <= tables.row_err * (1 + 1e-9) + 1e-12).all()


@pytest.mark.parametrize("method", ["exact", "mean_query+max_diff"])
def test_direct_path_split_bounds_every_wrong_output(method: str) -> None:
    w = small_model(*SMALL_CONFIGS[3]).to(dtype=torch.float64)
    split = direct_tables(w, query_key_factors(w).query, method)
    residual = compute_tables(w).EU - split.mean_logits  # r_q[y]
    gap = residual[:, None, :] - residual[:, :, None]  # [q, m, y]: r_q[y] - r_q[m]
    gap = gap.masked_fill(torch.eye(w.vocab, dtype=torch.bool)[None], float("-inf"))
    assert (gap.amax(dim=-1) <= split.query_err + 1e-12).all()


def test_two_sided_mean_diff_correction_is_sound_for_below_average_queries() -> None:
    """Trap 1: max_y[B + A R] <= max_y[B + A_bar R] + (A - A_bar) R_max fails when A < A_bar;
    the two-sided correction max(delta R_max, delta R_min) holds on both sides."""
    generator = torch.Generator().manual_seed(0)
    trials, outputs = 4000, 6
    gain_b = torch.randn(trials, outputs, generator=generator, dtype=torch.float64)
    gain_r = torch.randn(trials, outputs, generator=generator, dtype=torch.float64)
    nonmax = torch.randn(trials, generator=generator, dtype=torch.float64)
    mean_attn = torch.rand(trials, generator=generator, dtype=torch.float64)
    attn = torch.rand(trials, generator=generator, dtype=torch.float64)
    truth = (gain_b + attn[:, None] * gain_r).amax(dim=1) + (1 - attn) * nonmax
    base = (gain_b + mean_attn[:, None] * gain_r).amax(dim=1)
    zero = torch.zeros(trials, dtype=torch.float64)
    ours = logit_gap_at(attn, mean_attn, base, gain_r.amax(dim=1), gain_r.amin(dim=1), nonmax, zero)
    assert (ours >= truth - 1e-12).all()
    one_sided = base + (attn - mean_attn) * gain_r.amax(dim=1) + (1 - attn) * nonmax
    below = attn < mean_attn
    assert (one_sided < truth - 1e-6)[below].any(), "the one-sided correction should be unsound below average"
    assert (one_sided >= truth - 1e-12)[~below].all()


def _certificate(w: MaxKWeights, variant: SubcubicVariant):
    w64 = w.to(dtype=torch.float64)
    tables = verification_tables(w64, variant, leading_directions(query_key_factors(w64)))
    gaps, mean_attn = search_certificate(tables, variant.attention)
    return tables, gaps, mean_attn, certified_cases(tables, gaps, mean_attn)


def test_below_average_query_cases_are_certified_and_correct() -> None:
    """End to end: cases whose attention can fall below the chosen average are certified, and sound."""
    w = small_model(*SMALL_CONFIGS[3])
    variant = SubcubicVariant("max_diff", "mean_query+max_diff", "mean+diff")
    tables, gaps, mean_attn, certified = _certificate(w, variant)
    attn_low, _ = attention_extremes(tables, gaps)
    below = certified & (attn_low < mean_attn[:, None, :])
    assert below.sum() > 0
    ok, ok_pure = certificate_tables(below, gaps)
    covered = certified_mask(ok, ok_pure, all_tokens(w))
    assert covered.any() and not (covered & ~forward_correct(w)).any()


def test_case_counts_match_exactly_what_the_bound_covers() -> None:
    """Trap 2: a case (m, q, n) certified at gap g covers exactly C(K-1, n) (m-g+1)^(K-1-n)
    inputs -- non-max tokens 0..m-g inclusive, exactly n copies of m -- and nothing else;
    inputs with the boundary token m-g are correct, those with m-g+1 are not covered by it."""
    w = small_model(*SMALL_CONFIGS[2])
    k = w.k
    tables, gaps, mean_attn, certified = _certificate(w, SubcubicVariant("exact", "exact", "mean+diff"))
    tokens, truth = all_tokens(w), forward_correct(w)
    ok, ok_pure = certificate_tables(certified, gaps)
    covered = certified_mask(ok, ok_pure, tokens)
    maxes, queries = tokens.max(dim=1).values, tokens[:, -1]
    copies = (tokens[:, :-1] == maxes[:, None]).sum(dim=1)
    nonmax_top = torch.where(tokens[:, :-1] == maxes[:, None], -1, tokens[:, :-1]).amax(dim=1)
    checked_boundary = 0
    for m, q, n in certified.nonzero().tolist():
        in_case = (maxes == m) & (queries == q) & (copies == n)
        g = int(gaps[m, q, n])
        expected = 1 if n == k - 1 else math.comb(k - 1, n) * (m - g + 1) ** (k - 1 - n)
        assert int((covered & in_case).sum()) == expected
        if n < k - 1:
            boundary = in_case & (nonmax_top == m - g)
            assert covered[boundary].all() and truth[boundary].all()
            assert not covered[in_case & (nonmax_top > m - g)].any()
            checked_boundary += int(boundary.sum())
    assert checked_boundary > 0
    assert not (covered & ~truth).any()


@pytest.mark.parametrize("direct", ["exact", "mean_query+max_diff"])
def test_flops_counted_and_low_rank_eqke_is_cheaper(direct: str) -> None:
    """On the default shape (v=64, K=4, d=32) verifying without forming EQKE costs fewer FLOPs."""
    w = random_weights(64, 4, 32, 0)
    flops = {e: run_subcubic(w, SubcubicVariant(e, direct, "drop_average")).flops for e in ("exact", *LOW_RANK)}
    assert all(f > 0 for f in flops.values())
    assert all(flops[e] < flops["exact"] for e in LOW_RANK), flops
    with FlopCounter() as counter:
        torch.ones(64, 32, dtype=torch.float64) @ torch.ones(32, 64, dtype=torch.float64)
    assert flops["exact"] - flops["max_diff"] > counter.total / 2  # forming EQKE is a v x v x d product

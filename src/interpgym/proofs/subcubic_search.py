"""Proof *search* for the subcubic strategies (never costed: its outputs are just the
certificate that the verification checks, and any choice is sound).

It picks (1) the query/key directions of the rank-1 EQKE split (leading singular
vectors of EQKE, computed here in full since search cost does not count), (2) per case
(m, q, n) the smallest gap g that the check certifies (each case covers
C(K-1, n) (m - g + 1)^(K-1-n) inputs, so smaller is better and the check is monotone in
g), and (3) per (m, n) the average attention A_bar of `mean+diff`, by trying a grid of
values and keeping the one that certifies the most inputs of that (m, n).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.proofs.subcubic_cases import CaseTables, case_indices, certified_cases
from interpgym.proofs.subcubic_tables import QueryKeyFactors

MEAN_ATTENTION_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0)


def leading_directions(factors: QueryKeyFactors) -> tuple[Float[Tensor, " v"], Float[Tensor, " v"]]:
    """Leading left / right singular vectors of EQKE (search only)."""
    eqke = factors.query @ factors.qk @ factors.keys.T
    left, _, right_h = torch.linalg.svd(eqke)
    return left[:, 0].contiguous(), right_h[0].contiguous()


def _covered_inputs(vocab: int, k: int, gaps: Tensor) -> Tensor:
    """Inputs of each case (m, q, n) covered at gap g (float64; search ranking only)."""
    m, _, n = case_indices(vocab, k, gaps.device)
    free = (k - 1 - n).to(torch.float64)
    choices = (m - gaps + 1).clamp(min=0).to(torch.float64)
    combos = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.float64, device=gaps.device)
    return torch.where(free == 0, torch.ones_like(choices), combos[n] * choices.pow(free))


def smallest_certified_gaps(
    vocab: int, k: int, batch: tuple[int, ...], certify: Callable[[Tensor], Tensor], device: torch.device
) -> tuple[Int[Tensor, "*batch m q n"], Float[Tensor, "*batch m q n"]]:
    """Smallest gap per case that `certify(gaps) -> bool [*batch, m, q, n]` accepts (1 where none does),
    and the inputs it covers (0 where none), by bisection over g in [1, v-1].

    `certify` must be monotone in the gap (a larger gap covers a subset of the non-max
    tokens, so every bound term can only shrink): then ceil(log2 v) + 1 checks suffice
    instead of v - 1. (Search only: whatever it returns, the verification re-checks it.)
    """
    lo = torch.ones((*batch, vocab, vocab, k), dtype=torch.long, device=device)
    hi = torch.full_like(lo, max(vocab, 2))  # hi = vocab: "not certified at any gap below it"
    while bool((lo < hi).any()):
        mid = torch.div(lo + hi, 2, rounding_mode="floor")
        certified = certify(mid.clamp(max=max(vocab - 1, 1))) & (mid < max(vocab, 2))
        hi = torch.where((lo < hi) & certified, mid, hi)
        lo = torch.where((lo < hi) & ~certified, mid + 1, lo)
    found = hi < max(vocab, 2)
    gaps = torch.where(found, hi, torch.ones_like(hi))
    covered = torch.where(found, _covered_inputs(vocab, k, gaps), torch.zeros_like(gaps, dtype=torch.float64))
    return gaps, covered


def best_gaps(t: CaseTables, mean_attn: Float[Tensor, "*batch m n"]) -> tuple[Int[Tensor, "*batch m q n"], Float[Tensor, "*batch m q n"]]:
    """`smallest_certified_gaps` of the one-head check, for each leading batch entry of `mean_attn`
    (one search per candidate average attention)."""
    return smallest_certified_gaps(t.vocab, t.k, tuple(mean_attn.shape[:-2]), lambda gaps: certified_cases(t, gaps, mean_attn),
                                   t.eqke.device)


def search_certificate(
    t: CaseTables, attention: str, grid: tuple[float, ...] = MEAN_ATTENTION_GRID
) -> tuple[Int[Tensor, "m q n"], Float[Tensor, "m n"]]:
    """(gaps, mean_attn) maximising certified inputs: per (m, n), the best A_bar on `grid` (the
    first of equally good values). All grid values are searched at once (one batched bisection)."""
    vocab, k = t.vocab, t.k
    grid = (0.0,) if attention == "drop_average" else grid
    values = torch.tensor(grid, dtype=torch.float64, device=t.eqke.device)
    mean_attn = values[:, None, None].expand(len(grid), vocab, k)  # [grid, m, n]
    gaps, covered = best_gaps(t, mean_attn)  # [grid, m, q, n]
    best = covered.sum(dim=2).argmax(dim=0)  # [m, n]: first maximal grid value
    best_gap_table = gaps.gather(0, best[None, :, None, :].expand(1, vocab, vocab, k))[0]
    return best_gap_table, values[best]

"""A subcubic-style proof for multi-head max-of-K (`subjects.maxk_heads`): joint and independent heads.

The one-head subcubic check (`subcubic_cases`) per head, with the heads' bounds added.
A case is (m, q, n) with a gap g from proof search: it covers every input whose non-max
tokens among the first K-1 positions are all <= m - g. For every such input and every
wrong output y != m, in exact arithmetic (notation of `subcubic_cases`, per head h:
A_h the attention of head h on the max copies, R_h[m, y] = EVOU_h[m, y] - EVOU_h[m, m],
P_h[m, y] = max_i PVOU_h[i, y] - PVOU_h[i, m], W_h the largest non-max value gain of the
case's tokens for head h):

    logit_y - logit_m <= mean_logits[y] - mean_logits[m] + query_err[q, m]
                         + sum_h [P_h[m, y] + A_h R_h[m, y] + (1 - A_h) W_h].

With a per-(m, n) average attention Abar_h for each head (proof search) and delta_h =
A_h - Abar_h, max over y of the terms that depend on y is at most

    base[m, n] + sum_h max(delta_h Rmax_h[m], delta_h Rmin_h[m]),
    base[m, n] = max_{y != m} [mean_logits[y] - mean_logits[m] + sum_h (P_h[m, y] + Abar_h R_h[m, y])]

(valid for either sign of each delta_h, as in the one-head proof; base is O(H v^2 K)).
So the bound is base + query_err + sum_h g_h(A_h) with g_h(A) = max(delta Rmax_h,
delta Rmin_h) + (1 - A) W_h convex in A: separable over heads, each maximal at an end
of head h's attention range. The ranges are where the heads interact:

* **independent** (the baseline): head h's range over *all* arrangements of the max
  copies, [A_lo_h, A_hi_h] of `subcubic_cases.attention_extremes` (copies on the
  lowest / highest positional scores of head h); the bound is
  sum_h max(g_h(A_lo_h), g_h(A_hi_h)), each head at its own worst arrangement.
* **joint**: per arrangement pi (which n of the first K-1 positions hold m; 2^(K-1) in
  all) every head's range given pi (only the non-max tokens' scores vary), and the
  bound max_pi sum_h max(g_h(A_lo_h(pi)), g_h(A_hi_h(pi))): both heads see the same
  arrangement. Never worse than independent (each pi's range lies inside the overall one).

A case is certified when the bound is below -S, S = `roundoff.heads_margin_slack`
(float32 forward error of the H-head model + float64 rounding). The pure inputs
(m, ..., m, q) are decided by the same check (n = K-1); the certificate is the
one-head subcubic one (`subcubic_cases.certificate_tables`), audited per input.

Tables: EQKE_h exact (O(v^2 d) per head), EVOU_h, PVOU_h, the direct path EU split as
mean row + exact per-(q, m) error (`subcubic_tables.direct_tables`, `exact`).
Cost O(H (v^2 d + v d^2) + H v^2 K dh (slack) + H 2^(K-1) v^2 K): no v^3 term.
Unexplained dimensionality: H (v^2 + v K + v^2 + K v) + v^2 (EQKE, EQKP, EVOU, PVOU per
head; EU once).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.proofs.result import ProofResult
from interpgym.proofs.roundoff import heads_margin_slack, value_logit_bound
from interpgym.proofs.subcubic_cases import (
    CaseTables,
    attention_extremes,
    case_tables,
    certificate_tables,
    coverable,
    logit_gap_at,
    nonmax_value_gain,
)
from interpgym.proofs.subcubic_search import smallest_certified_gaps
from interpgym.proofs.subcubic_tables import DirectTables, direct_tables, eqke_tables, query_key_factors
from interpgym.proofs.tables import ov_tables
from interpgym.subjects.maxk_heads import MaxKHeadsWeights

JOINT = "subcubic/joint"
INDEPENDENT = "subcubic/independent"
COMPLEXITY = "O(H (v^2 d + v d^2) + H 2^(K-1) v^2 K)"
# candidate average attentions per head (proof search; the product over heads is searched when small)
MEAN_ATTENTION_GRID = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0)
MAX_GRID_PRODUCT = 81


@dataclass(frozen=True)
class HeadsCaseTables:
    """Per head the one-head case tables (direct path zero), the shared direct path and the slack."""

    heads: list[CaseTables]
    direct: DirectTables
    arrangement_lse: Float[Tensor, "heads pi q two"]  # per arrangement: (lse of the max copies', of the other first positions') scores
    arrangement_size: Int[Tensor, " pi"]
    slack: float

    @property
    def vocab(self) -> int:
        return self.heads[0].vocab

    @property
    def k(self) -> int:
        return self.heads[0].k


def _arrangement_lse(eqkp: Float[Tensor, "q pos"], subsets: list[tuple[int, ...]]) -> Float[Tensor, "pi q two"]:
    """log-sum-exp of head h's positional scores over each subset of the first K-1 positions and over the rest."""
    k = eqkp.shape[1]
    mask = torch.zeros(len(subsets), max(k - 1, 0), dtype=torch.bool, device=eqkp.device)
    for i, subset in enumerate(subsets):
        mask[i, list(subset)] = True
    first = eqkp[None, :, :-1]  # [1, q, K-1]
    inside = first.masked_fill(~mask[:, None, :], float("-inf")).logsumexp(dim=2)
    outside = first.masked_fill(mask[:, None, :], float("-inf")).logsumexp(dim=2)
    return torch.stack([inside, outside], dim=-1)


def heads_case_tables(w: MaxKHeadsWeights) -> HeadsCaseTables:
    """Everything the check reads (module docstring). Cost O(H (v^2 d + v d^2 + v^2 K dh))."""
    heads = [w.head(h).to(dtype=torch.float64) for h in range(w.n_heads)]
    factors = [query_key_factors(head) for head in heads]
    ov = [ov_tables(head) for head in heads]
    slack = heads_margin_slack(heads, [value_logit_bound(evou, pvou) for evou, pvou in ov])
    vocab = w.vocab
    no_direct = DirectTables(mean_logits=torch.zeros(vocab, dtype=torch.float64, device=w.W_E.device),
                             query_err=torch.zeros(vocab, vocab, dtype=torch.float64, device=w.W_E.device))
    tables = [case_tables(eqke_tables(f, "exact", None, None), evou, pvou, no_direct, slack)
              for f, (evou, pvou) in zip(factors, ov, strict=True)]
    subsets = [s for n in range(w.k) for s in itertools.combinations(range(w.k - 1), n)]
    return HeadsCaseTables(
        heads=tables,
        direct=direct_tables(heads[0], factors[0].query, "exact"),
        arrangement_lse=torch.stack([_arrangement_lse(f.eqkp, subsets) for f in factors]),
        arrangement_size=torch.tensor([len(s) for s in subsets], device=w.W_E.device),
        slack=slack,
    )


def _base(t: HeadsCaseTables, mean_attn: Float[Tensor, "*batch heads m n"]) -> Float[Tensor, "*batch m n"]:
    """max_{y != m} [mean_logits[y] - mean_logits[m] + sum_h (P_h[m, y] + Abar_h R_h[m, y])]. O(H v^2 K) per batch entry."""
    mean = t.direct.mean_logits
    per_output = (mean[None, :] - mean[:, None])[:, None, :]  # [m, 1, y]
    for h, head in enumerate(t.heads):  # head.max_logit_gain is P_h (its direct path is zero)
        per_output = per_output + head.max_logit_gain[:, None, :] + mean_attn[..., h, :, :, None] * head.max_value_gain[:, None, :]
    return per_output.masked_fill(t.heads[0].is_max_output[:, None, :], float("-inf")).amax(dim=-1)


def _head_term(head: CaseTables, attn_ends: tuple[Tensor, Tensor], mean_attn: Tensor, gaps: Tensor, m: Tensor, n: Tensor) -> Tensor:
    """max over the two ends of the attention range of g_h(A) (module docstring)."""
    nonmax_gain = nonmax_value_gain(head, gaps)
    zero = torch.zeros((), dtype=mean_attn.dtype, device=mean_attn.device)
    terms = (mean_attn[..., m, n], zero, head.value_gain_max[m], head.value_gain_min[m], nonmax_gain, zero)
    return torch.maximum(logit_gap_at(attn_ends[0], *terms), logit_gap_at(attn_ends[1], *terms))


def worst_logit_gap(
    t: HeadsCaseTables, gaps: Int[Tensor, "*batch m q n"], mean_attn: Float[Tensor, "*batch heads m n"], joint: bool
) -> Float[Tensor, "*batch m q n"]:
    """Upper bound on max_{y != m} logit_y - logit_m over every input of every case (exact arithmetic).
    Cost O(H v^2 K) (independent) or O(H 2^(K-1) v^2 K) (joint) per batch entry."""
    vocab, k = t.vocab, t.k
    device = gaps.device
    m = torch.arange(vocab, device=device)[:, None, None]
    q = torch.arange(vocab, device=device)[None, :, None]
    n = torch.arange(k, device=device)[None, None, :]
    fixed = _base(t, mean_attn)[..., m, n] + t.direct.query_err[q, m]  # [*, m, q, n]
    if not joint:
        total = fixed
        for h, head in enumerate(t.heads):
            total = total + _head_term(head, attention_extremes(head, gaps), mean_attn[..., h, :, :], gaps, m, n)
        return total
    worst = torch.full_like(fixed, float("-inf"))
    for p in range(t.arrangement_size.shape[0]):
        size = int(t.arrangement_size[p])
        total = fixed
        for h, head in enumerate(t.heads):
            lse = t.arrangement_lse[h, p][:, None, :].expand(vocab, k, 2)  # this arrangement for every n
            ends = attention_extremes(replace(head, lse_low=lse, lse_high=lse), gaps)
            total = total + _head_term(head, ends, mean_attn[..., h, :, :], gaps, m, n)
        worst = torch.where(n == size, torch.maximum(worst, total), worst)
    return worst


def certified_cases(t: HeadsCaseTables, gaps: Tensor, mean_attn: Tensor, joint: bool) -> Bool[Tensor, "*batch m q n"]:
    """Which cases the check certifies (every covered input classified correctly by the float32 model)."""
    return coverable(t.vocab, t.k, gaps) & (worst_logit_gap(t, gaps, mean_attn, joint) < -t.slack)


def search_certificate(t: HeadsCaseTables, joint: bool) -> tuple[Int[Tensor, "m q n"], Float[Tensor, "heads m n"]]:
    """(gaps, per-head average attention) for the check (search only, not costed; any choice is sound).

    The average attentions maximise the inputs the *independent* check certifies per
    (m, n), over the product of `MEAN_ATTENTION_GRID` over heads when that has at most
    `MAX_GRID_PRODUCT` points (else the same value for every head). The joint form keeps
    them and bisects its own (never larger) gaps: its bound is pointwise at most the
    independent one, so it certifies at least as much at far less search cost.
    """
    vocab, k, heads = t.vocab, t.k, len(t.heads)
    device = t.heads[0].eqke.device
    values = torch.tensor(MEAN_ATTENTION_GRID, dtype=torch.float64, device=device)
    if len(MEAN_ATTENTION_GRID) ** heads <= MAX_GRID_PRODUCT:
        combos = torch.cartesian_prod(*[values] * heads).reshape(-1, heads)
    else:
        combos = values[:, None].expand(-1, heads)
    grid_attn = combos[:, :, None, None].expand(-1, heads, vocab, k)  # [grid, H, m, n]
    gaps, covered = smallest_certified_gaps(vocab, k, (combos.shape[0],), lambda g: certified_cases(t, g, grid_attn, False), device)
    best = covered.sum(dim=2).argmax(dim=0)  # [m, n]: first best grid point
    mean_attn = combos[best].permute(2, 0, 1).contiguous()  # [H, m, n]
    if not joint:
        return gaps.gather(0, best[None, :, None, :].expand(1, vocab, vocab, k))[0], mean_attn
    joint_gaps, _ = smallest_certified_gaps(vocab, k, (), lambda g: certified_cases(t, g, mean_attn, True), device)
    return joint_gaps, mean_attn


def heads_subcubic(w: MaxKHeadsWeights, joint: bool = True) -> ProofResult:
    """Search, then verify (costed: tables, slack and the per-case check), the joint or independent form."""
    with torch.no_grad():
        tables = heads_case_tables(w)
        gaps, mean_attn = search_certificate(tables, joint)
        started = time.perf_counter()
        with FlopCounter() as counter:
            verified = heads_case_tables(w)
            certified = certified_cases(verified, gaps, mean_attn, joint)
        wall = time.perf_counter() - started
    ok, ok_pure = certificate_tables(certified.cpu(), gaps.cpu())
    vocab, k, h = w.vocab, w.k, w.n_heads
    return ProofResult.from_certificate(JOINT if joint else INDEPENDENT, ok, ok_pure, flops=counter.total, wall_s=wall,
                                        unexplained_dim=float(h * (2 * vocab**2 + 2 * vocab * k) + vocab**2),
                                        complexity=COMPLEXITY, extra={"slack": verified.slack})


__all__ = ["heads_subcubic", "heads_case_tables", "worst_logit_gap", "certified_cases", "search_certificate",
           "HeadsCaseTables", "JOINT", "INDEPENDENT", "COMPLEXITY"]

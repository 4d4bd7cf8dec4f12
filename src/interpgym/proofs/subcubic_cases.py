"""The per-case check of the subcubic proof: O(v^2 K) given the O(v^2)-sized tables.

A *case* is (m, q, n) as in `certificates` (max m, query q, n copies of m among the
first K-1 positions) together with a *gap* g >= 1 from proof search: the case covers
every input whose non-max tokens among the first K-1 positions are all <= m - g (the
query, a known token, is handled exactly). The check bounds, for every such input and
every output y != m, the logit difference logit_y - logit_m of the exact-arithmetic model:

  direct path   (E[q]+P[K-1]) W_U [y - m]  <= mean_logits[y] - mean_logits[m] + query_err[q, m]
  positions     sum_i a_i PVOU[i, y - m]    <= max_i PVOU[i, y] - PVOU[i, m]        (sum_i a_i = 1)
  max tokens    A * (EVOU[m, y] - EVOU[m, m])   with A = attention on the max tokens
  non-max       sum_{i non-max} a_i EVOU[t_i, y - m] <= (1 - A) max(W[m, g], V[q, m]),
                V[c, m] = max_{y != m} EVOU[c, y] - EVOU[c, m],  W[m, g] = max_{c <= m - g} V[c, m]
                (V[q, m] only when the query is non-max, W only when n < K-1)

and A in [A_lo, A_hi]: the scores of the non-max keys among the first K-1 positions are
at most (at least) EQKE[q, m] - D_min (- D_max) plus their positional score, where
D_min/D_max bound EQKE[q, m] - EQKE[q, c] over c <= m - g (prefix max / min of the EQKE
table, widened by the residual bound row_err[q]); a non-max query's own score is
EQKE[q, q] + EQKP[q, K-1], known up to row_err[q]. A is increasing in the max keys'
scores and decreasing in the others', and placing the max tokens on the first-K-1
positions with the lowest (highest) positional scores minimises (maximises) it (an
exchange argument), so the extremes are two sigmoids of sorted-prefix log-sum-exps.

The bound over y, h(A) = max_{y != m}[B_m[y] + A R_m[y]] + (1 - A) W, is convex in A,
so its maximum over [A_lo, A_hi] is at an endpoint; both are evaluated. To avoid an
O(v) max over y per (m, q, n) (which would be cubic), A is written A_bar[m, n] + delta
with a per-(m, n) *average attention* A_bar chosen by proof search (`mean+diff`; it is
0 under `drop_average`):

  max_y [B_m[y] + A R_m[y]] <= max_y [B_m[y] + A_bar R_m[y]] + max(delta R_max, delta R_min),

which holds for either sign of delta. (Multiplying a *negative* delta by R_max, as a
one-sided "mean + diff" correction would, is unsound for below-average queries; the
min/max pair is what makes this step valid.) A case is certified when the bound is below
-slack, slack = `roundoff.margin_slack` (float32 forward error of a margin + float64 rounding room).
All of this is O(v^2 K) elementwise work on O(v^2)-sized tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interpgym.proofs.subcubic_tables import AttentionTables, DirectTables, max_over_others


@dataclass(frozen=True)
class CaseTables:
    """Everything the per-case check reads; all O(v^2 + v K) numbers."""

    eqke: Float[Tensor, "q key"]
    eqke_prefix_max: Float[Tensor, "q key"]  # max_{c <= j} eqke[q, c]
    eqke_prefix_min: Float[Tensor, "q key"]
    row_err: Float[Tensor, " q"]
    eqke_diag: Float[Tensor, " q"]  # eqke[q, q]: the query position's own key
    lse_low: Float[Tensor, "q n two"]  # first K-1 positions, n max copies on the lowest positional scores:
    lse_high: Float[Tensor, "q n two"]  # (log sum exp of the max copies', of the other positions') scores
    query_pos: Float[Tensor, " q"]  # EQKP[q, K-1]
    max_logit_gain: Float[Tensor, "m out"]  # B_m[y] (0 at y == m, never read there)
    max_value_gain: Float[Tensor, "m out"]  # R_m[y] (0 at y == m, never read there)
    is_max_output: Bool[Tensor, "m out"]  # y == m
    value_gain_max: Float[Tensor, " m"]
    value_gain_min: Float[Tensor, " m"]
    nonmax_gain: Float[Tensor, "c m"]  # max_{y != m} EVOU[c, y] - EVOU[c, m]
    nonmax_gain_prefix: Float[Tensor, "j m"]  # W: max over c <= j of nonmax_gain[c, m]
    query_err: Float[Tensor, "q m"]
    slack: float

    @property
    def vocab(self) -> int:
        return self.eqke.shape[0]

    @property
    def k(self) -> int:
        return self.lse_low.shape[1]


def _arrangement_lse(eqkp: Float[Tensor, "q pos"], descending: bool) -> Float[Tensor, "q n two"]:
    """Log-sum-exp of the positional scores of the first K-1 positions, split into the n max
    copies placed on the n lowest (`descending=False`) or highest scores and the rest."""
    first = eqkp[:, :-1].sort(dim=1, descending=descending).values  # [q, K-1]
    neg_inf = torch.full((eqkp.shape[0], 1), float("-inf"), dtype=eqkp.dtype, device=eqkp.device)
    # prefix[n] = lse(first[:, :n]); suffix[n] = lse(first[:, n:])
    prefix = torch.cat([neg_inf, first.logcumsumexp(dim=1)], dim=1)  # [q, K]
    suffix = torch.cat([first.flip(1).logcumsumexp(dim=1).flip(1), neg_inf], dim=1)  # [q, K]
    return torch.stack([prefix, suffix], dim=-1)


def case_tables(
    att: AttentionTables,
    evou: Float[Tensor, "v out"],
    pvou: Float[Tensor, "k out"],
    direct: DirectTables,
    slack: float,
) -> CaseTables:
    """Assemble the per-case inputs from the EQKE tables, the OV tables (`proofs.tables.ov_tables`)
    and the direct-path split. Cost O(v^2 K + v K log K)."""
    vocab = att.eqke.shape[0]
    diagonal = torch.eye(vocab, dtype=torch.bool, device=att.eqke.device)
    mean_logits = direct.mean_logits
    value_gain = evou - evou.diagonal()[:, None]  # R_m[y] = EVOU[m, y] - EVOU[m, m]
    pos_gain = (pvou[:, None, :] - pvou[:, :, None]).amax(dim=0)  # [m, y]: max_i PVOU[i, y] - PVOU[i, m]
    logit_gain = (mean_logits[None, :] - mean_logits[:, None]) + pos_gain
    # W[c, m] = max_{y != m} EVOU[c, y] - EVOU[c, m]
    nonmax_gain = max_over_others(evou) - evou
    return CaseTables(
        eqke=att.eqke,
        eqke_prefix_max=att.eqke.cummax(dim=1).values,
        eqke_prefix_min=att.eqke.cummin(dim=1).values,
        row_err=att.row_err,
        eqke_diag=att.eqke.diagonal(),
        lse_low=_arrangement_lse(att.eqkp, descending=False),
        lse_high=_arrangement_lse(att.eqkp, descending=True),
        query_pos=att.eqkp[:, -1],
        max_logit_gain=logit_gain,
        max_value_gain=value_gain,
        is_max_output=diagonal,
        value_gain_max=value_gain.masked_fill(diagonal, float("-inf")).amax(dim=1),
        value_gain_min=value_gain.masked_fill(diagonal, float("inf")).amin(dim=1),
        nonmax_gain=nonmax_gain,
        nonmax_gain_prefix=nonmax_gain.cummax(dim=0).values,
        query_err=direct.query_err,
        slack=slack,
    )


def case_indices(vocab: int, k: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Broadcastable index grids m [v,1,1], q [1,v,1], n [1,1,K]."""
    m = torch.arange(vocab, device=device)[:, None, None]
    q = torch.arange(vocab, device=device)[None, :, None]
    n = torch.arange(k, device=device)[None, None, :]
    return m, q, n


def attention_extremes(
    t: CaseTables, gaps: Int[Tensor, "*batch m q n"], cases: tuple[Tensor, Tensor, Tensor] | None = None
) -> tuple[Float[Tensor, "*batch m q n"], Float[Tensor, "*batch m q n"]]:
    """(A_lo, A_hi): bounds on the total attention on the max tokens over every input of each case.

    `cases` = broadcastable index grids (m, q, n) of the cases to evaluate (default: all,
    `case_indices`); `gaps` has their broadcast shape."""
    vocab, k = t.vocab, t.k
    m, q, n = cases if cases is not None else case_indices(vocab, k, t.eqke.device)
    top = (m - gaps).clamp(min=0)  # largest non-max token covered among the first K-1 positions
    q_full = q.expand_as(top)
    n_full = n.expand_as(top)
    # score advantage of the max token over any covered non-max key, widened by the residual bound
    advantage = t.eqke[q, m]
    d_min = advantage - t.eqke_prefix_max[q_full, top] - t.row_err[q]
    d_max = advantage - t.eqke_prefix_min[q_full, top] + t.row_err[q]
    # the query position holds q itself: its advantage is known up to the residual bound
    query_adv = advantage - t.eqke_diag[q]
    query_is_max = q == m

    def extreme(lse: Tensor, d: Tensor, query_d: Tensor) -> Tensor:
        max_side, first_rest = lse[..., 0], lse[..., 1] - d
        query_score = t.query_pos[q]
        max_side = torch.where(query_is_max, torch.logaddexp(max_side, query_score), max_side)
        rest = torch.where(query_is_max, first_rest, torch.logaddexp(first_rest, query_score - query_d))
        return torch.sigmoid(max_side - rest)

    attn_low = extreme(t.lse_low[q_full, n_full], d_min, query_adv - t.row_err[q])
    attn_high = extreme(t.lse_high[q_full, n_full], d_max, query_adv + t.row_err[q])
    return attn_low, attn_high


def logit_gap_at(
    attn: Tensor, mean_attn: Tensor, base: Tensor, gain_max: Tensor, gain_min: Tensor, nonmax_gain: Tensor, query_err: Tensor
) -> Tensor:
    """h(A) bound: base + max(delta R_max, delta R_min) + (1 - A) W + query_err, delta = A - A_bar.

    `base` is max_{y != m} B_m[y] + A_bar R_m[y]. Valid for A on either side of A_bar.
    """
    delta = attn - mean_attn
    correction = torch.maximum(delta * gain_max, delta * gain_min)
    return base + correction + (1 - attn) * nonmax_gain + query_err


def nonmax_value_gain(
    t: CaseTables, gaps: Int[Tensor, "*batch m q n"], cases: tuple[Tensor, Tensor, Tensor] | None = None
) -> Float[Tensor, "*batch m q n"]:
    """max(W[m, g], V[q, m]): the largest value gain max_{y != m} EVOU[c, y] - EVOU[c, m] of any
    non-max token of the case, first K-1 positions (tokens <= m - g, if any) and the query (q,
    if q < m); 0 for the all-max input (m, ..., m). `cases` as in `attention_extremes`.
    Cost O(v^2 K) per batch element."""
    vocab, k = t.vocab, t.k
    m, q, n = cases if cases is not None else case_indices(vocab, k, t.eqke.device)
    top = (m - gaps).clamp(min=0)
    first_gain = torch.where(n < k - 1, t.nonmax_gain_prefix[top, m.expand_as(top)], float("-inf"))
    query_gain = torch.where(q < m, t.nonmax_gain[q, m], float("-inf"))  # [m, q, 1]
    nonmax_gain = torch.maximum(first_gain, query_gain).clamp(min=torch.finfo(t.eqke.dtype).min)
    return torch.where((q == m) & (n == k - 1), torch.zeros_like(nonmax_gain), nonmax_gain)


def worst_logit_gap(
    t: CaseTables,
    gaps: Int[Tensor, "*batch m q n"],
    mean_attn: Float[Tensor, "*batch m n"],
    cases: tuple[Tensor, Tensor, Tensor] | None = None,
) -> Float[Tensor, "*batch m q n"]:
    """Upper bound on max_{y != m} logit_y - logit_m over every input of every case (exact arithmetic).

    Meaningful only where `coverable(gaps)` holds. `cases` as in `attention_extremes`.
    Cost O(v^2 K) per batch element (O(v K) per case, plus O(v^2 K) for the per-(m, n) base).
    """
    vocab, k = t.vocab, t.k
    m, q, n = cases if cases is not None else case_indices(vocab, k, t.eqke.device)
    attn_low, attn_high = attention_extremes(t, gaps, (m, q, n))
    per_output = t.max_logit_gain[:, None, :] + mean_attn.unsqueeze(-1) * t.max_value_gain[:, None, :]
    base = per_output.masked_fill(t.is_max_output[:, None, :], float("-inf")).amax(dim=-1)[..., m, n]  # [*, m, 1, n]
    nonmax_gain = nonmax_value_gain(t, gaps, (m, q, n))
    terms = (
        mean_attn[..., m, n],
        base,
        t.value_gain_max[m],
        t.value_gain_min[m],
        nonmax_gain,
        t.query_err[q, m],
    )
    return torch.maximum(logit_gap_at(attn_low, *terms), logit_gap_at(attn_high, *terms))


def coverable(
    vocab: int, k: int, gaps: Int[Tensor, "*batch m q n"], cases: tuple[Tensor, Tensor, Tensor] | None = None
) -> Bool[Tensor, "*batch m q n"]:
    """Cases that exist and whose gap is legal (g >= 1)."""
    m, q, n = cases if cases is not None else case_indices(vocab, k, gaps.device)
    exists = (q <= m) & ((q == m) | (n >= 1))
    return exists & (gaps >= 1)


def certified_cases(
    t: CaseTables, gaps: Int[Tensor, "*batch m q n"], mean_attn: Float[Tensor, "*batch m n"]
) -> Bool[Tensor, "*batch m q n"]:
    """Which cases the check certifies (every covered input classified correctly in float32)."""
    worst = worst_logit_gap(t, gaps, mean_attn)
    return coverable(t.vocab, t.k, gaps) & (worst < -t.slack)


def certificate_tables(
    certified: Bool[Tensor, "m q n"], gaps: Int[Tensor, "m q n"]
) -> tuple[Bool[Tensor, "m q c n"], Bool[Tensor, "m q"]]:
    """`ok` / `ok_pure` for `certificates`: G(m, q, n) = {c <= m - g} when certified.

    Bookkeeping for counting and per-input tests, not part of the costed verification.
    """
    vocab, _, k = certified.shape
    c = torch.arange(vocab, device=certified.device)[None, None, :, None]
    within_gap = c <= (torch.arange(vocab, device=certified.device)[:, None, None, None] - gaps[:, :, None, :])
    ok = certified[:, :, None, :] & within_gap
    return ok, certified[:, :, k - 1].clone()

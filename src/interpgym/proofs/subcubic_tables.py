"""The model summaries a subcubic max-of-K proof reads, each with what it guarantees.

Notation (all float64, from the float32 weights; the conventions of `proofs.tables`):
E = W_E, P = W_pos, query residual L = E + P[K-1] (v x d), W_QK = W_Q W_K^T / sqrt(d_head)
(d x d). The attention score of the last position on position i holding token t is
EQKE[q, t] + EQKP[q, i] with

    EQKE = L W_QK E^T (v x v),   EQKP = L W_QK P^T (v x K).

`attention_tables` returns EQKE either exactly (`exact`, O(v^2 d)) or as a rank-<=2
matrix EQKE_approx plus a per-query bound on row differences of the residual (O(v d^2)
or less, EQKE never formed). The split is exact algebra for *any* direction vectors
u (query side) and w (key side): with alpha = u^T L, L_r = L - u alpha, beta = R w,
R = W_QK E^T, R_r = R - beta w^T,

    EQKE = u (alpha R) + (L_r beta) w^T + L_r R_r,

so the residual is L_r R_r whatever u, w the proof search picked (the SVD's leading
singular vectors make the first term the rank-1 SVD term and the second ~0).
Residual row-difference bounds (max_{a,b} |Res[q,a] - Res[q,b]| <= row_err[q]):

* `svd`: sqrt(2) sigma_1(L_r R_r) <= sqrt(2) s(L_r) s(R_r), s(M) = min(||M||_F,
  sqrt(||M||_1 ||M||_inf)) (a rigorous upper bound on sigma_1 in O(v d)).
* `max_diff`: row_err[q] = sum_k |L_r[q, k]| (max_b R_r[k, b] - min_b R_r[k, b]).
* `mean+max_diff`: split L_r = 1 mean_q(L_r) + (L_r - mean): the mean row's product
  is computed exactly (its max - min), the rest bounded as in `max_diff`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.proofs.tables import direct_table, query_embeddings
from interpgym.subjects.maxk import MaxKWeights

EQKE_METHODS = ("exact", "svd", "max_diff", "mean+max_diff")
DIRECT_METHODS = ("exact", "mean_query+max_diff")


@dataclass(frozen=True)
class QueryKeyFactors:
    """EQKE = query @ qk @ keys.T and EQKP, never multiplied out here."""

    query: Float[Tensor, "v d"]  # L = E + P[K-1]
    qk: Float[Tensor, "d d"]  # W_Q W_K^T / sqrt(d_head)
    keys: Float[Tensor, "v d"]  # E
    eqkp: Float[Tensor, "v k"]


@dataclass(frozen=True)
class AttentionTables:
    """EQKE[q, a] - EQKE[q, b] lies within eqke[q, a] - eqke[q, b] +- row_err[q]."""

    eqke: Float[Tensor, "q key"]
    row_err: Float[Tensor, " q"]
    eqkp: Float[Tensor, "q pos"]


def query_key_factors(w: MaxKWeights) -> QueryKeyFactors:
    """Cost O(v d + d^2 d_head + v d K)."""
    query = query_embeddings(w)
    qk = (w.W_Q @ w.W_K.T) / math.sqrt(w.d_head)
    return QueryKeyFactors(query=query, qk=qk, keys=w.W_E, eqkp=query @ (qk @ w.W_pos.T))


def max_over_others(matrix: Float[Tensor, "r c"]) -> Float[Tensor, "r c"]:
    """out[r, j] = max_{c != j} matrix[r, c], from the top two of each row (needs >= 2 columns). O(r c)."""
    top2 = matrix.topk(2, dim=1).values
    return torch.where(matrix == top2[:, :1], top2[:, 1:2], top2[:, :1])


def _row_ranges(matrix: Float[Tensor, "r c"]) -> Float[Tensor, " r"]:
    return matrix.amax(dim=1) - matrix.amin(dim=1)


def _sigma1_upper(matrix: Float[Tensor, "r c"]) -> Tensor:
    """An upper bound on the largest singular value, O(r c)."""
    frobenius = matrix.square().sum().sqrt()
    one_inf = (matrix.abs().sum(dim=0).amax() * matrix.abs().sum(dim=1).amax()).sqrt()
    return torch.minimum(frobenius, one_inf)


def residual_row_err(method: str, left: Float[Tensor, "v d"], right: Float[Tensor, "d v"]) -> Float[Tensor, " v"]:
    """Bound on row differences of left @ right without forming it (see module docs). O(v d)."""
    if method == "svd":
        bound = math.sqrt(2.0) * _sigma1_upper(left) * _sigma1_upper(right)
        return bound.expand(left.shape[0])
    right_ranges = _row_ranges(right)
    if method == "max_diff":
        return left.abs() @ right_ranges
    if method == "mean+max_diff":
        mean_row = left.mean(dim=0)
        mean_product = mean_row @ right
        return (mean_product.amax() - mean_product.amin()) + (left - mean_row).abs() @ right_ranges
    raise ValueError(f"unknown EQKE residual method {method!r}")


def eqke_tables(
    factors: QueryKeyFactors, method: str, query_dir: Float[Tensor, " v"] | None, key_dir: Float[Tensor, " v"] | None
) -> AttentionTables:
    """EQKE (exact or rank-<=2 plus residual bound). Cost: exact O(v^2 d); others O(v d^2 + v^2)."""
    if method == "exact":
        eqke = factors.query @ (factors.qk @ factors.keys.T)
        return AttentionTables(eqke=eqke, row_err=torch.zeros_like(eqke[:, 0]), eqkp=factors.eqkp)
    if query_dir is None or key_dir is None:
        raise ValueError(f"EQKE method {method!r} needs the query and key directions from proof search")
    right = factors.qk @ factors.keys.T  # R: d x v
    alpha = query_dir @ factors.query  # 1 x d
    left_res = factors.query - query_dir[:, None] * alpha[None, :]
    beta = right @ key_dir  # d
    right_res = right - beta[:, None] * key_dir[None, :]
    eqke = query_dir[:, None] * (alpha @ right)[None, :] + (left_res @ beta)[:, None] * key_dir[None, :]
    return AttentionTables(eqke=eqke, row_err=residual_row_err(method, left_res, right_res), eqkp=factors.eqkp)


@dataclass(frozen=True)
class DirectTables:
    """Direct path (E[q] + P[K-1]) W_U split as mean_logits[y] + r_q[y] with
    r_q[y] - r_q[m] <= query_err[q, m] for every output y != m."""

    mean_logits: Float[Tensor, " out"]
    query_err: Float[Tensor, "q m"]


def direct_tables(w: MaxKWeights, query: Float[Tensor, "v d"], method: str) -> DirectTables:
    """`query` is `query_embeddings(w)`. `exact`: O(v^2 d) (EU formed, exact per-(q, m) slack);
    `mean_query+max_diff`: O(v d)."""
    vocab = w.vocab
    if method == "exact":
        logits = direct_table(w)
        mean_logits = logits.mean(dim=0)
        residual = logits - mean_logits
        return DirectTables(mean_logits=mean_logits, query_err=max_over_others(residual) - residual)
    if method == "mean_query+max_diff":
        mean_query = query.mean(dim=0)
        per_query = (query - mean_query).abs() @ _row_ranges(w.W_U)
        return DirectTables(mean_logits=mean_query @ w.W_U, query_err=per_query[:, None].expand(vocab, vocab))
    raise ValueError(f"unknown direct-path method {method!r}")

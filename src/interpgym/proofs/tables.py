"""Component tables of a 1-layer, 1-head, attention-only max-of-K model, in float64.

With no LayerNorm and zero biases the last-position computation of the model
(`interpgym.subjects.maxk.last_logits`) splits exactly into five small tables. Write
E = W_E, P = W_pos, and let position K-1 (the last one) be the *query* position,
holding the query token q. Then, in exact arithmetic, for an input t in [0, v)^K:

    score_i = EQKE[q, t_i] + EQKP[q, i]                    (pre-softmax, already / sqrt(d_head))
    a       = softmax(score)                               (over the K key positions)
    logits  = EU[q] + sum_i a_i (EVOU[t_i] + PVOU[i])

where the tables are

    table  shape    definition                                              cost (matmul = out*(2*inner-1))
    EQKE   [v, v]   (E[q] + P[K-1]) W_Q  .  (E[t] W_K)   / sqrt(d_head)     v*d + 2*v*dh*(2d-1) + v*v*(2dh-1) + v*v
    EQKP   [v, K]   (E[q] + P[K-1]) W_Q  .  (P[i] W_K)   / sqrt(d_head)     K*dh*(2d-1) + v*K*(2dh-1) + v*K
    EVOU   [v, v]   E[t] W_V W_O W_U                                        d*d*(2dh-1) + v*d*(2d-1) + v*v*(2d-1)
    PVOU   [K, v]   P[i] W_V W_O W_U                                        K*d*(2d-1) + K*v*(2d-1)
    EU     [v, v]   (E[q] + P[K-1]) W_U                                     v*v*(2d-1)

Conventions (the choice every proof in `interpgym.proofs` shares):

* The query side always carries the last position's embedding: the query vector of
  token q is E[q] + P[K-1], in EQKE, EQKP and the direct path EU alike. Nothing
  positional is left to add on the query side.
* The key side is split into its token part (EQKE, EVOU, indexed by the key token) and
  its positional part (EQKP, PVOU, indexed by the key position i in [0, K)). The query
  position is also a key position: its score is EQKE[q, q] + EQKP[q, K-1] and its value
  contribution EVOU[q] + PVOU[K-1].
* The 1 / sqrt(d_head) attention scale is folded into EQKE and EQKP.

All tables are computed in float64 from the float32 weights (the conversion is exact),
so their only error is float64 rounding, which `roundoff.margin_slack` covers. The
functions here do not count FLOPs themselves: proofs call them inside their
`FlopCounter` block, since computing a table from the weights is part of the proof.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.subjects.maxk import MaxKWeights


@dataclass(frozen=True)
class MaxKTables:
    """The five float64 component tables of a max-of-K model (see the module docstring)."""

    EQKE: Float[Tensor, "v_query v_key"]
    EQKP: Float[Tensor, "v_query k"]
    EVOU: Float[Tensor, "v_key v_out"]
    PVOU: Float[Tensor, "k v_out"]
    EU: Float[Tensor, "v_query v_out"]

    @property
    def vocab(self) -> int:
        return self.EQKE.shape[0]

    @property
    def k(self) -> int:
        return self.EQKP.shape[1]


def query_embeddings(w: MaxKWeights) -> Float[Tensor, "v d_model"]:
    """E + P[K-1] in float64: the residual stream at the query position, per query token. Cost v*d."""
    return w.W_E.double() + w.W_pos[-1].double()


def attention_tables(w: MaxKWeights) -> tuple[Float[Tensor, "v_query v_key"], Float[Tensor, "v_query k"]]:
    """(EQKE, EQKP) in float64, scale 1/sqrt(d_head) folded in. Cost O(v d dh + v^2 dh + v K dh)."""
    scale = 1.0 / math.sqrt(w.d_head)
    W_Q, W_K = w.W_Q.double(), w.W_K.double()
    queries = query_embeddings(w) @ W_Q  # [v, dh]
    token_keys = w.W_E.double() @ W_K  # [v, dh]
    position_keys = w.W_pos.double() @ W_K  # [K, dh]
    return (queries @ token_keys.T) * scale, (queries @ position_keys.T) * scale


def ov_tables(w: MaxKWeights) -> tuple[Float[Tensor, "v_key v_out"], Float[Tensor, "k v_out"]]:
    """(EVOU, PVOU) in float64. Cost O(d^2 dh + v d^2 + v^2 d + K d^2 + K v d)."""
    ov = w.W_V.double() @ w.W_O.double()  # [d, d]
    W_U = w.W_U.double()
    return (w.W_E.double() @ ov) @ W_U, (w.W_pos.double() @ ov) @ W_U


def direct_table(w: MaxKWeights) -> Float[Tensor, "v_query v_out"]:
    """EU = (E + P[K-1]) W_U in float64: the direct (skip) path at the query position. Cost O(v^2 d)."""
    return query_embeddings(w) @ w.W_U.double()


def against_max(table: Float[Tensor, "rows v_out"]) -> Float[Tensor, "v_max rows v_out"]:
    """out[m, a, j] = table[a, j] - table[a, m]: every output j against a candidate max m. Cost v^2 rows."""
    return table[None, :, :] - table.T[:, :, None]


def plus_max(table: Float[Tensor, "rows v_out"]) -> Float[Tensor, "v_max rows v_out"]:
    """out[m, a, j] = table[a, j] + table[a, m]: an error bound on output j plus the same on m. Cost v^2 rows."""
    return table[None, :, :] + table.T[:, :, None]


def compute_tables(w: MaxKWeights) -> MaxKTables:
    """All five tables (exact definitions in the module docstring). Cost O(v^2 d + v d^2 + d^3)."""
    EQKE, EQKP = attention_tables(w)
    EVOU, PVOU = ov_tables(w)
    return MaxKTables(EQKE=EQKE, EQKP=EQKP, EVOU=EVOU, PVOU=PVOU, EU=direct_table(w))


def logits_from_tables(tables: MaxKTables, tokens: Int[Tensor, "batch k"]) -> Float[Tensor, "batch v"]:
    """Last-position logits of `tokens` evaluated through the tables (float64).

    Equals the model's logits in exact arithmetic. Cost per input: K gathers of EQKE,
    a K-way softmax, and a K-term weighted sum of v-vectors (about 2 K v FLOPs), versus
    about 2 K d (3 dh + v) for the float32 forward.
    """
    q = tokens[:, -1]
    scores = tables.EQKE[q[:, None], tokens] + tables.EQKP[q]  # [batch, K]
    attn = scores.softmax(dim=-1)
    values = tables.EVOU[tokens] + tables.PVOU  # [batch, K, v]
    return tables.EU[q] + torch.einsum("bk,bkv->bv", attn, values)


__all__ = [
    "against_max",
    "plus_max",
    "MaxKTables", "compute_tables", "attention_tables", "ov_tables", "direct_table",
    "query_embeddings", "logits_from_tables",
]

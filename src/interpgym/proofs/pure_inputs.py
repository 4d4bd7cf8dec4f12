"""The pure inputs (m, ..., m, q): one input per (max m, query q <= m), evaluated exactly.

Every strategy that treats the case "all first K-1 tokens are the max" can check its
single input directly instead of pessimising it: the logits of (m, ..., m, q) through
the float64 tables cost K v per input, v^3 K for all v^2 of them (cubic, so the cubic
proofs can afford it; gbmi's cubic proof likewise takes the maximum over the whole sum
for these inputs rather than per key).
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interpgym.proofs.brute_force import PrefixTables, prefix_logits
from interpgym.proofs.roundoff_tables import ErrorTables, worst_perturbation
from interpgym.proofs.tables import MaxKTables, against_max, plus_max


def pure_input_logits(tables: MaxKTables) -> Float[Tensor, "m q out"]:
    """logits[m, q] of the input (m, ..., m, q) in exact arithmetic (float64).

    Meaningful for q <= m (for K = 1 only q = m: the input is (q,)). Cost O(v^2 K + v^3 K).
    """
    vocab, k = tables.vocab, tables.k
    device = tables.EQKE.device
    prefix_tables = PrefixTables.build(tables)
    if k == 1:
        logits, _ = prefix_logits(prefix_tables, torch.zeros((1, 0), dtype=torch.long, device=device))
        return logits.expand(vocab, vocab, vocab)  # [m, q, out]: every m reads the query's own input
    prefix = torch.arange(vocab, device=device)[:, None].expand(vocab, k - 1)
    logits, _ = prefix_logits(prefix_tables, prefix)
    return logits


def pure_margins(tables: MaxKTables) -> Float[Tensor, "m q"]:
    """logit[m] - max_{j != m} logit[j] of the pure input (m, ..., m, q) (exact arithmetic). Cost O(v^3 K)."""
    logits = pure_input_logits(tables)
    m = torch.arange(tables.vocab, device=logits.device)[:, None, None].expand(-1, tables.vocab, 1)
    target = logits.gather(2, m)[..., 0]
    return target - logits.scatter(2, m, float("-inf")).amax(dim=2)


def pure_log_excess(tables: MaxKTables) -> Float[Tensor, "m q"]:
    """log sum_{j != m} exp(logit[j] - logit[m]) of the pure input (m, ..., m, q). Cost O(v^3 K)."""
    logits = pure_input_logits(tables)
    m = torch.arange(tables.vocab, device=logits.device)[:, None, None].expand(-1, tables.vocab, 1)
    target = logits.gather(2, m)
    return (logits.scatter(2, m, float("-inf")) - target).logsumexp(dim=2)


def _minus_own(table: Tensor, sign: float = 1.0) -> Tensor:
    """table[m, a, y] - sign * table[m, a, m] (the wrong output y against the row's own token m)."""
    own = table.gather(2, torch.arange(table.shape[0], device=table.device)[:, None, None].expand(-1, table.shape[1], 1))
    return table - sign * own


def pure_float32_certified(tables: MaxKTables, errors: ErrorTables) -> Bool[Tensor, "m q"]:
    """ok_pure[m, q]: the pure input (m, ..., m, q) is classified correctly by the float32 forward.

    For each wrong output j, the bound of `roundoff_tables` on logit^_j - logit^_m is a
    convex combination over the K keys (token m at positions 0..K-2, token q at K-1) of
    per-key terms H_i(j), under attention weights b = softmax(s + e) with |e_i| <=
    exponent[q, t_i, i]; it is below zero for every such e if
    sum_i exp(s_i) H_i(j) exp(sign(H_i(j)) exponent_i) < 0. This is the maximum over j of
    the whole sum (no per-key pessimisation; positions exact). Meaningful for q <= m (K = 1:
    q = m); entries q > m are False. Cost O(v^3 K).
    """
    vocab, eps = tables.vocab, errors.weight_relative
    index = torch.arange(vocab, device=tables.EQKE.device)
    scores = torch.cat([tables.EQKE.T[:, :, None] + tables.EQKP[None, :, :-1],  # [m, q, K-1]: token m at i < K-1
                        (tables.EQKE.diagonal() + tables.EQKP[:, -1]).expand(vocab, vocab)[:, :, None]], dim=2)  # query key
    weights = (scores - scores.amax(dim=2, keepdim=True)).exp()  # [m, q, K], largest 1
    value_logits = tables.EVOU[:, None, :] + tables.PVOU[None, :, :]  # [t, i, y]
    key_error = errors.key  # [t, i, y]
    first_w = _minus_own(value_logits[:, :-1])  # [m, i, j]: token m at i < K-1
    first_err = _minus_own(key_error[:, :-1], sign=-1.0)  # key[m, i, j] + key[m, i, m]
    last_w = against_max(value_logits[:, -1])  # [m, q, j]
    last_err = plus_max(key_error[:, -1])  # [m, q, j]
    first = first_w + eps * first_w.abs() + (1 + eps) * first_err  # [m, K-1, j]
    last = last_w + eps * last_w.abs() + (1 + eps) * last_err  # [m, q, j]
    direct = against_max(tables.EU) + errors.direct[None] + errors.direct.T[:, :, None] + errors.float64  # [m, q, j]
    first_exponent = errors.exponent[:, index, :-1].transpose(0, 1)  # [m, q, K-1]: exponent[q, m, i]
    last_exponent = errors.exponent[index, index, -1]  # [q]
    total = (weights[:, :, :-1, None] * worst_perturbation(direct[:, :, None, :] + first[:, None], first_exponent[..., None])).sum(dim=2)
    total = total + weights[:, :, -1, None] * worst_perturbation(direct + last, last_exponent[None, :, None])  # [m, q, j]
    wrong = index[None, :] != index[:, None]  # [m, j]
    certified = ((total < 0) | ~wrong[:, None, :]).all(dim=2)
    return certified & (index[None, :] <= index[:, None])


__all__ = ["pure_input_logits", "pure_margins", "pure_log_excess", "pure_float32_certified"]

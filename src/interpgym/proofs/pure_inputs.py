"""The pure inputs (m, ..., m, q): one input per (max m, query q <= m), evaluated exactly.

Every strategy that treats the case "all first K-1 tokens are the max" can check its
single input directly instead of pessimising it: the logits of (m, ..., m, q) through
the float64 tables cost K v per input, v^3 K for all v^2 of them (cubic, so the cubic
proofs can afford it; gbmi's cubic proof likewise takes the maximum over the whole sum
for these inputs rather than per key).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.proofs.brute_force import PrefixTables, prefix_logits
from interpgym.proofs.tables import MaxKTables


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


__all__ = ["pure_input_logits", "pure_margins", "pure_log_excess"]

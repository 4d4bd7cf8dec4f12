"""Enumerate exactly the inputs that hold a *flagged* non-max token of their case.

A per-case flag table `flagged[m, q, c, n]` (c < m) marks non-max tokens c for which a
case-based proof gives up (accuracy: the cubic certificate fails for c; loss: the cubic
per-case log-excess bound of c is above a threshold). An input of a mixed case (m, q, n)
(n copies of m among the first K-1 positions, r = K-1-n >= 1 non-max positions holding
tokens < m, query q) is *flagged* when at least one of its non-max tokens is flagged.
These are the inputs a hybrid proof evaluates one by one; every other mixed input is
covered by the case argument. Pure inputs (n = K-1) are never yielded.

How: per (m, q, n) the tokens c < m are ranked unflagged first (g of them), so an r-tuple
of ranks (r = K-1-n, all < m) is flagged iff one rank is >= g. Split by the first such
position p: ranks before p in [0, g), rank p in [g, m), ranks after p in [0, m) -- a
product set of g^p (m-g) m^(r-1-p) tuples, decoded from a running index by mixed-radix
digits (the pieces add up to m^r - g^r), for each of the C(K-1, n) placements of the max
copies. Batches of at most `BLOCK` inputs, whatever the case sizes.

Guarantee: every flagged input is yielded exactly once, nothing else. Cost O(N K) index
arithmetic for N flagged inputs (plus a per-(m, q, n) sort of the m flags).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interpgym.proofs.certificates import input_cases

BLOCK = 1 << 15  # inputs per yielded batch: memory O(BLOCK K), whatever the case sizes


def flagged_count(flagged: Bool[Tensor, "m q c n"]) -> int:
    """How many inputs `flagged_inputs` yields (exact integer arithmetic)."""
    k = flagged.shape[3]
    return sum(math.comb(k - 1, n) * int((m**r - good**r).sum()) for m, n, r, _, _, good in _cases(flagged))


def flagged_inputs(flagged: Bool[Tensor, "m q c n"], block: int = BLOCK) -> Iterator[Int[Tensor, "batch k"]]:
    """Every flagged input (module docstring) exactly once, in batches of at most `block` inputs."""
    k = flagged.shape[3]
    device = flagged.device
    for m, n, r, queries, flags, good in _cases(flagged):
        # piece p: ranks before position p unflagged (< g), rank p flagged (in [g, m)), ranks after it anything (< m)
        sizes = torch.stack([good**p * (m - good) * m ** (r - 1 - p) for p in range(r)], dim=1).reshape(-1)  # [queries * r]
        total = int(sizes.sum())
        if total == 0:
            continue
        ends = torch.cumsum(sizes, dim=0)
        order = (flags.long() * flags.shape[1] + torch.arange(m, device=device)).argsort(dim=1)  # [queries, m]: unflagged first
        placements = list(itertools.combinations(range(k - 1), n))
        for begin in range(0, total, block):
            index = torch.arange(begin, min(begin + block, total), device=device)
            cell = torch.searchsorted(ends, index, right=True)  # skips empty pieces
            query_of, piece = cell // r, cell % r
            local = index - (ends[cell] - sizes[cell])
            unflagged = good[query_of]
            ranks = torch.empty(index.shape[0], r, dtype=torch.long, device=device)
            for j in reversed(range(r)):  # mixed-radix digits, last position fastest
                radix = torch.where(j < piece, unflagged, torch.where(j == piece, m - unflagged, torch.full_like(unflagged, m)))
                ranks[:, j] = local % radix + torch.where(j == piece, unflagged, 0)
                local = local // radix
            nonmax = order[query_of[:, None], ranks]  # [batch, r]: tokens < m
            for placement in placements:
                tokens = torch.empty(index.shape[0], k, dtype=torch.long, device=device)
                tokens[:, list(placement)] = m
                tokens[:, [i for i in range(k - 1) if i not in placement]] = nonmax
                tokens[:, -1] = queries[query_of]
                yield tokens


def is_flagged(flagged: Bool[Tensor, "m q c n"], tokens: Int[Tensor, "batch k"]) -> Bool[Tensor, " batch"]:
    """Per input: is it flagged (a mixed input with a flagged non-max token)? Agrees with `flagged_inputs`."""
    k = tokens.shape[1]
    if k == 1:
        return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    m, q, first, is_max, n = input_cases(tokens)
    hit = flagged[m[:, None], q[:, None], first, n[:, None]] & ~is_max
    return hit.any(dim=1) & (n < k - 1)


def _cases(flagged: Tensor) -> Iterator[tuple[int, int, int, Tensor, Tensor, Tensor]]:
    """Per mixed (m, n) with r = K-1-n: (m, n, r, queries, flags [queries, m], unflagged count per query)."""
    vocab, k = flagged.shape[0], flagged.shape[3]
    for m in range(1, vocab):
        for n in range(k - 1):
            queries = torch.arange(m + 1, device=flagged.device) if n >= 1 else torch.tensor([m], device=flagged.device)
            flags = flagged[m, queries, :m, n]
            yield m, n, k - 1 - n, queries, flags, (~flags).sum(dim=1)


__all__ = ["flagged_inputs", "flagged_count", "is_flagged"]

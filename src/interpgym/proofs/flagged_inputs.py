"""Enumerate exactly the inputs that hold a *flagged* non-max token of their case.

A per-case flag table `flagged[m, q, c, n]` (c < m) marks non-max tokens c for which a
case-based proof gives up (accuracy: the cubic certificate fails for c; loss: the cubic
per-case log-excess bound of c is above a threshold). An input of a mixed case (m, q, n)
(n copies of m among the first K-1 positions, r = K-1-n >= 1 non-max positions holding
tokens < m, query q) is *flagged* when at least one of its non-max tokens is flagged.
These are the inputs a hybrid proof evaluates one by one; every other mixed input is
covered by the case argument. Pure inputs (n = K-1) are never yielded.

How: per (m, q, n) the tokens c < m are ranked unflagged first (g of them), so an r-tuple
of ranks is flagged iff its largest rank is >= g. All r-tuples over [0, v) are kept once
in *shell order* (sorted by their largest entry), where the tuples with every entry < a
are exactly the first a^r; the flagged inputs of the case are therefore the contiguous
range [g^r, m^r), for each of the C(K-1, n) placements of the max copies.

Guarantee: every flagged input is yielded exactly once, nothing else. Cost O(N K) index
arithmetic for N flagged inputs (no FLOPs beyond a per-(m, q, n) sort of v flags), plus
the v^(K-1) (K-1)-tuples of the shell table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interpgym.proofs.certificates import input_cases
from interpgym.proofs.inputs import tokens_at


def shell_order(vocab: int, r: int, device: torch.device) -> Int[Tensor, "tuples r"]:
    """All v^r r-tuples over [0, v), sorted by their largest entry (ties lexicographic):
    the tuples with every entry < a are the first a^r rows."""
    tuples = tokens_at(vocab, r, 0, vocab**r, device)
    key = tuples.amax(dim=1) * vocab**r + torch.arange(vocab**r, device=device)
    return tuples[key.argsort()]


def flagged_count(flagged: Bool[Tensor, "m q c n"]) -> int:
    """How many inputs `flagged_inputs` yields (exact integer arithmetic)."""
    return sum(len(batch) for batch in _case_blocks(flagged, count_only=True))


def flagged_inputs(flagged: Bool[Tensor, "m q c n"]) -> Iterator[Int[Tensor, "batch k"]]:
    """Every flagged input (module docstring) exactly once, in batches of one (max, n, placement)."""
    yield from _case_blocks(flagged, count_only=False)


def is_flagged(flagged: Bool[Tensor, "m q c n"], tokens: Int[Tensor, "batch k"]) -> Bool[Tensor, " batch"]:
    """Per input: is it flagged (a mixed input with a flagged non-max token)? Agrees with `flagged_inputs`."""
    k = tokens.shape[1]
    if k == 1:
        return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    m, q, first, is_max, n = input_cases(tokens)
    hit = flagged[m[:, None], q[:, None], first, n[:, None]] & ~is_max
    return hit.any(dim=1) & (n < k - 1)


def _case_blocks(flagged: Tensor, *, count_only: bool) -> Iterator[Tensor]:
    vocab, k = flagged.shape[0], flagged.shape[3]
    device = flagged.device
    shells = {r: shell_order(vocab, r, device) for r in range(1, k)} if not count_only else {}
    for m in range(1, vocab):
        for n in range(k - 1):
            r = k - 1 - n
            queries = torch.arange(m + 1, device=device) if n >= 1 else torch.tensor([m], device=device)
            flags = flagged[m, queries, :m, n]  # [queries, m]
            good = (~flags).sum(dim=1)  # [queries]
            counts = m**r - good**r
            total = int(counts.sum())
            if total == 0:
                continue
            placements = list(itertools.combinations(range(k - 1), n))
            if count_only:
                yield from (torch.empty(total, 0) for _ in placements)
                continue
            # ranks: unflagged tokens first (stable in c)
            order = (flags.long() * vocab + torch.arange(m, device=device)).argsort(dim=1)  # [queries, m]
            query_of = torch.repeat_interleave(torch.arange(len(queries), device=device), counts)
            begin = torch.cumsum(counts, dim=0) - counts
            offset = torch.arange(total, device=device) - begin[query_of] + good[query_of] ** r
            nonmax = order[query_of[:, None], shells[r][offset]]  # [total, r]: tokens < m
            for placement in placements:
                tokens = torch.empty(total, k, dtype=torch.long, device=device)
                tokens[:, list(placement)] = m
                tokens[:, [i for i in range(k - 1) if i not in placement]] = nonmax
                tokens[:, -1] = queries[query_of]
                yield tokens


__all__ = ["flagged_inputs", "flagged_count", "is_flagged", "shell_order"]

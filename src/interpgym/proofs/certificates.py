"""What a max-of-K proof strategy certifies, and how certified inputs are counted.

Every input t in [0, v)^K falls in one *case* (m, q, n): max token m, query (last)
token q <= m, and n = number of the first K-1 positions holding m (n >= 1 if q < m,
since m must occur). Its remaining K-1-n positions hold *non-max* tokens c < m.

A strategy certifies with two boolean tables:

* `ok[m, q, c, n]` (shape [v, v, v, K]; only c < m, q <= m meaningful): the strategy
  guarantees that **every** input in case (m, q, n) whose non-max tokens among the first
  K-1 positions all lie in G(m, q, n) = {c < m : ok[m, q, c, n]} is classified correctly.
  (How the strategy justifies mixing different c's, e.g. by convexity, and whether the
  query token q itself must be checked, is the strategy's burden, not this module's.)
* `ok_pure[m, q]` (shape [v, v]): every input of case (m, q, K-1), i.e. first K-1
  positions all m and last token q, is classified correctly.

Counting is exact combinatorics: the certified inputs of case (m, q, n) with n < K-1
number C(K-1, n) * |G(m, q, n)|^(K-1-n). `certified_mask` gives the same set per input,
for soundness tests against brute force.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Int
from torch import Tensor


def case_mask(vocab: int, k: int) -> Bool[Tensor, "m q n"]:
    """Which (m, q, n) cases exist: q <= m, n in [0, K-1], and n >= 1 when q < m."""
    m = torch.arange(vocab)[:, None, None]
    q = torch.arange(vocab)[None, :, None]
    n = torch.arange(k)[None, None, :]
    return (q <= m) & ((q == m) | (n >= 1))


def count_certified(ok: Bool[Tensor, "m q c n"], ok_pure: Bool[Tensor, "m q"]) -> int:
    """Number of inputs in [0, v)^K certified by (`ok`, `ok_pure`); exact integer arithmetic.

    Cost: O(v^3 K) to form |G(m, q, n)| plus O(v^2 K) big-integer products (not a proof
    cost: counting is bookkeeping shared by all strategies).
    """
    vocab, _, _, k = ok.shape
    below = torch.arange(vocab)[None, :] < torch.arange(vocab)[:, None]  # [m, c]: c < m
    sizes = (ok & below[:, None, :, None]).sum(dim=2)  # [m, q, n]
    valid = case_mask(vocab, k)
    if vocab**k < 2**62:  # every partial sum is at most v^K: exact in int64
        free = (k - 1 - torch.arange(k))[None, None, :]
        combos = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.long)
        terms = torch.where(free == 0, ok_pure.long()[:, :, None], combos * sizes.long().pow(free))
        return int(terms.masked_fill(~valid, 0).sum())
    total = 0
    sizes_list = sizes.tolist()
    valid_list = valid.tolist()
    pure_list = ok_pure.tolist()
    for m in range(vocab):
        for q in range(m + 1):
            for n in range(k):
                if not valid_list[m][q][n]:
                    continue
                free = k - 1 - n
                if free == 0:
                    total += int(pure_list[m][q])
                else:
                    total += math.comb(k - 1, n) * sizes_list[m][q][n] ** free
    return total


def input_cases(tokens: Int[Tensor, "batch k"]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per input: (max m, query q, first K-1 tokens, which of them are m, n = how many are m)."""
    m = tokens.max(dim=1).values
    first = tokens[:, :-1]
    is_max = first == m[:, None]
    return m, tokens[:, -1], first, is_max, is_max.sum(dim=1)


def certified_mask(
    ok: Bool[Tensor, "m q c n"], ok_pure: Bool[Tensor, "m q"], tokens: Int[Tensor, "batch k"]
) -> Bool[Tensor, " batch"]:
    """Per input: is it certified by (`ok`, `ok_pure`)? Agrees with `count_certified`."""
    k = tokens.shape[1]
    m, q, first, is_max, n = input_cases(tokens)
    if k == 1:
        return ok_pure[m, q]
    allowed = ok[m[:, None], q[:, None], first, n[:, None]]  # [batch, k-1]
    all_nonmax_ok = (allowed | is_max).all(dim=1)
    return torch.where(n == k - 1, ok_pure[m, q], all_nonmax_ok)

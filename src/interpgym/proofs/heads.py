"""Proofs for multi-head max-of-K (`subjects.maxk_heads`): brute force and a two-head convexity argument.

Tables: each head h has its own EQKE_h, EQKP_h, EVOU_h, PVOU_h (`tables.compute_tables`
of head h viewed as a one-head model); the direct path EU is shared. In exact arithmetic

    logits = EU[q] + sum_h sum_i a^h_i (EVOU_h[t_i] + PVOU_h[i]),   a^h = softmax_i(EQKE_h[q, t_i] + EQKP_h[q, i]).

**Brute force** evaluates that for every input (float64), decides inputs whose margin
is beyond the slack S (`roundoff.heads_margin_slack`, the one-head forward error
analysis with the head sum as one dot product) and re-runs the float32 forward
(`heads_last_logits`) on the rest, like the one-head brute force.

**The convexity argument for H heads.** For max m, query q and every wrong j,

    l_j - l_m <= D[m, q] + sum_h sum_i a^h_i U_h[m, t_i],
    D[m, q] = max_{j != m} EU[q, j] - EU[q, m],  U_h[m, t] = max_{j != m} EVOU_h[t, j] - EVOU_h[t, m] + P*_h[m, j]

(each head pessimised over the wrong output and its worst position, as the cubic proof
does for one head). The logit difference is now a *sum of H softmax averages*, which no
single extreme ordering maximises: head 1 may be worst with the max copies on the
early positions and head 2 with them late. So the argument works per arrangement
pi (the set of the first K-1 positions holding m; 2^(K-1) of them):

* lam_h[m, q, c, pi]: head h's average of U_h over the pure input with the max copies on
  pi, the other first positions all c, query q (exact, one softmax);
* at a fixed arrangement, an input mixing non-max tokens from a set C has head-h average
  <= max_{c in C} lam_h[m, q, c, pi] (the threshold form of the one-head convexity
  argument: with Lam that maximum, each non-max term of sum_i a^h_i (U_h(t_i) - Lam) is
  at most the one of the pure input whose token c* maximises e^{EQKE_h[q, c]}(U_h(c) - Lam));
* so every input of case (m, q, n) whose non-max tokens lie in G is correct if

      joint:        max_{|pi| = n} sum_h max_{c in G} lam_h[m, q, c, pi] < -(D[m, q] + S)
      independent:  sum_h max_{|pi| = n} max_{c in G} lam_h[m, q, c, pi] < -(D[m, q] + S)

  The independent form is what proving each head on its own gives (each head at its own
  worst arrangement); the joint form makes both heads see the same arrangement, the
  gain measured in `benchmarks/proofs_maxk_heads.py`.

G is found greedily: tokens c < m sorted by their own worst joint (independent) value,
the longest prefix satisfying the condition (monotone in the prefix, by running maxima).
It is a `certificates` certificate (`ok[m, q, c, n]` = c in G), counted exactly. The
pure inputs (m, ..., m, q) are evaluated exactly (`pure_inputs` with all heads).

Cost O(H 2^(K-1) v^3 + v^3 log v) after the O(H (v^2 d + v d^2)) tables.
Unexplained dimensionality: H (3 v^2 + 2 v K) - (H - 1) v^2 (EU is shared).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interpgym.core.errors import require
from interpgym.core.flops import FlopCounter
from interpgym.core.threads import torch_threads
from interpgym.proofs.brute_force import PREFIXES_PER_CHUNK, PrefixTables, prefix_logits
from interpgym.proofs.cubic import pessimized_value_tables
from interpgym.proofs.inputs import MAX_ENUMERABLE, input_count, tokens_at, tokens_of
from interpgym.proofs.result import ProofResult
from interpgym.proofs.roundoff import heads_margin_slack, value_logit_bound
from interpgym.proofs.tables import MaxKTables, compute_tables
from interpgym.subjects.maxk import correct_mask
from interpgym.subjects.maxk_heads import MaxKHeadsWeights, heads_last_logits

BRUTE_FORCE = "brute-force"
JOINT = "cubic/joint"
INDEPENDENT = "cubic/independent"
FORWARD_BATCH = 4096


def head_tables(w: MaxKHeadsWeights) -> list[MaxKTables]:
    """Each head's five tables (EU repeated in each). Cost H O(v^2 d + v d^2)."""
    return [compute_tables(w.head(h)) for h in range(w.n_heads)]


def heads_slack(w: MaxKHeadsWeights, tables: list[MaxKTables]) -> float:
    """The margin slack S of the H-head model. Cost H O(v^2 K dh + v K d dh)."""
    return heads_margin_slack([w.head(h) for h in range(w.n_heads)], [value_logit_bound(t.EVOU, t.PVOU) for t in tables])


def _chunk_logits(prefix_tables: list[PrefixTables], direct: Tensor, prefix: Tensor) -> tuple[Tensor, Tensor]:
    """Exact logits of prefix + (q,) for all q (every head's logits include EU once: subtract H - 1 copies)."""
    total, max_token = prefix_logits(prefix_tables[0], prefix)
    for t in prefix_tables[1:]:
        total += prefix_logits(t, prefix)[0]
    return total - (len(prefix_tables) - 1) * direct, max_token


def heads_exact_correctness(w: MaxKHeadsWeights, *, advance: Callable[[int], None] | None = None) -> tuple[Tensor, float]:
    """(per-input correctness of the float32 model over [0, v)^K, slack). Cost O(v^K H K v)."""
    vocab, k = w.vocab, w.k
    require(input_count(vocab, k) <= MAX_ENUMERABLE, f"v^K = {vocab}^{k} is too many inputs for brute force")
    tables = head_tables(w)
    slack = heads_slack(w, tables)
    prefix_tables = [PrefixTables.build(t) for t in tables]
    n_prefixes = vocab ** (k - 1)
    correct = torch.empty(n_prefixes, vocab, dtype=torch.bool, device=w.W_E.device)
    undecided = []
    for start in range(0, n_prefixes, PREFIXES_PER_CHUNK):
        stop = min(start + PREFIXES_PER_CHUNK, n_prefixes)
        logits, max_token = _chunk_logits(prefix_tables, tables[0].EU, tokens_at(vocab, k - 1, start, stop, w.W_E.device))
        target = logits.gather(2, max_token[:, :, None])[:, :, 0]
        margins = target - logits.scatter(2, max_token[:, :, None], float("-inf")).amax(dim=2)
        correct[start:stop] = margins > slack
        close = ~(correct[start:stop] | (margins < -slack))
        if bool(close.any()):
            undecided.append(close.nonzero() + torch.tensor([start, 0], device=close.device))
        if advance is not None:
            advance((stop - start) * vocab)
    correct = correct.reshape(-1)
    if undecided:
        where = torch.cat(undecided)
        index = where[:, 0] * vocab + where[:, 1]
        for begin in range(0, index.shape[0], FORWARD_BATCH):
            batch_index = index[begin : begin + FORWARD_BATCH]
            batch = tokens_of(batch_index, vocab, k)
            correct[batch_index] = correct_mask(heads_last_logits(w, batch), batch)
    return correct, slack


def heads_brute_force(w: MaxKHeadsWeights, *, advance: Callable[[int], None] | None = None) -> ProofResult:
    """Exact accuracy of the H-head float32 model as a (tight) proof."""
    started = time.perf_counter()
    with torch_threads(1) if w.W_E.device.type == "cpu" else nullcontext(), FlopCounter() as counter:
        correct, slack = heads_exact_correctness(w, advance=advance)
    total = input_count(w.vocab, w.k)
    return ProofResult(strategy=BRUTE_FORCE, certified=int(correct.sum()), total=total, flops=counter.total,
                       wall_s=time.perf_counter() - started, unexplained_dim=float(total), complexity="O(v^K H K v)",
                       correct=correct, extra={"slack": slack})


def arrangements(k: int) -> list[tuple[int, ...]]:
    """Every subset of the first K-1 positions (as sorted tuples), by size then lexicographically."""
    positions = range(k - 1)
    return [s for n in range(k) for s in itertools.combinations(positions, n)]


def arrangement_averages(t: MaxKTables, U: Float[Tensor, "m q t"], subsets: list[tuple[int, ...]]) -> Float[Tensor, "m q c pi"]:
    """lam[m, q, c, pi]: the head's attention average of U over the pure input with the max copies on
    subset pi, token c on the other first positions, query q. Cost about 10 v^3 per subset."""
    k = t.k
    masks = torch.zeros(len(subsets), max(k - 1, 0), dtype=torch.bool, device=U.device)
    for i, s in enumerate(subsets):
        masks[i, list(s)] = True
    first = t.EQKP[:, :-1]  # [q, K-1]
    log_max = first[:, None, :].masked_fill(~masks[None], float("-inf")).logsumexp(dim=2)  # [q, pi]
    log_other = first[:, None, :].masked_fill(masks[None], float("-inf")).logsumexp(dim=2)
    query_lw = (t.EQKE.diagonal() + t.EQKP[:, -1])[None, :, None, None]
    max_lw = t.EQKE.T[:, :, None, None] + log_max[None, :, None, :]  # [m, q, 1, pi]
    other_lw = t.EQKE[None, :, :, None] + log_other[None, :, None, :]  # [1, q, c, pi]
    top = torch.maximum(torch.maximum(max_lw, other_lw), query_lw)
    max_w, other_w, query_w = ((lw - top).exp() for lw in (max_lw, other_lw, query_lw))
    index = torch.arange(t.vocab, device=U.device)
    max_value = U[index, :, index][:, :, None, None]
    query_value = U.diagonal(dim1=1, dim2=2)[:, :, None, None]
    return (max_w * max_value + other_w * U[:, :, :, None] + query_w * query_value) / (max_w + other_w + query_w)


def heads_certificate(
    tables: list[MaxKTables], slack: float, joint: bool
) -> tuple[Bool[Tensor, "m q c n"], Bool[Tensor, "m q"]]:
    """(ok, ok_pure) of the joint or independent H-head argument (module docstring). Cost O(H 2^(K-1) v^3 + v^3 log v)."""
    first = tables[0]
    vocab, k = first.vocab, first.k
    device = first.EU.device
    subsets = arrangements(k)
    sizes = torch.tensor([len(s) for s in subsets], device=device)
    # D[m, q] (+ S): the direct path, pessimised over the wrong output; U_h without D and S
    zero = torch.zeros_like(first.EU)
    direct = pessimized_value_tables(MaxKTables(EQKE=zero, EQKP=first.EQKP, EVOU=zero, PVOU=torch.zeros_like(first.PVOU), EU=first.EU),
                                     slack)[:, :, 0]  # [m, q]
    lams = torch.stack([arrangement_averages(t, pessimized_value_tables(
        MaxKTables(EQKE=t.EQKE, EQKP=t.EQKP, EVOU=t.EVOU, PVOU=t.PVOU, EU=zero), 0.0), subsets) for t in tables])  # [H, m, q, c, pi]
    m_index = torch.arange(vocab, device=device)
    below = m_index[None, :] < m_index[:, None]  # [m, c]
    ok = torch.zeros(vocab, vocab, vocab, k, dtype=torch.bool, device=device)
    for n in range(k - 1):
        lam = lams[..., sizes == n]  # [H, m, q, c, P]
        own = lam.sum(dim=0).amax(dim=-1) if joint else lam.amax(dim=-1).sum(dim=0)  # [m, q, c]
        order = own.masked_fill(~below[:, None, :], float("inf")).argsort(dim=2)  # valid tokens first, best first
        ordered = lam.gather(3, order[None, :, :, :, None].expand_as(lam))
        running = ordered.cummax(dim=3).values  # [H, m, q, l, P]: max over the first l+1 tokens
        value = running.sum(dim=0).amax(dim=-1) if joint else running.amax(dim=-1).sum(dim=0)  # [m, q, l]
        fits = (value + direct[:, :, None] < 0) & below[:, None, :].expand_as(value).gather(2, order)
        length = fits.long().cumprod(dim=2).sum(dim=2)  # longest good prefix
        chosen = torch.arange(vocab, device=device)[None, None, :] < length[:, :, None]
        ok[:, :, :, n].scatter_(2, order, chosen)
    ok &= below[:, None, :, None] & (m_index[None, :] <= m_index[:, None])[:, :, None, None]
    ok_pure = _pure_margins_heads(tables) > slack
    return ok, ok_pure & (m_index[None, :] <= m_index[:, None])


def _pure_margins_heads(tables: list[MaxKTables]) -> Float[Tensor, "m q"]:
    """Exact margin of each pure input (m, ..., m, q) of the H-head model. Cost O(H v^3 K)."""
    first = tables[0]
    vocab, k = first.vocab, first.k
    prefix = torch.arange(vocab, device=first.EU.device)[:, None].expand(vocab, k - 1)
    if k == 1:
        prefix = torch.zeros((1, 0), dtype=torch.long, device=first.EU.device)
    logits, _ = _chunk_logits([PrefixTables.build(t) for t in tables], first.EU, prefix)
    logits = logits.expand(vocab, vocab, vocab)
    m = torch.arange(vocab, device=logits.device)[:, None, None].expand(-1, vocab, 1)
    return logits.gather(2, m)[..., 0] - logits.scatter(2, m, float("-inf")).amax(dim=2)


def heads_cubic(w: MaxKHeadsWeights, joint: bool = True) -> ProofResult:
    """Run the joint (or independent-heads) convexity proof on `w`."""
    started = time.perf_counter()
    with FlopCounter() as counter:
        tables = head_tables(w)
        slack = heads_slack(w, tables)
        ok, ok_pure = heads_certificate(tables, slack, joint)
    vocab, k, h = w.vocab, w.k, w.n_heads
    return ProofResult.from_certificate(JOINT if joint else INDEPENDENT, ok, ok_pure, flops=counter.total,
                                        wall_s=time.perf_counter() - started,
                                        unexplained_dim=float(h * (3 * vocab**2 + 2 * vocab * k) - (h - 1) * vocab**2),
                                        complexity="O(H 2^(K-1) v^3 + v^3 log v)", extra={"slack": slack})


HEADS_STRATEGIES: dict[str, Callable[[MaxKHeadsWeights], ProofResult]] = {
    JOINT: lambda w: heads_cubic(w, joint=True),
    INDEPENDENT: lambda w: heads_cubic(w, joint=False),
}

__all__ = ["heads_brute_force", "heads_exact_correctness", "heads_cubic", "heads_certificate", "arrangements",
           "arrangement_averages", "head_tables", "HEADS_STRATEGIES", "BRUTE_FORCE", "JOINT", "INDEPENDENT"]

"""Brute force: the exact accuracy over all v^K inputs, decided as the float32 model decides.

Each input is evaluated through the float64 component tables (`tables`): for a fixed
prefix (the first K-1 tokens) all v query tokens are handled at once, so an input
costs about 2 K v FLOPs instead of the float32 forward's ~2 K d (3 d_head + v) (see
`naive_forward_flops`). The table path computes the *exact-arithmetic* margin
logit[max] - max_{j != max} logit[j] to within float64 rounding; an input whose margin
exceeds the slack S of `roundoff.margin_slack` is correct under the float32 forward,
one below -S is wrong, and every input with |margin| <= S is re-run through the
model's own float32 forward (`last_logits` + `correct_mask`), whose verdict is final.
So the result agrees with the float32 forward on every input (ties count as wrong).

Memory is bounded by the chunk size (default 64 prefixes = 64 v inputs: a few MiB
for v = 64) plus one bool per input for the returned mask (16 MiB for 64^4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.proofs.inputs import MAX_ENUMERABLE, input_count, tokens_at
from interpgym.proofs.result import ProofResult
from interpgym.proofs.roundoff import margin_slack
from interpgym.proofs.tables import MaxKTables, compute_tables
from interpgym.subjects.maxk import MaxKWeights, correct_mask, last_logits
from interpgym.core.errors import require

NAME = "brute-force"
COMPLEXITY = "O(v^K K v)"
PREFIXES_PER_CHUNK = 64
FORWARD_BATCH = 4096

Advance = Callable[[int], None]


@dataclass(frozen=True)
class ExactCorrectness:
    """Per-input verdicts of the float32 model over [0, v)^K (lexicographic order, see `inputs`)."""

    correct: Bool[Tensor, " inputs"]
    decided_by_forward: int  # inputs whose table margin was within the slack
    slack: float


def _prefix_margins(
    tables: MaxKTables, query_values: Tensor, prefix: Int[Tensor, "g k_minus_1"]
) -> tuple[Tensor, Tensor]:
    """Exact-arithmetic margins (float64) of the g*v inputs prefix + (q,) for every query q.

    Returns (margins [g, v], max token [g, v]). Cost about (2K + 4) v per input.
    """
    vocab, k = tables.vocab, tables.k
    g = prefix.shape[0]
    queries = torch.arange(vocab, device=prefix.device)
    prefix_scores = tables.EQKE[:, prefix].permute(1, 0, 2) + tables.EQKP[:, :-1]  # [g, v_q, K-1]
    query_scores = (tables.EQKE.diagonal() + tables.EQKP[:, -1]).expand(g, vocab)[:, :, None]
    attn = torch.cat([prefix_scores, query_scores], dim=-1).softmax(dim=-1)  # [g, v_q, K]
    prefix_values = tables.EVOU[prefix] + tables.PVOU[:-1]  # [g, K-1, v_out]
    logits = attn[:, :, -1:] * query_values + tables.EU  # query position + direct path
    for i in range(k - 1):
        logits.addcmul_(attn[:, :, i : i + 1], prefix_values[:, None, i, :])
    max_token = queries.expand(g, vocab)
    if k > 1:
        max_token = torch.maximum(prefix.amax(dim=1, keepdim=True), max_token)
    target = logits.gather(2, max_token[:, :, None])[:, :, 0]
    logits.scatter_(2, max_token[:, :, None], float("-inf"))
    return target - logits.amax(dim=2), max_token


def exact_correctness(
    w: MaxKWeights, *, prefixes_per_chunk: int = PREFIXES_PER_CHUNK, advance: Advance | None = None
) -> ExactCorrectness:
    """Per-input correctness of the float32 model on all v^K inputs (see the module docstring).

    Guarantee: `correct[i]` equals `correct_mask(last_logits(w, x_i), x_i)` for every
    input x_i, where inputs within the float error slack are evaluated exactly that way.
    `advance(n)` is called after each chunk of n inputs. Cost O(v^K K v) FLOPs.
    """
    vocab, k = w.vocab, w.k
    total = input_count(vocab, k)
    require(total <= MAX_ENUMERABLE, f"v^K = {vocab}^{k} = {total} inputs is too many for brute force; use a smaller config or --strategies cubic")
    tables = compute_tables(w)
    slack = margin_slack(w, tables)
    query_values = tables.EVOU + tables.PVOU[-1]  # [v_q, v_out]: value at the query position
    n_prefixes = vocab ** (k - 1)
    correct = torch.empty(n_prefixes, vocab, dtype=torch.bool, device=w.W_E.device)
    undecided: list[Tensor] = []
    for start in range(0, n_prefixes, prefixes_per_chunk):
        stop = min(start + prefixes_per_chunk, n_prefixes)
        prefix = tokens_at(vocab, k - 1, start, stop, w.W_E.device)
        margins, _ = _prefix_margins(tables, query_values, prefix)
        correct[start:stop] = margins > slack
        close = margins.abs() <= slack
        if bool(close.any()):
            undecided.append(close.nonzero() + torch.tensor([start, 0], device=close.device))
        if advance is not None:
            advance((stop - start) * vocab)
    decided_by_forward = 0
    if undecided:
        where = torch.cat(undecided)  # [n, 2]: (prefix index, query token)
        decided_by_forward = where.shape[0]
        powers = vocab ** torch.arange(k - 2, -1, -1, device=where.device)
        prefix_tokens = torch.div(where[:, :1], powers, rounding_mode="floor") % vocab
        tokens = torch.cat([prefix_tokens, where[:, 1:]], dim=1)
        for begin in range(0, tokens.shape[0], FORWARD_BATCH):
            batch = tokens[begin : begin + FORWARD_BATCH]
            verdict = correct_mask(last_logits(w, batch), batch)
            correct[where[begin : begin + FORWARD_BATCH, 0], where[begin : begin + FORWARD_BATCH, 1]] = verdict
    return ExactCorrectness(correct=correct.reshape(-1), decided_by_forward=decided_by_forward, slack=slack)


def naive_forward_flops(w: MaxKWeights, sample: int = 256) -> int:
    """FLOPs of running the float32 forward (`last_logits`) on all v^K inputs.

    Measured with `FlopCounter` on `sample` inputs and scaled (the forward's cost is
    linear in the batch); not part of any proof's cost.
    """
    total = input_count(w.vocab, w.k)
    n = min(sample, total)
    batch = tokens_at(w.vocab, w.k, 0, n, w.W_E.device)
    with FlopCounter() as counter:
        last_logits(w, batch)
    return counter.total * total // n


def brute_force(w: MaxKWeights, *, advance: Advance | None = None) -> ProofResult:
    """Exact accuracy as a (tight) proof. Unexplained dimensionality v^K: every input is its own case."""
    started = time.perf_counter()
    with FlopCounter() as counter:
        exact = exact_correctness(w, advance=advance)
        certified = int(exact.correct.sum())
    wall = time.perf_counter() - started
    total = input_count(w.vocab, w.k)
    return ProofResult(
        strategy=NAME,
        certified=certified,
        total=total,
        flops=counter.total,
        wall_s=wall,
        unexplained_dim=float(total),
        complexity=COMPLEXITY,
        extra={
            "correct": exact.correct,
            "decided_by_forward": exact.decided_by_forward,
            "slack": exact.slack,
            "naive_forward_flops": naive_forward_flops(w),
        },
    )


__all__ = ["brute_force", "exact_correctness", "naive_forward_flops", "ExactCorrectness", "NAME", "COMPLEXITY"]

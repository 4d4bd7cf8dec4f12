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

Memory is bounded by the chunk size (default 128 prefixes = 128 v inputs: 4 MiB of
logits for v = 64) plus one bool per input for the returned mask (16 MiB for 64^4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interpgym.core.errors import require
from interpgym.core.flops import FlopCounter
from interpgym.core.threads import cpu_threads
from interpgym.proofs.inputs import MAX_ENUMERABLE, input_count, tokens_at, tokens_of
from interpgym.proofs.result import ProofResult
from interpgym.proofs.roundoff import margin_slack, value_logit_bound
from interpgym.proofs.tables import MaxKTables, compute_tables
from interpgym.subjects.maxk import MaxKWeights, correct_mask, last_logits

NAME = "brute-force"
COMPLEXITY = "O(v^K K v)"
PREFIXES_PER_CHUNK = 128
FORWARD_BATCH = 4096

Advance = Callable[[int], None]


@dataclass(frozen=True)
class ExactCorrectness:
    """Per-input verdicts of the float32 model over [0, v)^K (lexicographic order, see `inputs`)."""

    correct: Bool[Tensor, " inputs"]
    decided_by_forward: int  # inputs whose table margin was within the slack
    slack: float


@dataclass(frozen=True)
class PrefixTables:
    """Tables re-indexed for the brute-force loop (O(K v^2) to build, counted with the proof)."""

    key_scores: Float[Tensor, "k_minus_1 v_key v_query"]  # EQKE[q, t] + EQKP[q, i], i < K-1
    query_scores: Float[Tensor, " v_query"]  # EQKE[q, q] + EQKP[q, K-1]
    key_values: Float[Tensor, "k_minus_1 v_key v_out"]  # EVOU[t] + PVOU[i], i < K-1
    query_values: Float[Tensor, "v_query v_out"]  # EVOU[q] + PVOU[K-1]
    direct: Float[Tensor, "v_query v_out"]  # EU

    @classmethod
    def build(cls, tables: MaxKTables) -> PrefixTables:
        return cls(
            key_scores=tables.EQKE.T[None, :, :] + tables.EQKP.T[:-1, None, :],
            query_scores=tables.EQKE.diagonal() + tables.EQKP[:, -1],
            key_values=tables.EVOU[None, :, :] + tables.PVOU[:-1, None, :],
            query_values=tables.EVOU + tables.PVOU[-1],
            direct=tables.EU,
        )


def prefix_logits(t: PrefixTables, prefix: Int[Tensor, "g k_minus_1"]) -> tuple[Float[Tensor, "g v_query v_out"], Int[Tensor, "g v_query"]]:
    """(logits, max token) in exact arithmetic (float64) of the g*v inputs prefix + (q,), for every query q.

    Cost about (2K + 4) v FLOPs per input.
    """
    g, vocab = prefix.shape[0], t.direct.shape[0]
    positions = torch.arange(prefix.shape[1], device=prefix.device)
    scores = torch.cat([t.key_scores[positions, prefix], t.query_scores.expand(g, 1, vocab)], dim=1)  # [g, K, v_q]
    weights = (scores - scores.amax(dim=1, keepdim=True)).exp()
    attn = (weights / weights.sum(dim=1, keepdim=True))[..., None]  # [g, K, v_q, 1]
    values = t.key_values[positions, prefix]  # [g, K-1, v_out]
    logits = torch.addcmul(t.direct, attn[:, -1], t.query_values)  # [g, v_q, v_out]
    for i in range(prefix.shape[1]):
        logits.addcmul_(attn[:, i], values[:, None, i])
    max_token = torch.arange(vocab, device=prefix.device).expand(g, vocab)
    if prefix.shape[1] > 0:
        max_token = torch.maximum(prefix.amax(dim=1, keepdim=True), max_token)
    return logits, max_token


def _prefix_margins(t: PrefixTables, prefix: Int[Tensor, "g k_minus_1"]) -> Float[Tensor, "g v_query"]:
    """Exact-arithmetic margins (float64) of the g*v inputs prefix + (q,), for every query token q.

    margin = logit[max token] - max over other tokens j of logit[j]. Cost about
    (2K + 6) v FLOPs per input.
    """
    logits, max_token = prefix_logits(t, prefix)
    target = logits.gather(2, max_token[:, :, None])[:, :, 0]
    logits.scatter_(2, max_token[:, :, None], float("-inf"))
    return target - logits.amax(dim=2)


def exact_correctness(
    w: MaxKWeights, *, prefixes_per_chunk: int = PREFIXES_PER_CHUNK, advance: Advance | None = None
) -> ExactCorrectness:
    """Per-input correctness of the float32 model on all v^K inputs (see the module docstring).

    Guarantee: `correct[i]` equals `correct_mask(last_logits(w, x_i), x_i)` for every
    input x_i, where inputs within the float error slack are evaluated exactly that way.
    `advance(n)` is called after each chunk of n inputs. Cost O(v^K K v) FLOPs.
    On CPU it runs on one intra-op thread: the chunks are small enough that thread
    synchronisation costs more than it saves (docs/proofs.md, "Cost accounting").
    """
    with cpu_threads(1, w.W_E.device):
        return _exact_correctness(w, prefixes_per_chunk, advance)


def _exact_correctness(w: MaxKWeights, prefixes_per_chunk: int, advance: Advance | None) -> ExactCorrectness:
    vocab, k = w.vocab, w.k
    total = input_count(vocab, k)
    require(
        total <= MAX_ENUMERABLE,
        f"v^K = {vocab}^{k} = {total} inputs is too many for brute force; use a smaller config or --strategies cubic",
    )
    tables = compute_tables(w)
    slack = margin_slack(w, value_logit_bound(tables.EVOU, tables.PVOU))
    prefix_tables = PrefixTables.build(tables)
    n_prefixes = vocab ** (k - 1)
    correct = torch.empty(n_prefixes, vocab, dtype=torch.bool, device=w.W_E.device)
    undecided: list[Tensor] = []
    for start in range(0, n_prefixes, prefixes_per_chunk):
        stop = min(start + prefixes_per_chunk, n_prefixes)
        prefix = tokens_at(vocab, k - 1, start, stop, w.W_E.device)
        margins = _prefix_margins(prefix_tables, prefix)
        correct[start:stop] = margins > slack
        close = ~(correct[start:stop] | (margins < -slack))  # within the slack (or NaN): the forward decides
        if bool(close.any()):
            undecided.append(close.nonzero() + torch.tensor([start, 0], device=close.device))
        if advance is not None:
            advance((stop - start) * vocab)
    correct = correct.reshape(-1)
    decided_by_forward = 0
    if undecided:
        where = torch.cat(undecided)  # [n, 2]: (prefix index, query token)
        index = where[:, 0] * vocab + where[:, 1]
        decided_by_forward = index.shape[0]
        for begin in range(0, index.shape[0], FORWARD_BATCH):
            batch_index = index[begin : begin + FORWARD_BATCH]
            batch = tokens_of(batch_index, vocab, k)
            correct[batch_index] = correct_mask(last_logits(w, batch), batch)
    return ExactCorrectness(correct=correct, decided_by_forward=decided_by_forward, slack=slack)


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
        correct=exact.correct,
        extra={
            "decided_by_forward": exact.decided_by_forward,
            "slack": exact.slack,
            "naive_forward_flops": naive_forward_flops(w),
        },
    )


__all__ = [
    "brute_force",
    "exact_correctness",
    "prefix_logits",
    "PrefixTables",
    "naive_forward_flops",
    "ExactCorrectness",
    "NAME",
    "COMPLEXITY",
]

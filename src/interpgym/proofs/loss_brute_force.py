"""Brute force for the loss theorem: the exact expected loss, and a certified upper bound.

Every input is evaluated through the float64 tables (`brute_force.prefix_logits`, all v
query tokens of a prefix at once, about 2 K v FLOPs per input). Per input, with exact
logits l (float64) and max token m,

    exact loss      softplus(log sum_{j != m} exp(l_j - l_m))
    certified bound softplus(log sum_{j != m} exp(l_j - l_m) + S)

where S = `roundoff.margin_slack` bounds every float32 logit difference's distance from
the exact one plus the float64 evaluation error, so the bound holds for the float32
forward's loss. `exact_loss` is the model's loss in exact arithmetic (to float64
rounding); the float32 model's loss lies below the certified bound.

Cost O(v^K K v) FLOPs, memory one chunk of logits (128 prefixes: 4 MiB at v = 64).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.errors import require
from interpgym.core.flops import FlopCounter
from interpgym.core.threads import torch_threads
from interpgym.proofs.brute_force import PREFIXES_PER_CHUNK, PrefixTables, prefix_logits
from interpgym.proofs.inputs import MAX_ENUMERABLE, input_count, tokens_at
from interpgym.proofs.loss_bounds import ROUNDING_PAD, LossResult, loss_from_log_excess
from interpgym.proofs.roundoff import margin_slack, value_logit_bound
from interpgym.proofs.tables import MaxKTables, compute_tables, logits_from_tables
from interpgym.subjects.maxk import MaxKWeights

NAME = "brute-force"
COMPLEXITY = "O(v^K K v)"


@dataclass(frozen=True)
class ExactLoss:
    """Sums over all v^K inputs: exact-arithmetic loss and its certified float32 upper bound."""

    exact: float  # mean exact-arithmetic loss
    bound: float  # certified upper bound on the float32 model's mean loss
    slack: float


def prefix_log_excess(t: PrefixTables, prefix: Int[Tensor, "g k_minus_1"]) -> Float[Tensor, "g v_query"]:
    """log sum_{j != m} exp(l_j - l_m) in exact arithmetic for the g*v inputs prefix + (q,). Cost ~(2K+6) v per input."""
    logits, max_token = prefix_logits(t, prefix)
    target = logits.gather(2, max_token[:, :, None])
    logits.scatter_(2, max_token[:, :, None], float("-inf"))
    return (logits - target).logsumexp(dim=2)


def table_log_excess(tables: MaxKTables, tokens: Int[Tensor, "batch k"]) -> Float[Tensor, " batch"]:
    """log sum_{j != m} exp(l_j - l_m) per input in exact arithmetic (float64 tables, any inputs; add S for
    the float32 model, as brute force does). Cost about (3K + 6) v FLOPs per input."""
    logits = logits_from_tables(tables, tokens)
    target = tokens.max(dim=1).values[:, None]
    others = logits.scatter(1, target, float("-inf"))
    return (others - logits.gather(1, target)).logsumexp(dim=1)


def exact_loss(w: MaxKWeights, *, advance: Callable[[int], None] | None = None) -> ExactLoss:
    """Mean loss over all v^K inputs (exact arithmetic) and its certified float32 bound. Cost O(v^K K v)."""
    vocab, k = w.vocab, w.k
    total = input_count(vocab, k)
    require(total <= MAX_ENUMERABLE, f"v^K = {vocab}^{k} = {total} inputs is too many for brute force")
    with torch_threads(1) if w.W_E.device.type == "cpu" else nullcontext():
        tables = compute_tables(w)
        slack = margin_slack(w, value_logit_bound(tables.EVOU, tables.PVOU))
        prefix_tables = PrefixTables.build(tables)
        n_prefixes = vocab ** (k - 1)
        exact_sum = torch.zeros((), dtype=torch.float64, device=w.W_E.device)
        bound_sum = torch.zeros((), dtype=torch.float64, device=w.W_E.device)
        for start in range(0, n_prefixes, PREFIXES_PER_CHUNK):
            stop = min(start + PREFIXES_PER_CHUNK, n_prefixes)
            excess = prefix_log_excess(prefix_tables, tokens_at(vocab, k - 1, start, stop, w.W_E.device))
            exact_sum += loss_from_log_excess(excess).sum()
            bound_sum += loss_from_log_excess(excess + slack).sum()
            if advance is not None:
                advance((stop - start) * vocab)
    return ExactLoss(exact=float(exact_sum) / total, bound=float(bound_sum) / total * (1 + ROUNDING_PAD), slack=slack)


def brute_force_loss(w: MaxKWeights, *, advance: Callable[[int], None] | None = None) -> LossResult:
    """Brute force as a loss proof (see the module docstring); `exact_loss` is the exact mean loss."""
    started = time.perf_counter()
    with FlopCounter() as counter:
        exact = exact_loss(w, advance=advance)
    wall = time.perf_counter() - started
    tables = compute_tables(w)

    def log_excess(tokens: Int[Tensor, "batch k"]) -> Float[Tensor, " batch"]:
        return table_log_excess(tables, tokens) + exact.slack

    return LossResult(
        strategy=NAME,
        bound=exact.bound,
        flops=counter.total,
        wall_s=wall,
        unexplained_dim=float(input_count(w.vocab, w.k)),
        complexity=COMPLEXITY,
        log_excess=log_excess,
        exact_loss=exact.exact, extra={"slack": exact.slack},
    )


__all__ = ["brute_force_loss", "exact_loss", "table_log_excess", "prefix_log_excess", "ExactLoss", "NAME", "COMPLEXITY"]

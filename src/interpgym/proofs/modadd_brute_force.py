"""Brute force for modular addition: the exact accuracy of the float32 model over all p^2 inputs.

There are only p^2 inputs (3,481 at p = 59), so brute force runs the model's own float32
forward (`subjects.modadd.logits`) on every one of them and decides each with
`correct_mask` (ties count as wrong): the result *is* the theorem's truth, with no
rounding argument needed. Cost: p^2 forwards, O(p^2 (H d d_head + d d_mlp + d p)) FLOPs.
"""

from __future__ import annotations

import time

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interpgym.core.flops import FlopCounter
from interpgym.core.threads import cpu_threads
from interpgym.proofs.result import ProofResult
from interpgym.subjects.modadd import ModAddWeights, all_inputs, correct_mask, labels, logits

NAME = "brute-force"
COMPLEXITY = "O(p^2 (H d d_head + d d_mlp + d p))"
FORWARD_BATCH = 1024


def exact_correctness(w: ModAddWeights) -> Bool[Tensor, " pairs"]:
    """Per-input correctness (index a * p + b) of the float32 model: `correct_mask(logits(w, x), x)` for every x."""
    pairs = all_inputs(w.p, w.W_E.device)
    return torch.cat([correct_mask(logits(w, batch), batch) for batch in pairs.split(FORWARD_BATCH)])


def margins(w: ModAddWeights) -> Float[Tensor, " pairs"]:
    """logit[answer] - max over other answers, per input, computed in `w`'s dtype (float64 weights: exact arithmetic
    to within float64 rounding). Used by tests and diagnostics, not by the proofs."""
    pairs = all_inputs(w.p, w.W_E.device)
    out = torch.cat([logits(w, batch) for batch in pairs.split(FORWARD_BATCH)])
    target = labels(pairs, w.p)
    right = out.gather(1, target[:, None])[:, 0]
    return right - out.scatter(1, target[:, None], float("-inf")).amax(dim=1)


def brute_force(w: ModAddWeights) -> ProofResult:
    """Exact accuracy as a (tight) proof. Unexplained dimensionality p^2: every input is its own case.

    `correct` is the per-input verdict (the certified set is exactly the correct set).
    """
    started = time.perf_counter()
    with cpu_threads(1, w.W_E.device), FlopCounter() as counter:
        correct = exact_correctness(w)
        certified = int(correct.sum())
    wall = time.perf_counter() - started
    total = w.p * w.p
    return ProofResult(strategy=NAME, certified=certified, total=total, flops=counter.total, wall_s=wall,
                       unexplained_dim=float(total), complexity=COMPLEXITY,
                       correct=correct, extra={"certified_mask": correct})


__all__ = ["brute_force", "exact_correctness", "margins", "NAME", "COMPLEXITY"]

"""Splicing a reconstruction into a model and scoring it: shared by every subject with a downstream task.

Definitions (used by digits and smollm2 alike, all on held-out inputs):

* `ce_loss_clean`, `ce_loss_spliced`, `ce_loss_zero`, `ce_loss_mean`: mean cross-entropy
  (nats) of the model with the site left alone, replaced by the reconstruction,
  replaced by zeros, replaced by the train-split mean activation;
* `ce_loss_recovered_zero` = (CE_zero - CE_spliced) / (CE_zero - CE_clean), and
  `ce_loss_recovered_mean` likewise with CE_mean: 1 means the reconstruction is as good
  as the real activations, 0 as bad as the ablation (it can leave [0, 1]);
* `kl_div`: mean over inputs of KL(clean || spliced) of the output distributions (nats).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.subjects.activations import Reconstruct


def apply_reconstruct(reconstruct: Reconstruct, acts: Float[Tensor, "n d"]) -> Float[Tensor, "n d"]:
    """`reconstruct(acts)` checked to be a finite tensor of the same shape, on `acts`' device and dtype.

    Raises `UserError` for a wrong shape, a non-tensor, or NaN/inf values (e.g. an SAE
    with NaN weights), so a bad reconstruction never yields a silently wrong score.
    """
    out = reconstruct(acts)
    if not isinstance(out, Tensor):
        raise UserError(f"reconstruct returned {type(out).__name__}, expected a tensor of shape {tuple(acts.shape)}")
    if out.shape != acts.shape:
        raise UserError(
            f"reconstruct returned shape {tuple(out.shape)} for input {tuple(acts.shape)}: the SAE width does not match the subject's d_in"
        )
    out = out.to(device=acts.device, dtype=acts.dtype)
    if not torch.isfinite(out).all():
        raise UserError("reconstruct returned NaN or inf values: check the SAE weights for NaNs")
    return out


def kl_div_sum(clean_logits: Float[Tensor, "n v"], spliced_logits: Float[Tensor, "n v"]) -> float:
    """Sum over rows of KL(softmax(clean) || softmax(spliced)) in nats (per-row sums accumulated in float64)."""
    clean_logp = torch.log_softmax(clean_logits.float(), -1)
    spliced_logp = torch.log_softmax(spliced_logits.float(), -1)
    return (clean_logp.exp() * (clean_logp - spliced_logp)).sum(-1).double().sum().item()


def _logsumexp_float64_sum(logits: Float[Tensor, "n v"]) -> Float[Tensor, " n"]:
    """logsumexp over the last dim with the exponentials summed in float64 (no float64 copy of the logits)."""
    if logits.dtype == torch.float64:
        return torch.logsumexp(logits, -1)
    peak = logits.max(-1, keepdim=True).values
    return peak.squeeze(-1).double() + torch.exp(logits - peak).sum(-1, dtype=torch.float64).log()


def kl_div_sum_from_expected_unembedding(
    negentropy_minus_bias: Float[Tensor, " n"],
    expected_unembedding: Float[Tensor, "n d"],
    spliced_final: Float[Tensor, "n d"],
    spliced_logits: Float[Tensor, "n v"],
) -> float:
    """Sum over rows of KL(p || softmax(spliced_logits)) where the clean p is given by
    (sum_v p_v (log p_v - bias_v), W^T p) and spliced_logits = W spliced_final + bias.

    Exact rearrangement of the KL (no truncation of p): sum_v p_v log q_v =
    (W^T p) . h + p . bias - logsumexp(W h + bias). Accumulated in float64.
    """
    cross = (expected_unembedding.double() * spliced_final.double()).sum(-1)
    log_normaliser = _logsumexp_float64_sum(spliced_logits)
    return (negentropy_minus_bias.double() - cross + log_normaliser).sum().item()


def kl_div(clean_logits: Float[Tensor, "n v"], spliced_logits: Float[Tensor, "n v"]) -> float:
    """Mean over rows of KL(softmax(clean) || softmax(spliced)) in nats."""
    return kl_div_sum(clean_logits, spliced_logits) / clean_logits.shape[0]


def recovered(ce_clean: float, ce_spliced: float, ce_ablated: float) -> float:
    """(CE_ablated - CE_spliced) / (CE_ablated - CE_clean); NaN when the ablation costs nothing."""
    gap = ce_ablated - ce_clean
    return (ce_ablated - ce_spliced) / gap if gap != 0 else math.nan


def ablation_metrics(ce: dict[str, float], kl: float) -> dict[str, float]:
    """The downstream metric dict from CEs keyed clean/spliced/zero/mean and the mean KL."""
    return {
        "ce_loss_clean": ce["clean"],
        "ce_loss_spliced": ce["spliced"],
        "ce_loss_zero": ce["zero"],
        "ce_loss_mean": ce["mean"],
        "ce_loss_recovered_zero": recovered(ce["clean"], ce["spliced"], ce["zero"]),
        "ce_loss_recovered_mean": recovered(ce["clean"], ce["spliced"], ce["mean"]),
        "kl_div": kl,
    }

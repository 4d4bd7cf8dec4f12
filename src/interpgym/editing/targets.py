"""The two per-fact quantities every locate-then-edit method needs: the key k* and the target delta.

* `average_key`: the MLP key at the subject's last token, averaged over the rewrite
  prompt in several context prefixes (ROME's k*).
* `optimise_delta`: a vector delta added to block `layer`'s MLP output at the subject's
  last token (in every context prefix) and optimised so the model predicts the new
  object (ROME's compute_v / MEMIT's z): mean token NLL of the new object, plus a KL
  term keeping the subject's "{} is a" distribution, plus weight decay, with
  ||delta|| clamped to `clamp` x ||W k*||.

The context prefixes are fixed sentences rather than ROME's sampled model generations,
so every call is deterministic and costs no generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.editing.facts import Fact
from interpgym.editing.model_ops import Prompt, add_to_output, down_proj, encode, keys_at, logits_at, subject_prompt
from interpgym.subjects.lm_loader import LanguageModel

CONTEXTS: tuple[str, ...] = ("", "Here is a fact. ", "I read this in a book. ", "According to the encyclopedia, ",
                             "The following is true. ")
ESSENCE = "{} is a"


@dataclass(frozen=True)
class DeltaConfig:
    """Hyper-parameters of the target optimisation (defaults follow ROME's, adapted to a 135M model)."""

    steps: int = 25
    lr: float = 0.5
    weight_decay: float = 0.01
    kl_factor: float = 0.0625
    clamp: float = 4.0
    stop_nll: float = 0.05


def context_prompts(lm: LanguageModel, fact: Fact) -> list[Prompt]:
    """The rewrite prompt after each context prefix, with its subject-last index."""
    return [subject_prompt(lm, fact.prompt, fact.subject, prefix) for prefix in CONTEXTS]


def average_key(lm: LanguageModel, layer: int, fact: Fact) -> Float[Tensor, " d_ff"]:
    """k*: block `layer`'s MLP key at the subject's last token, averaged over the context prefixes (float64)."""
    return keys_at(lm, layer, context_prompts(lm, fact)).mean(0)


def _target_rows(prompts: list[Prompt], target: list[int]) -> tuple[list[list[int]], list[list[int]]]:
    """Teacher-forced rows (prompt + target[:-1]) and, per row, the positions predicting each target token."""
    rows, positions = [], []
    for p in prompts:
        rows.append(list(p.ids) + target[:-1])
        positions.append(list(range(len(p.ids) - 1, len(p.ids) - 1 + len(target))))
    return rows, positions


def optimise_delta(
    lm: LanguageModel, layer: int, fact: Fact, config: DeltaConfig = DeltaConfig(), seed: int = 0
) -> tuple[Float[Tensor, " d"], dict[str, float]]:
    """The delta added to block `layer`'s MLP output that makes the model say `fact.new_object` (see module docs).

    Cost: up to `config.steps` forward + backward passes over len(CONTEXTS) + 1 short prompts.
    Deterministic: delta starts at zero and Adam has no randomness (`seed` is unused but kept for the API).
    """
    module = down_proj(lm, layer)
    prompts = context_prompts(lm, fact)
    essence = subject_prompt(lm, ESSENCE, fact.subject)
    target = encode(lm, " " + fact.new_object)
    rows, positions = _target_rows(prompts, target)
    rows.append(list(essence.ids))
    subject_rows = list(range(len(rows)))
    subject_pos = [p.subject_last for p in prompts] + [essence.subject_last]
    device = lm.device
    with torch.no_grad():
        base_out = module(keys_at(lm, layer, prompts).mean(0).to(module.weight.dtype))
        essence_logp0 = torch.log_softmax(logits_at(lm, [essence.ids], [[len(essence.ids) - 1]])[0][0].float(), -1)
    limit = config.clamp * base_out.norm()
    delta = torch.zeros(lm.d_model, device=device, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=config.lr)
    target_t = torch.tensor(target, device=device)
    nll = torch.tensor(float("inf"))
    step = 0
    for step in range(1, config.steps + 1):  # noqa: B007 (the last step taken is reported below)
        optimiser.zero_grad()
        with add_to_output(module, subject_rows, subject_pos, delta):
            logits = logits_at(lm, rows, positions + [[len(essence.ids) - 1]])
        nll = torch.stack([-torch.log_softmax(lg.float(), -1)[torch.arange(len(target)), target_t].mean() for lg in logits[:-1]]).mean()
        essence_logp = torch.log_softmax(logits[-1][0].float(), -1)
        kl = torch.nn.functional.kl_div(essence_logp, essence_logp0, log_target=True, reduction="sum")
        loss = nll + config.kl_factor * kl + config.weight_decay * delta.norm() ** 2 / base_out.norm() ** 2
        if nll.item() < config.stop_nll:
            break
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            if delta.norm() > limit:
                delta.mul_(limit / delta.norm())
    return delta.detach(), {
        "nll": float(nll.detach()),
        "steps": step,
        "delta_norm": float(delta.detach().norm()),
        "value_norm": float(base_out.norm()),
    }

"""What directional ablation of a concept direction does: detection AUROC downstream and the model's behaviour.

With the direction projected out of the residual stream entering every block from
`layer` on (`steering.ablation`), a fresh difference-of-means probe is fit and scored
(ID test AUROC) at a later `read_layer`, clean vs ablated; and the model's next-token
distribution at the last token of the concept's positive test texts changes by a mean
KL(clean || ablated). A random direction of the same layer is the control.

Cost: four activation passes to `read_layer` over the concept's train and test texts
and two full forward passes over its positive test texts.
"""

from __future__ import annotations

import torch

from interpgym.probing import methods as M
from interpgym.probing.activations import check_layer, pooled_activations
from interpgym.probing.metrics import auroc
from interpgym.probing.steering import ablation


@torch.no_grad()
def _last_token_logprobs(model, tokenizer, texts) -> torch.Tensor:
    out = []
    for text in texts:
        enc = tokenizer([text], return_tensors="pt").to(next(model.parameters()).device)
        out.append(torch.log_softmax(model(**enc).logits[0, -1].float(), -1).cpu())
    return torch.stack(out)


def _probe_auroc(model, tokenizer, concept, read_layer: int) -> float:
    acts = {s: pooled_activations(model, tokenizer, concept.splits[s].texts, read_layer)["mean"] for s in ("train", "test")}
    probe = M.diff_means(acts["train"], torch.tensor(concept.splits["train"].labels))
    return auroc(probe.score(acts["test"]).numpy(), concept.splits["test"].labels)


def ablation_effect(model, tokenizer, concept, direction: torch.Tensor, layer: int, read_layer: int, seed: int = 0) -> dict:
    """{"auroc_clean", "auroc_ablated", "auroc_ablated_random", "kl_ablated", "kl_ablated_random"} (see the module docstring)."""
    check_layer(model, layer)
    check_layer(model, read_layer)
    random = torch.randn(direction.numel(), generator=torch.Generator().manual_seed(seed))
    positives = concept.splits["test"].positives
    clean_lp = _last_token_logprobs(model, tokenizer, positives)
    out = {"auroc_clean": _probe_auroc(model, tokenizer, concept, read_layer)}
    for tag, vector in (("", direction), ("_random", random)):
        with ablation(model, vector, layer):
            out[f"auroc_ablated{tag}"] = _probe_auroc(model, tokenizer, concept, read_layer)
            lp = _last_token_logprobs(model, tokenizer, positives)
        out[f"kl_ablated{tag}"] = float((clean_lp.exp() * (clean_lp - lp)).sum(-1).mean())
    return out

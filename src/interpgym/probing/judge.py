"""The offline steering judge: concept, instruction relevance and fluency, each 0..2, combined by harmonic mean.

Independent of the steered model's activations (MiniLM embeddings and the *unsteered*
model's loss), deterministic on CPU, free. Scores per response:

* concept = 2 * clip((p - 0.2) / 0.6, 0, 1), with p the probability that the response
  expresses the concept under a logistic regression on MiniLM embeddings fit on the
  concept's held-out `test` texts (its AUROC on the `ood` texts is reported: the judge's own accuracy);
* relevance = 2 * clip((c - c_shuffled) / (c_matched - c_shuffled), 0, 1), with c the
  MiniLM cosine of response and instruction, c_matched the median cosine of the
  unsteered model's responses to their own instructions and c_shuffled the median to
  other instructions (shuffled pairs): 2 = as on-topic as the model unsteered, 0 = no
  better than a random instruction;
* fluency = 2 * clip((L_bad - L) / (L_bad - L_natural), 0, 1), with L the unsteered
  model's mean per-token loss of the response after its prompt, L_natural the median
  loss of natural held-out concept texts after the same prompts and L_bad that of the
  same texts with their words shuffled;
* harmonic mean of the three, 0 if any is 0 (AxBench's aggregation).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from interpgym.probing.concepts import load_concept
from interpgym.probing.metrics import auroc
from interpgym.probing.steering import format_prompt
from interpgym.probing.text_embedding import cached_embed, embed


def harmonic(scores: Sequence[float]) -> float:
    """Harmonic mean of non-negative scores; 0 if any is 0."""
    if any(s <= 0 for s in scores):
        return 0.0
    return len(scores) / sum(1.0 / s for s in scores)


def _clip2(x: float) -> float:
    return float(2.0 * min(1.0, max(0.0, x)))


@torch.no_grad()
def response_losses(model, tokenizer, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:  # noqa: ANN001
    """Mean next-token loss of each response's tokens after its prompt (inf for an empty response)."""
    device = next(model.parameters()).device
    out = []
    for prompt, response in zip(prompts, responses, strict=True):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"]
        if not r:
            out.append(float("inf"))
            continue
        ids = torch.tensor([p + r], device=device)
        logits = model(input_ids=ids).logits[0, len(p) - 1 : -1].float()
        out.append(float(torch.nn.functional.cross_entropy(logits, ids[0, len(p) :])))
    return out


@dataclass
class OfflineJudge:
    """Calibrated once per (model, concepts, instructions); `score` judges a batch of responses."""

    model: torch.nn.Module
    tokenizer: object
    classifiers: dict[str, LogisticRegression] = field(default_factory=dict)
    classifier_auroc: dict[str, float] = field(default_factory=dict)
    loss_natural: float = 0.0
    loss_bad: float = 0.0
    cos_matched: float = 0.0
    cos_shuffled: float = 0.0

    @classmethod
    def build(cls, model, tokenizer, concepts: Sequence[str], instructions: Sequence[str], unsteered: Sequence[str], seed: int = 0) -> OfflineJudge:  # noqa: ANN001
        judge = cls(model, tokenizer)
        for name in concepts:
            concept = load_concept(name, seed)
            x_fit = cached_embed(concept.splits["test"].texts).numpy()
            clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x_fit, concept.splits["test"].labels)
            x_ood = cached_embed(concept.splits["ood"].texts).numpy()
            judge.classifiers[name] = clf
            judge.classifier_auroc[name] = auroc(clf.decision_function(x_ood), np.asarray(concept.splits["ood"].labels))
        rng = random.Random(seed)
        natural = [t for name in concepts for t in load_concept(name, seed).splits["test"].texts[:4]][:24]
        shuffled = []
        for text in natural:
            words = text.split()
            rng.shuffle(words)
            shuffled.append(" ".join(words))
        prompts = [format_prompt(tokenizer, instructions[i % len(instructions)]) for i in range(len(natural))]
        judge.loss_natural = statistics.median(response_losses(model, tokenizer, prompts, natural))
        judge.loss_bad = statistics.median(response_losses(model, tokenizer, prompts, shuffled))
        e_resp, e_inst = embed(list(unsteered)), embed(list(instructions))
        cos = (e_resp @ e_inst.T).numpy()
        n = len(instructions)
        judge.cos_matched = float(np.median(np.diag(cos)))
        judge.cos_shuffled = float(np.median(cos[~np.eye(n, dtype=bool)])) if n > 1 else 0.0
        return judge

    def score(self, concept: str, instructions: Sequence[str], responses: Sequence[str]) -> list[dict[str, float]]:
        """Per response: {"concept", "instruction", "fluency", "harmonic"} (each 0..2)."""
        e_resp = embed(list(responses))
        p = self.classifiers[concept].predict_proba(e_resp.numpy())[:, 1]
        cos = (e_resp * embed(list(instructions))).sum(-1).numpy()
        prompts = [format_prompt(self.tokenizer, i) for i in instructions]
        losses = response_losses(self.model, self.tokenizer, prompts, responses)
        span_rel = max(self.cos_matched - self.cos_shuffled, 1e-6)
        span_flu = max(self.loss_bad - self.loss_natural, 1e-6)
        out = []
        for pi, ci, li, text in zip(p, cos, losses, responses, strict=True):
            empty = not text.strip()
            s = {"concept": 0.0 if empty else _clip2((pi - 0.2) / 0.6),
                 "instruction": 0.0 if empty else _clip2((ci - self.cos_shuffled) / span_rel),
                 "fluency": 0.0 if empty or not np.isfinite(li) else _clip2((self.loss_bad - li) / span_flu)}
            s["harmonic"] = harmonic([s["concept"], s["instruction"], s["fluency"]])
            out.append(s)
        return out

    def calibration(self) -> dict:
        return {"loss_natural": self.loss_natural, "loss_bad": self.loss_bad, "cos_matched": self.cos_matched,
                "cos_shuffled": self.cos_shuffled, "concept_classifier_auroc_ood": dict(self.classifier_auroc)}

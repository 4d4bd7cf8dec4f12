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
* fluency = 2 * min(loss part, repetition part), each clipped to 0..1:
  - loss part = (L_bad - L) / (L_bad - L_natural), with L the unsteered model's mean
    per-token loss of the response after its prompt, L_natural the median loss of
    natural held-out concept texts after the same prompts and L_bad that of the same
    texts with their words shuffled (word salad);
  - repetition part = (R_bad - R) / (R_bad - R_natural), with R = seq-rep-3 of the
    response (`seq_rep`: the fraction of its word trigrams that repeat an earlier one,
    Welleck et al. 2020), R_natural the median over the natural texts and R_bad the
    median over the same texts made degenerate (their first 1-3 words looped to the
    same length, as "and and and ..." or "moment and moment and ...").
  The loss alone cannot judge fluency: a language model predicts a repeated phrase
  better each time it repeats (in-context copying), so degenerate loops get a *low*
  loss; the repetition part catches them, the loss part catches word salad;
* harmonic mean of the three, 0 if any is 0 (AxBench's aggregation).
"""

from __future__ import annotations

import random
import re
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

_WORD = re.compile(r"\w+|[^\w\s]")


def harmonic(scores: Sequence[float]) -> float:
    """Harmonic mean of non-negative scores; 0 if any is 0."""
    if any(s <= 0 for s in scores):
        return 0.0
    return len(scores) / sum(1.0 / s for s in scores)


def _clip2(x: float) -> float:
    return float(2.0 * min(1.0, max(0.0, x)))


def seq_rep(text: str, n: int = 3) -> float:
    """seq-rep-n: the fraction of the text's word n-grams (lower-cased words and punctuation marks) that repeat an
    earlier n-gram of the same text, 1 - unique / total (Welleck et al. 2020); 0 for fewer than n + 1 words."""
    words = _WORD.findall(text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def word_salad(texts: Sequence[str], seed: int) -> list[str]:
    """Each text with its words shuffled (seeded): grammatical nonsense made of natural words."""
    rng = random.Random(f"salad:{seed}")
    out = []
    for text in texts:
        words = text.split()
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def degenerate_loops(texts: Sequence[str]) -> list[str]:
    """Each text replaced by its first k words (k = 1, 2, 3 in turn) repeated to the text's word count: the loops
    that an over-steered model produces ("and and and ...", "moment and moment and ...")."""
    out = []
    for i, text in enumerate(texts):
        words = text.split()
        k = min(len(words), 1 + i % 3)
        out.append(" ".join(words[j % k] for j in range(len(words))) if words else "")
    return out


@dataclass(frozen=True)
class FluencyCalibration:
    """Reference points of the fluency score: natural text sits at (loss_natural, rep_natural), word salad at
    loss_bad, degenerate loops at rep_bad."""

    loss_natural: float
    loss_bad: float
    rep_natural: float
    rep_bad: float

    def score(self, loss: float, rep: float) -> float:
        """2 * min(loss part, repetition part), each clip(., 0, 1): 2 for natural text, 0 for word salad
        (loss >= loss_bad) or a degenerate loop (rep >= rep_bad), linear in between; 0 for an infinite loss."""
        if not np.isfinite(loss):
            return 0.0
        loss_part = (self.loss_bad - loss) / max(self.loss_bad - self.loss_natural, 1e-6)
        rep_part = (self.rep_bad - rep) / max(self.rep_bad - self.rep_natural, 1e-6)
        return _clip2(min(loss_part, rep_part))


@torch.no_grad()
def response_losses(model, tokenizer, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> list[float]:
    """Mean next-token loss of each response's tokens after its prompt (inf for an empty response).

    Batched (right-padded with an attention mask); cost: one forward pass of prompt + response per text.
    """
    device = next(model.parameters()).device
    seqs = []
    for prompt, response in zip(prompts, responses, strict=True):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"]
        seqs.append((p, r))
    out = [float("inf")] * len(seqs)
    todo = [i for i, (_, r) in enumerate(seqs) if r]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(todo), batch_size):
        rows = todo[start : start + batch_size]
        width = max(len(seqs[i][0]) + len(seqs[i][1]) for i in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            full = seqs[i][0] + seqs[i][1]
            ids[j, : len(full)] = torch.tensor(full)
            mask[j, : len(full)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        for j, i in enumerate(rows):
            p, r = seqs[i]
            pred = logits[j, len(p) - 1 : len(p) + len(r) - 1]
            out[i] = float(torch.nn.functional.cross_entropy(pred, torch.tensor(r, device=pred.device)))
    return out


@dataclass
class OfflineJudge:
    """Calibrated once per (model, concepts, instructions); `score` judges a batch of responses."""

    model: torch.nn.Module
    tokenizer: object
    classifiers: dict[str, LogisticRegression] = field(default_factory=dict)
    classifier_auroc: dict[str, float] = field(default_factory=dict)
    fluency: FluencyCalibration = FluencyCalibration(0.0, 1.0, 0.0, 1.0)
    cos_matched: float = 0.0
    cos_shuffled: float = 0.0

    @classmethod
    def build(
        cls, model, tokenizer, concepts: Sequence[str], instructions: Sequence[str], unsteered: Sequence[str], seed: int = 0
    ) -> OfflineJudge:
        judge = cls(model, tokenizer)
        for name in concepts:
            concept = load_concept(name, seed)
            x_fit = cached_embed(concept.splits["test"].texts).numpy()
            clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x_fit, concept.splits["test"].labels)
            x_ood = cached_embed(concept.splits["ood"].texts).numpy()
            judge.classifiers[name] = clf
            judge.classifier_auroc[name] = auroc(clf.decision_function(x_ood), np.asarray(concept.splits["ood"].labels))
        natural = fluency_reference_texts(concepts, seed)
        prompts = [format_prompt(tokenizer, instructions[i % len(instructions)]) for i in range(len(natural))]
        loops = degenerate_loops(natural)
        judge.fluency = FluencyCalibration(
            loss_natural=statistics.median(response_losses(model, tokenizer, prompts, natural)),
            loss_bad=statistics.median(response_losses(model, tokenizer, prompts, word_salad(natural, seed))),
            rep_natural=statistics.median(seq_rep(t) for t in natural),
            rep_bad=statistics.median(seq_rep(t) for t in loops))
        e_resp, e_inst = embed(list(unsteered)), embed(list(instructions))
        cos = (e_resp @ e_inst.T).numpy()
        n = len(instructions)
        judge.cos_matched = float(np.median(np.diag(cos)))
        judge.cos_shuffled = float(np.median(cos[~np.eye(n, dtype=bool)])) if n > 1 else 0.0
        return judge

    def fluency_scores(self, instructions: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Fluency (0..2) of each response to its instruction, as documented in the module docstring."""
        prompts = [format_prompt(self.tokenizer, i) for i in instructions]
        losses = response_losses(self.model, self.tokenizer, prompts, responses)
        return [0.0 if not t.strip() else self.fluency.score(li, seq_rep(t)) for li, t in zip(losses, responses, strict=True)]

    def score(self, concept: str, instructions: Sequence[str], responses: Sequence[str]) -> list[dict[str, float]]:
        """Per response: {"concept", "instruction", "fluency", "harmonic"} (each 0..2)."""
        e_resp = embed(list(responses))
        p = self.classifiers[concept].predict_proba(e_resp.numpy())[:, 1]
        cos = (e_resp * embed(list(instructions))).sum(-1).numpy()
        fluency = self.fluency_scores(instructions, responses)
        span_rel = max(self.cos_matched - self.cos_shuffled, 1e-6)
        out = []
        for pi, ci, fi, text in zip(p, cos, fluency, responses, strict=True):
            empty = not text.strip()
            s = {"concept": 0.0 if empty else _clip2((pi - 0.2) / 0.6),
                 "instruction": 0.0 if empty else _clip2((ci - self.cos_shuffled) / span_rel),
                 "fluency": fi}
            s["harmonic"] = harmonic([s["concept"], s["instruction"], s["fluency"]])
            out.append(s)
        return out

    def calibration(self) -> dict:
        return {"loss_natural": self.fluency.loss_natural, "loss_bad": self.fluency.loss_bad,
                "rep_natural": self.fluency.rep_natural, "rep_bad": self.fluency.rep_bad,
                "cos_matched": self.cos_matched, "cos_shuffled": self.cos_shuffled,
                "concept_classifier_auroc_ood": dict(self.classifier_auroc)}


def fluency_reference_texts(concepts: Sequence[str], seed: int, offset: int = 0, count: int = 24) -> list[str]:
    """Natural reference texts for the fluency calibration: texts `offset..offset+4` of each concept's `test` split
    (two positives and two negatives, interleaved), in concept order, at most `count`. `offset=4` gives texts
    disjoint from the calibration's own (offset 0)."""
    return [t for name in concepts for t in load_concept(name, seed).splits["test"].texts[offset : offset + 4]][:count]

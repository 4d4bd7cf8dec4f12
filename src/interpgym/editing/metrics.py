"""CounterFact's metrics, generation-based efficacy, retention, fluency and perplexity change.

Teacher-forced scores compare the mean per-token log-probability of the new object
o* and the true object o (CounterFact's convention; P below is exp of that mean):

* efficacy ES = mean [P(o* | rewrite) > P(o | rewrite)], EM = mean P(o*) - P(o);
* paraphrase PS / PM: the same over the held-out paraphrase prompts (mean per fact);
* neighbourhood NS = mean [P(o | neighbour) > P(o* | neighbour)], NM = mean P(o) - P(o*):
  other subjects whose true object is o must keep it;
* S = harmonic mean of ES, PS, NS.

What teacher forcing cannot see:

* `gen_efficacy`: the greedy continuation (no teacher forcing) of the rewrite and
  paraphrase prompts names o* (case-insensitive substring), mean per fact;
* `gen_neighbour_kept`: the greedy continuation of neighbour prompts still names o;
* `entropy`: CounterFact's fluency, the weighted n-gram entropy (2/3 bigram + 4/3
  trigram) of greedy generations from the generation prompts;
* `retention`: over a fixed set of *unedited* known facts, the fraction whose true
  object is still the top-ranked among their relation's objects;
* `ppl_change`: held-out text perplexity after / before - 1 (val plays of the corpus).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interpgym.editing.covariance import corpus_windows
from interpgym.editing.facts import RELATION_BY_NAME, Fact, rank_objects
from interpgym.editing.model_ops import continuation_logprobs, encode, fill, forward_logits, greedy_generate
from interpgym.subjects.lm_loader import LanguageModel

METRIC_KEYS = ("es", "ps", "ns", "s", "em", "pm", "nm", "gen_efficacy", "retention", "ppl_change", "entropy")


def harmonic_mean(values: Sequence[float]) -> float:
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


@dataclass(frozen=True)
class EvalConfig:
    """How much of each metric to compute (generation is the slow part)."""

    gen_tokens: int = 8  # greedy tokens for generation efficacy
    fluency_tokens: int = 30  # greedy tokens per generation prompt for the n-gram entropy
    fluency_facts: int = 10  # facts whose generation prompts are used for the entropy
    generation: bool = True


def _mean_token_logp(lm: LanguageModel, prompts: list[str], objects: list[str]) -> np.ndarray:
    ids_p = [encode(lm, p) for p in prompts]
    ids_o = [encode(lm, " " + o) for o in objects]
    total, lengths = continuation_logprobs(lm, ids_p, ids_o)
    return (total / lengths).numpy()


def counterfact_scores(lm: LanguageModel, facts: list[Fact]) -> dict[str, float]:
    """ES, EM, PS, PM, NS, NM and S over `facts` (teacher-forced). Cost: 2 x (1 + paraphrases + neighbours) short passes per fact."""
    prompts, objects, owner, kind = [], [], [], []
    for i, f in enumerate(facts):
        groups = [("rewrite", [fill(f.prompt, f.subject)]), ("paraphrase", [fill(p, f.subject) for p in f.paraphrases]),
                  ("neighbour", list(f.neighbourhood))]
        for name, texts in groups:
            for text in texts:
                for obj in (f.new_object, f.true_object):
                    prompts.append(text)
                    objects.append(obj)
                    owner.append(i)
                    kind.append(name)
    logp = _mean_token_logp(lm, prompts, objects)
    new, true = logp[0::2], logp[1::2]
    owner_arr, kind_arr = np.asarray(owner[0::2]), np.asarray(kind[0::2])
    out = {}
    for name, short in (("rewrite", "e"), ("paraphrase", "p"), ("neighbour", "n")):
        success, margin = [], []
        for i in range(len(facts)):
            sel = (owner_arr == i) & (kind_arr == name)
            if name == "neighbour":
                success.append(float(np.mean(true[sel] > new[sel])))
                margin.append(float(np.mean(np.exp(true[sel]) - np.exp(new[sel]))))
            else:
                success.append(float(np.mean(new[sel] > true[sel])))
                margin.append(float(np.mean(np.exp(new[sel]) - np.exp(true[sel]))))
        out[f"{short}s"] = float(np.mean(success))
        out[f"{short}m"] = float(np.mean(margin))
    out["s"] = harmonic_mean([out["es"], out["ps"], out["ns"]])
    return out


def generation_efficacy(lm: LanguageModel, facts: list[Fact], tokens: int) -> dict[str, float]:
    """Greedy generation names o* after rewrite/paraphrase prompts, and o after neighbour prompts (means per fact)."""
    named, kept = [], []
    for f in facts:
        texts = [fill(f.prompt, f.subject)] + [fill(p, f.subject) for p in f.paraphrases]
        named.append(np.mean([f.new_object.lower() in greedy_generate(lm, t, tokens).lower() for t in texts]))
        kept.append(np.mean([f.true_object.lower() in greedy_generate(lm, t, tokens).lower() for t in f.neighbourhood[:2]]))
    return {"gen_efficacy": float(np.mean(named)), "gen_neighbour_kept": float(np.mean(kept))}


def ngram_entropy(text: str, n: int) -> float:
    """Entropy (bits) of the n-gram distribution of `text`'s whitespace tokens (0 for fewer than n tokens)."""
    words = text.split()
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    total = sum(grams.values())
    return -sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0


def fluency_entropy(lm: LanguageModel, facts: list[Fact], tokens: int) -> float:
    """CounterFact's generation entropy: mean over prompts of (2/3 H2 + 4/3 H3) / 2 of greedy generations."""
    scores = []
    for f in facts:
        for template in f.generation:
            text = greedy_generate(lm, fill(template, f.subject), tokens)
            scores.append((2 / 3 * ngram_entropy(text, 2) + 4 / 3 * ngram_entropy(text, 3)) / 2)
    return float(np.mean(scores)) if scores else float("nan")


def retention(lm: LanguageModel, facts: list[Fact]) -> float:
    """Fraction of (unedited, known) `facts` whose true object is still top-ranked among the relation's objects."""
    if not facts:
        return float("nan")
    kept = []
    for name in sorted({f.relation for f in facts}):
        group = [f for f in facts if f.relation == name]
        objects = sorted({o for _, o in RELATION_BY_NAME[name].pairs})
        table = rank_objects(lm, RELATION_BY_NAME[name], [f.subject for f in group], objects)
        kept.extend(objects[int(table[i].argmax())] == f.true_object for i, f in enumerate(group))
    return float(np.mean(kept))


class HeldOutText:
    """Fixed windows of held-out text (the corpus's val plays) for perplexity."""

    def __init__(self, lm: LanguageModel, windows: int = 8, context: int = 64) -> None:
        self.rows = corpus_windows(lm, windows * context, context, seed=0, split="val").tolist()

    @torch.no_grad()
    def perplexity(self, lm: LanguageModel) -> float:
        logits = forward_logits(lm, self.rows).float()
        ids = torch.tensor(self.rows, device=logits.device)
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        return float(nll.exp())


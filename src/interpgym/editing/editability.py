"""Editability of a small LM trained from scratch (`interpgym.subjects.fact_lm`): a fixed ROME editor, scored.

`edit_requests` turns facts of the synthetic world into CounterFact-style `Fact`s: the
rewrite prompt is template 0, the paraphrases templates 1 and 2, the generation prompt
template 3, the counterfactual object is drawn (seeded) from the relation's other
objects, and the neighbourhood is five other people with the same relation and true
object (in the rewrite template).

`editability` edits each request alone into the model with `fixed_editor` (ROME at
the model's declared edit layer, the default target optimisation, a covariance over
`COV_TOKENS` Shakespeare train tokens), scores CounterFact's metrics and generation
efficacy, restores the weights, and returns the means (S = harmonic mean of the mean ES,
PS and NS, as in `runner`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from interpgym.editing.facts import Fact
from interpgym.editing.methods import EditConfig, Editor, Snapshot
from interpgym.editing.metrics import counterfact_scores, generation_efficacy, harmonic_mean
from interpgym.subjects.fact_lm import WorldFact, fact_world
from interpgym.subjects.lm_loader import LanguageModel

N_NEIGHBOURS = 5
COV_TOKENS = 16384
GEN_TOKENS = 3


def fixed_editor(edit_layer: int) -> EditConfig:
    """The editor every recipe is scored with: ROME at `edit_layer`, default target optimisation."""
    return EditConfig(method="rome", layers=(edit_layer,), cov_tokens=COV_TOKENS)


def edit_requests(facts: list[WorldFact], seed: int) -> list[Fact]:
    """CounterFact-style requests for `facts` (see module docs); the counterfactual objects are drawn with `seed`."""
    rng = np.random.default_rng(seed)
    world = fact_world()
    out = []
    for f in facts:
        r = f.relation
        others = [o for o in r.objects if o != f.obj]
        peers = [w.subject for w in world.facts if w.relation == r and w.obj == f.obj and w.subject != f.subject]
        chosen = sorted(rng.choice(len(peers), N_NEIGHBOURS, replace=False))
        out.append(Fact(r.name, f.subject, r.templates[0], f.obj, others[int(rng.integers(len(others)))], r.templates[1:3],
                        tuple(r.templates[0].format(peers[i]) for i in chosen), r.templates[3:]))
    return out


def editability(lm: LanguageModel, requests: list[Fact], edit_layer: int) -> dict[str, Any]:
    """Edit each request alone with the fixed editor and score it (see module docs); the model is restored after each."""
    editor = Editor(lm, fixed_editor(edit_layer), progress=False)
    editor.prepare()
    snapshot = Snapshot(lm, (edit_layer,))
    rows, seconds = [], []
    try:
        for fact in requests:
            started = time.perf_counter()
            editor.edit([fact])
            seconds.append(time.perf_counter() - started)
            with torch.no_grad():
                rows.append({**counterfact_scores(lm, [fact]), **generation_efficacy(lm, [fact], GEN_TOKENS)})
            snapshot.restore()
    finally:
        snapshot.restore()
    metrics = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    metrics["s"] = harmonic_mean([metrics["es"], metrics["ps"], metrics["ns"]])
    metrics["edit_s_mean"] = float(np.mean(seconds))
    return metrics

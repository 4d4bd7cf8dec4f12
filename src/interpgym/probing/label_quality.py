"""Label quality of a concept dataset, judged without the LM under study.

A logistic regression on MiniLM sentence embeddings is fit on the `train` split and
scored (AUROC) on `test` and on `ood`. A low ID AUROC means the labels are noisy or the
concept is not expressed in the text; a low OOD AUROC means the OOD family shifts the
concept's surface form a lot (which is the point of the split, within reason).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from interpgym.probing.concepts import Concept
from interpgym.probing.metrics import auroc
from interpgym.probing.text_embedding import cached_embed


def label_quality(concept: Concept, seed: int = 0) -> dict[str, float]:
    """{"auroc_test": .., "auroc_ood": ..} of the MiniLM classifier trained on `train`."""
    emb = {s: cached_embed(concept.splits[s].texts).numpy() for s in ("train", "test", "ood")}
    labels = {s: np.asarray(concept.splits[s].labels) for s in emb}
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(emb["train"], labels["train"])
    return {f"auroc_{s}": auroc(clf.decision_function(emb[s]), labels[s]) for s in ("test", "ood")}

"""Detection metrics: AUROC with a bootstrap interval, and AUPRC with positives made rare (1:100)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from interpgym.core.errors import UserError


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be equal-length vectors")
    if len(np.unique(labels)) < 2:
        raise UserError("a split has only one class: detection metrics need positives and negatives")
    if not np.isfinite(scores).all():
        raise UserError("scores contain NaN or inf")
    return scores, labels


def auroc(scores, labels) -> float:  # noqa: ANN001
    """Area under the ROC curve (ties count half)."""
    scores, labels = _check(scores, labels)
    return float(roc_auc_score(labels, scores))


def auroc_ci(scores, labels, *, seed: int = 0, n_boot: int = 1000, level: float = 0.95) -> tuple[float, float]:  # noqa: ANN001
    """Percentile bootstrap interval of the AUROC, resampling positives and negatives separately (stratified)."""
    scores, labels = _check(scores, labels)
    rng = np.random.default_rng(seed)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pi = rng.integers(0, len(pos), size=(n_boot, len(pos)))
    ni = rng.integers(0, len(neg), size=(n_boot, len(neg)))
    # AUROC = P(pos > neg) + 0.5 P(tie), computed from ranks for all resamples at once
    values = np.empty(n_boot)
    for b in range(n_boot):
        p, n = pos[pi[b]], neg[ni[b]]
        n_sorted = np.sort(n)
        below = np.searchsorted(n_sorted, p, side="left")
        ties = np.searchsorted(n_sorted, p, side="right") - below
        values[b] = (below + 0.5 * ties).sum() / (len(p) * len(n))
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def auprc_imbalanced(scores, labels, *, ratio: int = 100, seed: int = 0, draws: int = 200) -> float:  # noqa: ANN001
    """Mean average precision when positives are rare: each draw keeps all negatives and
    max(1, n_neg // ratio) positives sampled without replacement; averaged over `draws` draws."""
    scores, labels = _check(scores, labels)
    rng = np.random.default_rng(seed)
    pos, neg = scores[labels == 1], scores[labels == 0]
    k = max(1, len(neg) // ratio)
    y = np.r_[np.ones(k), np.zeros(len(neg))]
    values = [average_precision_score(y, np.r_[rng.choice(pos, size=k, replace=False), neg]) for _ in range(draws)]
    return float(np.mean(values))

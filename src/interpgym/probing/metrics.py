"""Detection metrics: AUROC with a bootstrap interval, and AUPRC with positives made rare (1:100)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

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


def auroc(scores, labels) -> float:
    """Area under the ROC curve (ties count half)."""
    scores, labels = _check(scores, labels)
    return float(roc_auc_score(labels, scores))


def _resample_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """[n_boot, n]: how often each of n items is drawn in each of n_boot resamples of size n with replacement."""
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.repeat(np.arange(n_boot), n), rng.integers(0, n, size=n_boot * n)), 1.0)
    return counts


def auroc_ci(scores, labels, *, seed: int = 0, n_boot: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUROC, resampling positives and negatives separately (stratified).

    Cost: one P x N comparison matrix and one einsum over all resamples, O(n_boot x P x N) flops.
    """
    scores, labels = _check(scores, labels)
    rng = np.random.default_rng(seed)
    pos, neg = scores[labels == 1], scores[labels == 0]
    # AUROC of a resample = a^T H b / (P N): H[i, j] = 1 if pos_i > neg_j, 1/2 on ties; a, b = resampling counts
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    counts_pos = _resample_counts(rng, len(pos), n_boot)
    counts_neg = _resample_counts(rng, len(neg), n_boot)
    values = np.einsum("bp,pn,bn->b", counts_pos, wins, counts_neg) / (len(pos) * len(neg))
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def average_precision(pos: np.ndarray, neg_sorted: np.ndarray) -> np.ndarray:
    """Average precision of each row of positives `pos` [draws, k] against all negatives (`neg_sorted`, ascending).

    AP = (1/k) sum_i TP(>= s_i) / (TP(>= s_i) + FP(>= s_i)): sklearn's step-wise
    `average_precision_score`, ties included (tied items share one threshold).
    """
    true_pos = (pos[:, None, :] >= pos[:, :, None]).sum(-1)
    false_pos = len(neg_sorted) - np.searchsorted(neg_sorted, pos, side="left")
    return (true_pos / (true_pos + false_pos)).mean(-1)


def auprc_imbalanced(scores, labels, *, ratio: int = 100, seed: int = 0, draws: int = 200) -> float:
    """Mean average precision when positives are rare: each draw keeps all negatives and
    max(1, n_neg // ratio) positives sampled without replacement; averaged over `draws` draws."""
    scores, labels = _check(scores, labels)
    rng = np.random.default_rng(seed)
    pos, neg = scores[labels == 1], scores[labels == 0]
    k = max(1, len(neg) // ratio)
    chosen = np.stack([rng.choice(pos, size=k, replace=False) for _ in range(draws)])
    return float(average_precision(chosen, np.sort(neg)).mean())

"""SAE metrics as pure functions of tensors. Definitions (also in `docs/sae.md`):

* `fvu` = E||x - x_hat||^2 / (E||x||^2 - ||E x||^2): squared error over the *total*
  variance of x (summed over dimensions, centred once with the eval-set mean);
  `explained_variance` = 1 - fvu.
* `cosine`: mean over inputs of cos(x, x_hat).
* `relative_reconstruction_bias` = E||x_hat||^2 / E[x . x_hat]: the gamma minimising
  E||x_hat / gamma - x||^2 (Rajamanoharan et al. 2024); < 1 means shrinkage.
* `l0`: mean number of latents > 0 per input; `dead_frac`: latents that never fire on
  the eval set; `dense_frac`: latents firing on more than 10% of eval inputs.
* ground truth: `mcc` = mean |cos| over true features under the Hungarian matching of
  decoder rows to true directions (unmatched true features count 0); `mmcs` = mean
  over true features of the max |cos| with any decoder row; `frac_recovered` =
  fraction of true features whose max |cos| >= 0.9.
* `sparse_probing_k{1,2,5}`: balanced accuracy of a logistic-regression probe on the
  k latents with the largest |class mean difference| on the train split, averaged
  over binary tasks (one per class of each labelled concept; a 0/1 concept is one
  task); `_raw_k{k}` the same on raw dimensions, `_raw_all` on all raw dimensions.
* `monosemanticity`: per alive latent (>= `MIN_FIRES` of its top-`TOP_ACTIVATIONS`
  activations > 0), the lift of its best label: for every label c (the probing tasks'
  positives: value 1 of a 0/1 concept, every class of a multi-class one),
  lift(c) = (p_top(c) - p_base(c)) / (1 - p_base(c)), with p_top(c) the share
  of the latent's firing top activations labelled c and p_base(c) the share of c in
  the eval set; the latent scores max over c of lift(c); mean over latents. The 0 of a 0/1 concept
  is not a label ("not a stage direction" is no concept, and its lift at a 95% base
  rate would be mostly noise of the few rare-label hits).
  1 = the top activations all carry one label, ~0 = they carry labels at base rates
  (a latent firing at random scores slightly above 0, ~1/sqrt(top-N): the same score
  on seeded permuted labels is reported as `monosemanticity_null`). Normalising by
  the base rate makes a pure latent for a rare label (stage directions, 5% of tokens)
  score as high as one for a common label, and a latent at a common label's base rate
  (verse, 60%) score 0, not 0.6.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from scipy.optimize import linear_sum_assignment
from torch import Tensor

DENSE_THRESHOLD = 0.1
RECOVERED_COS = 0.9
PROBE_KS = (1, 2, 5)
MIN_FIRES = 10
TOP_ACTIVATIONS = 50


class ReconstructionStats:
    """Streaming sums for the reconstruction and firing metrics (float64, any number of chunks)."""

    def __init__(self, d_in: int, d_sae: int) -> None:
        self.n = 0
        self.sum_x = torch.zeros(d_in, dtype=torch.float64)
        self.sum_sq_x = 0.0
        self.sum_sq_err = 0.0
        self.sum_cos = 0.0
        self.sum_dot = 0.0
        self.sum_sq_hat = 0.0
        self.sum_l0 = 0.0
        self.fire_counts = torch.zeros(d_sae, dtype=torch.float64)

    @torch.no_grad()
    def add(self, x: Float[Tensor, "b d"], x_hat: Float[Tensor, "b d"], latents: Float[Tensor, "b s"]) -> None:
        x, x_hat = x.double().cpu(), x_hat.double().cpu()
        fired = (latents > 0).cpu()
        self.n += x.shape[0]
        self.sum_x += x.sum(0)
        self.sum_sq_x += x.pow(2).sum().item()
        self.sum_sq_err += (x - x_hat).pow(2).sum().item()
        self.sum_cos += torch.nn.functional.cosine_similarity(x, x_hat, dim=1, eps=1e-12).sum().item()
        self.sum_dot += (x * x_hat).sum().item()
        self.sum_sq_hat += x_hat.pow(2).sum().item()
        self.sum_l0 += fired.sum().item()
        self.fire_counts += fired.sum(0).double()

    def metrics(self) -> dict[str, float]:
        n = max(self.n, 1)
        total_variance = self.sum_sq_x / n - (self.sum_x / n).pow(2).sum().item()
        fvu = (self.sum_sq_err / n) / total_variance if total_variance > 0 else float("nan")
        frequency = self.fire_counts / n
        return {
            "l0": self.sum_l0 / n,
            "fvu": fvu,
            "explained_variance": 1.0 - fvu,
            "mse": self.sum_sq_err / n,
            "cosine": self.sum_cos / n,
            "relative_reconstruction_bias": self.sum_sq_hat / self.sum_dot if self.sum_dot != 0 else float("nan"),
            "dead_frac": float((self.fire_counts == 0).double().mean()),
            "dense_frac": float((frequency > DENSE_THRESHOLD).double().mean()),
        }


def fvu(x: Float[Tensor, "n d"], x_hat: Float[Tensor, "n d"]) -> float:
    """E||x - x_hat||^2 / (E||x||^2 - ||E x||^2) in float64 (see module docstring)."""
    x, x_hat = x.double(), x_hat.double()
    total_variance = x.pow(2).sum(1).mean() - x.mean(0).pow(2).sum()
    return float((x - x_hat).pow(2).sum(1).mean() / total_variance)


def ground_truth_metrics(decoder: Float[Tensor, "s d"], truth: Float[Tensor, "t d"]) -> dict[str, float]:
    """`mcc`, `mmcs`, `frac_recovered` of decoder rows against true unit directions.

    Cost: one s x t cosine matrix and a Hungarian assignment, O((s + t)^3).
    """
    decoder = decoder.double()
    truth = truth.double()
    cos = (decoder / decoder.norm(dim=1, keepdim=True).clamp_min(1e-12)) @ (truth / truth.norm(dim=1, keepdim=True)).T
    similarity = cos.abs().numpy()
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    best = similarity.max(axis=0)
    return {
        "mcc": float(similarity[rows, cols].sum() / truth.shape[0]),
        "mmcs": float(best.mean()),
        "frac_recovered": float((best >= RECOVERED_COS).mean()),
    }


def binary_tasks(labels: dict[str, Int[Tensor, " n"]]) -> list[tuple[str, str, int]]:
    """(concept, task name, positive value) for every binary task the labels define."""
    tasks = []
    for concept, values in labels.items():
        classes = sorted(int(v) for v in torch.unique(values))
        if len(classes) < 2:
            continue
        positives = [1] if classes == [0, 1] else classes
        tasks.extend((concept, f"{concept}={v}" if len(positives) > 1 else concept, v) for v in positives)
    return tasks


def _probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    probe.fit(train_x.astype(np.float64), train_y)
    return float(balanced_accuracy_score(test_y, probe.predict(test_x.astype(np.float64))))


def _top_by_mean_difference(values: np.ndarray, positive: np.ndarray, k: int) -> np.ndarray:
    # one float64 matrix-vector product instead of copying the rows of each class
    weights = np.where(positive, 1.0 / positive.sum(), -1.0 / (~positive).sum())
    difference = weights @ values if values.dtype == np.float64 else weights @ values.astype(np.float64)
    return np.argsort(-np.abs(difference), kind="stable")[:k]


def _usable_tasks(train_labels: dict[str, Int[Tensor, " n"]], test_labels: dict[str, Int[Tensor, " m"]]):
    """(task, y_train, y_test) for every binary task whose positive class is neither absent nor everything in either split."""
    for concept, task, value in binary_tasks(train_labels):
        y_train = train_labels[concept].numpy() == value
        y_test = test_labels[concept].numpy() == value
        if y_train.all() or not y_train.any() or y_test.all() or not y_test.any():
            continue
        yield task, y_train, y_test


def _top_k_probes(prefix: str, train_x: np.ndarray, y_train: np.ndarray, test_x: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    scores = {}
    for k in PROBE_KS:
        chosen = _top_by_mean_difference(train_x, y_train, min(k, train_x.shape[1]))
        scores[f"{prefix}_k{k}"] = _probe_accuracy(train_x[:, chosen], y_train, test_x[:, chosen], y_test)
    return scores


def raw_probe_scores(
    train_raw: Float[Tensor, "n d"],
    train_labels: dict[str, Int[Tensor, " n"]],
    test_raw: Float[Tensor, "m d"],
    test_labels: dict[str, Int[Tensor, " m"]],
) -> dict[str, dict[str, float]]:
    """Per task, the baselines on raw dimensions: `sparse_probing_raw_k{k}` and `sparse_probing_raw_all`.

    They do not depend on any SAE, so an evaluation may cache them (keyed by the data).
    """
    train_x, test_x = train_raw.double().numpy(), test_raw.double().numpy()
    per_task = {}
    for task, y_train, y_test in _usable_tasks(train_labels, test_labels):
        scores = _top_k_probes("sparse_probing_raw", train_x, y_train, test_x, y_test)
        scores["sparse_probing_raw_all"] = _probe_accuracy(train_x, y_train, test_x, y_test)
        per_task[task] = scores
    return per_task


def sparse_probing(
    train_latents: Float[Tensor, "n s"],
    train_raw: Float[Tensor, "n d"],
    train_labels: dict[str, Int[Tensor, " n"]],
    test_latents: Float[Tensor, "m s"],
    test_raw: Float[Tensor, "m d"],
    test_labels: dict[str, Int[Tensor, " m"]],
    raw_scores: dict[str, dict[str, float]] | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean balanced probe accuracies (see module docstring) and the per-task numbers.

    Latents / dims are chosen on the train split only; accuracy is measured on test.
    Tasks whose positive class is absent from either split are skipped. `raw_scores`
    (from `raw_probe_scores` on the same rows) skips recomputing the raw baselines.
    """
    if raw_scores is None:
        raw_scores = raw_probe_scores(train_raw, train_labels, test_raw, test_labels)
    train_x, test_x = train_latents.double().numpy(), test_latents.double().numpy()
    per_task: dict[str, dict[str, float]] = {}
    for task, y_train, y_test in _usable_tasks(train_labels, test_labels):
        per_task[task] = _top_k_probes("sparse_probing", train_x, y_train, test_x, y_test) | raw_scores[task]
    if not per_task:
        return {}, {}
    keys = next(iter(per_task.values())).keys()
    summary = {key: float(np.mean([scores[key] for scores in per_task.values()])) for key in keys}
    return summary, per_task


class TopActivations:
    """Running top-N activations per latent (values and input indices) over chunks."""

    def __init__(self, d_sae: int, n: int = TOP_ACTIVATIONS) -> None:
        self.n = n
        self.values = torch.empty(0, d_sae)
        self.indices = torch.empty(0, d_sae, dtype=torch.long)

    @torch.no_grad()
    def add(self, latents: Float[Tensor, "b s"], offset: int) -> None:
        latents = latents.cpu().float()
        rows = torch.arange(offset, offset + latents.shape[0]).unsqueeze(1).expand_as(latents)
        values = torch.cat([self.values, latents])
        indices = torch.cat([self.indices, rows])
        keep = min(self.n, values.shape[0])
        top_values, top_rows = values.topk(keep, dim=0)
        self.values = top_values
        self.indices = indices.gather(0, top_rows)


def _best_label_lift(
    top_indices: Int[Tensor, "N latents"], active: Bool[Tensor, "N latents"], labels: dict[str, Int[Tensor, " n"]]
) -> tuple[Tensor, Tensor, Tensor]:
    """Per latent: the best lift over the labels `binary_tasks` defines, and that label's top share and base rate."""
    fires = active.sum(0).double()
    best_lift = torch.full((top_indices.shape[1],), -torch.inf, dtype=torch.float64)
    best_share = torch.zeros_like(best_lift)
    best_base = torch.zeros_like(best_lift)
    for concept, _, value in binary_tasks(labels):
        hits = labels[concept].long() == value
        base = float(hits.double().mean())
        share = (hits[top_indices] & active).sum(0).double() / fires
        lift = (share - base) / (1.0 - base)
        better = lift > best_lift
        best_lift = torch.where(better, lift, best_lift)
        best_share = torch.where(better, share, best_share)
        best_base = torch.where(better, torch.full_like(best_base, base), best_base)
    return best_lift, best_share, best_base


def monosemanticity(top: TopActivations, labels: dict[str, Int[Tensor, " n"]], seed: int = 0) -> dict[str, float]:
    """`monosemanticity` (mean best-label lift, see module docstring), with `monosemanticity_purity`
    (mean top share of each latent's best label), `_chance` (mean base rate of that label),
    `_null` (the score with labels permuted by `seed`) and `_latents` (latents scored).
    Empty when no latent is alive or no concept has two values. Cost: O(top-N x latents x label values)."""
    fires = (top.values > 0).sum(0)
    scored = torch.nonzero(fires >= min(MIN_FIRES, top.n)).flatten()
    labels = {name: values for name, values in labels.items() if torch.unique(values).numel() > 1}
    if scored.numel() == 0 or not labels:
        return {}
    indices = top.indices[:, scored]
    active = torch.arange(indices.shape[0]).unsqueeze(1) < fires[scored].unsqueeze(0)
    lift, share, base = _best_label_lift(indices, active, labels)
    permutation = torch.randperm(next(iter(labels.values())).numel(), generator=torch.Generator().manual_seed(seed))
    null_lift, _, _ = _best_label_lift(indices, active, {name: values[permutation] for name, values in labels.items()})
    return {
        "monosemanticity": float(lift.mean()),
        "monosemanticity_purity": float(share.mean()),
        "monosemanticity_chance": float(base.mean()),
        "monosemanticity_null": float(null_lift.mean()),
        "monosemanticity_latents": float(scored.numel()),
    }

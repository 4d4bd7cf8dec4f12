"""Detection methods: each fits a `Probe` on train activations (rows = texts) of one layer.

A `Probe` scores activations (higher = concept more present) and carries a steering
`direction` in the residual space (unit norm, oriented so positives score higher).
Inputs: `x` [n, d] float32, `y` [n] in {0, 1}, rows interleaved pos0, neg0, pos1, neg1 ...
(the paired order `concepts` produces; `pca` uses the pairs).

| method | fit | direction |
|---|---|---|
| `diff_means` | mean(pos) - mean(neg) | same |
| `logistic` | L2 logistic regression on standardised x, C by 5-fold CV on train | coef / feature std |
| `pca` | first principal component of paired differences pos_i - neg_i, centred (see below), sign by majority of pairs | same |
| `sae_latent` | the SAE latent with the best train AUROC (score = its activation) | its decoder row |
| `sae_ksparse` | logistic regression on the k latents with the largest standardised mean difference | decoder rows x coefficients |
| `random` | a seeded random direction (the baseline) | same |

`pca` centres the differences as repeng's `pca_diff` does: it finds the axis along which the
pairs' contrast *varies* most, so a perfectly constant shift is centred away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.probing.names import parse_names

METHODS: tuple[str, ...] = ("diff_means", "logistic", "pca", "sae_latent", "sae_ksparse", "random")
SAE_METHODS = ("sae_latent", "sae_ksparse")


@dataclass
class Probe:
    """A fitted detector: `score(x)` -> [n] and a unit steering `direction` [d]."""

    method: str
    direction: Float[Tensor, " d"]
    score: Callable[[Tensor], Tensor]
    info: dict


def _unit(v: Tensor) -> Tensor:
    v = v.detach().float().flatten()
    norm = v.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise UserError("the fitted direction is zero or not finite (degenerate data?)")
    return v / norm


def _check_xy(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"x must be [n, d] and y [n] (got {tuple(x.shape)}, {tuple(y.shape)})")
    y = y.long()
    if set(y.unique().tolist()) != {0, 1}:
        raise UserError("training data needs both positives and negatives (one-class or empty dataset)")
    return x.float(), y


def linear_probe(method: str, direction: Tensor, bias: float = 0.0, info: dict | None = None) -> Probe:
    """A probe scoring x @ direction + bias."""
    w = direction.float().flatten()
    return Probe(method, _unit(w), lambda x: x.float() @ w.to(x.device) + bias, info or {})


def diff_means(x: Tensor, y: Tensor) -> Probe:
    x, y = _check_xy(x, y)
    return linear_probe("diff_means", x[y == 1].mean(0) - x[y == 0].mean(0))


def logistic(x: Tensor, y: Tensor, *, seed: int = 0) -> Probe:
    x, y = _check_xy(x, y)
    xn = x.double().numpy()
    mu, sd = xn.mean(0), xn.std(0) + 1e-6
    folds = min(5, int(min((y == 1).sum(), (y == 0).sum())))
    if folds < 2:
        raise UserError("the logistic probe needs >= 2 examples of each class for cross-validation")
    clf = LogisticRegressionCV(Cs=np.logspace(-4, 2, 7), cv=folds, max_iter=2000, random_state=seed, **_lrcv_l2_kwargs())
    clf.fit((xn - mu) / sd, y.numpy())
    coef = clf.coef_[0] / sd
    bias = float(clf.intercept_[0] - (coef * mu).sum())
    c = clf.C_[0] if np.ndim(clf.C_) else clf.C_
    return linear_probe("logistic", torch.from_numpy(coef), bias, {"C": float(c)})


def _lrcv_l2_kwargs() -> dict:
    """Pure-L2, log-loss CV in both the old and the new (>= 1.8) LogisticRegressionCV signatures."""
    import inspect

    # liblinear: several times faster than lbfgs here (docs/probing.md, "Detection"); it also regularises the intercept, mildly
    params = inspect.signature(LogisticRegressionCV.__init__).parameters
    if "use_legacy_attributes" in params:
        return {"l1_ratios": (0.0,), "scoring": "neg_log_loss", "use_legacy_attributes": False, "solver": "liblinear"}
    return {"penalty": "l2", "scoring": "neg_log_loss", "solver": "liblinear"}


def pca_pairs(x: Tensor, y: Tensor) -> Probe:
    x, y = _check_xy(x, y)
    pos, neg = x[y == 1], x[y == 0]
    n = min(len(pos), len(neg))
    diffs = (pos[:n] - neg[:n]).double()
    centred = diffs - diffs.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    v = vt[0]
    proj_pos, proj_neg = pos[:n].double() @ v, neg[:n].double() @ v
    if (proj_pos < proj_neg).float().mean() > (proj_pos > proj_neg).float().mean():
        v = -v
    return linear_probe("pca", v)


def random_direction(d: int, *, seed: int = 0) -> Probe:
    g = torch.Generator().manual_seed(seed)
    return linear_probe("random", torch.randn(d, generator=g))


def sae_latent(x: Tensor, y: Tensor, sae) -> Probe:
    """Best single latent by train AUROC; `sae` is an `interpgym.sae.SparseAutoencoder` on the same layer."""
    x, y = _check_xy(x, y)
    with torch.no_grad():
        codes = sae.encode(x.to(sae.W_dec.device)).cpu()
    labels = y.numpy()
    alive = (codes.abs().sum(0) > 0).nonzero().flatten().tolist()
    if not alive:
        raise UserError("no SAE latent fires on the training texts")
    aucs = [(roc_auc_score(labels, codes[:, j].numpy()), j) for j in alive]
    auc, j = max(aucs)
    decoder = sae.W_dec.detach()[j].cpu()
    return Probe("sae_latent", _unit(decoder), lambda xs: sae.encode(xs.float().to(sae.W_dec.device))[:, j].detach().cpu(),
                 {"latent": j, "train_auroc": float(auc)})


def sae_ksparse(x: Tensor, y: Tensor, sae, *, k: int = 16, seed: int = 0) -> Probe:
    """Logistic probe on the k latents whose standardised mean difference pos - neg is largest in magnitude."""
    x, y = _check_xy(x, y)
    with torch.no_grad():
        codes = sae.encode(x.to(sae.W_dec.device)).cpu().double()
    diff = codes[y == 1].mean(0) - codes[y == 0].mean(0)
    spread = codes.std(0) + 1e-6
    chosen = torch.topk((diff / spread).abs(), min(k, codes.shape[1])).indices
    feats = codes[:, chosen].numpy()
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(feats, y.numpy())
    coef = torch.from_numpy(clf.coef_[0]).float()
    bias = float(clf.intercept_[0])
    decoder = sae.W_dec.detach().cpu()[chosen]
    direction = coef @ decoder

    def score(xs: Tensor) -> Tensor:
        with torch.no_grad():
            c = sae.encode(xs.float().to(sae.W_dec.device)).cpu()[:, chosen]
        return c @ coef + bias

    return Probe("sae_ksparse", _unit(direction), score, {"latents": chosen.tolist()})


def fit(method: str, x: Tensor, y: Tensor, *, seed: int = 0, sae=None) -> Probe:
    """Fit `method` (one of METHODS) on train activations; SAE methods need `sae`."""
    if method == "diff_means":
        return diff_means(x, y)
    if method == "logistic":
        return logistic(x, y, seed=seed)
    if method == "pca":
        return pca_pairs(x, y)
    if method == "random":
        _check_xy(x, y)
        return random_direction(x.shape[1], seed=seed)
    if method in SAE_METHODS:
        if sae is None:
            raise UserError(f"method {method} needs an SAE trained on the same model and layer")
        return sae_latent(x, y, sae) if method == "sae_latent" else sae_ksparse(x, y, sae, seed=seed)
    raise UserError(f"unknown method {method!r}; choose from: {', '.join(METHODS)}")


def parse_methods(spec: str) -> list[str]:
    """`all` or a comma-separated list -> method names (`UserError` on an unknown one)."""
    return parse_names(spec, METHODS, "method", "--methods")

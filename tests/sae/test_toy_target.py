"""The toy target: `topk` at the true mean L0 with the default recipe recovers the true features.

About a minute of CPU (one full default training run), kept in the default run because it is
the SAE family's headline quality check; `batchtopk` and the other
architectures are measured by `benchmarks/sae_toy_targets.py` and the sweep instead.
"""

from __future__ import annotations

import pytest

from interpgym.sae.evaluate import evaluate_sae
from interpgym.sae.runs import SubjectSpec, cached_sae, sae_config_for, train_config_for


def test_topk_at_true_l0_reaches_mcc_090_on_default_toy() -> None:
    spec = SubjectSpec(name="toy")
    toy = spec.load()
    sae_cfg = sae_config_for(toy, "topk", None, None, None)
    assert sae_cfg.k == 5 == toy.true_mean_l0
    loaded = cached_sae(toy, spec, sae_cfg, train_config_for(toy))
    metrics = evaluate_sae(loaded.sae, toy).metrics
    assert metrics["l0"] == pytest.approx(5.0)
    assert metrics["mcc"] >= 0.90, metrics

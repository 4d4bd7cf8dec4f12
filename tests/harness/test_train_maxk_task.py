"""`proofs/train-maxk`: the scorer measures exact accuracy and two fixed proofs itself, and
rejects weights that break the fixed architecture or are not accurate; the starting
solution trains and scores end to end in the sandboxed trial runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from interpgym.harness.task import InvalidSolution
from interpgym.harness.tasks import get_task
from interpgym.harness.tasks.proofs_train_maxk import ARCH, SUBCUBIC
from interpgym.harness.trial import load_artifact
from interpgym.proofs.cubic import cubic
from interpgym.proofs.subcubic import STRATEGIES
from interpgym.subjects.maxk import MaxKWeights, train_maxk


def artifact_of(tmp_path: Path, tensors: dict[str, torch.Tensor]):
    out = tmp_path / "artifact"
    out.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "weights.safetensors"))
    return load_artifact(out)


def test_scorer_computes_the_bounds_itself(tmp_path: Path) -> None:
    task = get_task("proofs/train-maxk")
    w = train_maxk(ARCH, progress=False).weights
    score = task.score(artifact_of(tmp_path, w.as_dict()), "val", 0)
    m = score.metrics
    assert m["exact_accuracy"] >= 0.99
    assert m["cubic_bound"] == cubic(w).bound and m["subcubic_bound"] == STRATEGIES[SUBCUBIC](w).bound
    assert score.value == pytest.approx((m["cubic_normalized"] + m["subcubic_normalized"]) / 2)
    assert 0.5 < score.value <= 1.0


def test_scorer_rejects_wrong_shapes_extra_tensors_and_inaccurate_models(tmp_path: Path) -> None:
    task = get_task("proofs/train-maxk")
    good = MaxKWeights.random(ARCH.vocab, ARCH.k, ARCH.d_model, ARCH.d_head, torch.Generator().manual_seed(0)).as_dict()
    wider = MaxKWeights.random(ARCH.vocab, ARCH.k, 48, 48, torch.Generator().manual_seed(0)).as_dict()
    with pytest.raises(InvalidSolution, match="fixed config"):
        task.score(artifact_of(tmp_path / "a", wider), "val", 0)
    with pytest.raises(InvalidSolution, match="unexpected"):
        task.score(artifact_of(tmp_path / "b", {**good, "extra": torch.zeros(2)}), "val", 0)
    with pytest.raises(InvalidSolution, match="below 0.99"):  # an untrained model
        task.score(artifact_of(tmp_path / "c", good), "val", 0)


def test_search_space_holds_the_baselines() -> None:
    task = get_task("proofs/train-maxk")
    task.validate_params(task.starting.params)
    task.validate_params(task.reference.params)
    for needle in ("INTERPGYM_ARTIFACT_DIR", "weights.safetensors", "0.99", "solution.py"):
        assert needle in task.instructions


@pytest.mark.slow
def test_starting_solution_end_to_end() -> None:
    from interpgym.harness.trial import run_trial

    task = get_task("proofs/train-maxk")
    outcome = run_trial(task, files=None, params=task.starting.params, seed=0)
    assert outcome.status == "ok", outcome.error
    assert outcome.scores["val"].value > 0.5

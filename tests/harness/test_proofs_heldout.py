"""`proofs/maxk-heldout` on a small recipe: an end-to-end sandboxed trial writes programs for secret-seed
models; the scorer checks each with the kernel, rejects missing/broken ones, and hints fitted to another
model do not carry over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interpgym.harness.task import InvalidSolution
from interpgym.harness.tasks.proofs_maxk import REFERENCE_OPTIONS, strategy_with
from interpgym.harness.tasks.proofs_maxk_heldout import HeldoutSpec, _weights, make_task
from interpgym.harness.trial import load_artifact, run_trial
from interpgym.proofs.lang.export import strategy_program
from interpgym.subjects.maxk import MaxKConfig

SPEC = HeldoutSpec(recipe=MaxKConfig(vocab=10, k=3, d_model=8, d_head=8, steps=400, seed=0, checkpoint_every=400),
                   per_split=1)


@pytest.fixture(scope="module")
def task():
    return make_task(SPEC)


def _score(task, tmp_path: Path, programs: object, split: str = "val"):
    directory = tmp_path / f"a{abs(hash(json.dumps(programs)))}"
    directory.mkdir()
    (directory / "programs.json").write_text(json.dumps(programs))
    return task.score(load_artifact(directory), split, 0)


def test_models_come_from_secret_seeds(task) -> None:
    seeds = {SPEC.config(name).seed for split in ("val", "test") for name in SPEC.names(split)}
    assert len(seeds) == 2 and SPEC.recipe.seed not in seeds


def test_reference_trial_end_to_end(task) -> None:
    outcome = run_trial(task, files=None, params=task.reference.params, seed=0, splits=("val", "test"))
    assert outcome.status == "ok", outcome.error
    for split in ("val", "test"):
        score = outcome.scores[split]
        assert 0 < score.value <= 1
        (model,) = score.metrics["models"].values()
        assert model["flops"] <= model["flop_budget"]


def test_scorer_rejects_missing_and_broken_programs(task, tmp_path: Path) -> None:
    with pytest.raises(InvalidSolution, match="no program for model val_0"):
        _score(task, tmp_path, {"test_0": {}})
    with pytest.raises(InvalidSolution, match="model val_0: proof program rejected"):
        _score(task, tmp_path, {"val_0": {"language": "maxk-proof/1", "steps": [], "certificate": "x"}})
    with pytest.raises(InvalidSolution, match="must be an object"):
        _score(task, tmp_path, [1])


def test_hints_fitted_to_another_model_do_not_transfer(task, tmp_path: Path) -> None:
    name = strategy_with(REFERENCE_OPTIONS)
    own = _score(task, tmp_path, {"val_0": strategy_program(name, _weights(SPEC, "val_0"))})
    borrowed = _score(task, tmp_path, {"val_0": strategy_program(name, _weights(SPEC, "dev"))})
    assert borrowed.value < own.value  # still sound (kernel + audit), just weaker

"""The probe/detect and steer/concept harness tasks on a tiny Llama: inputs, trusted scorers, invalid artifacts, one sandboxed trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from interpgym.harness.task import InvalidSolution
from interpgym.harness.trial import load_artifact, run_trial

LAYER = 2


@pytest.fixture(scope="module")
def detect_task(tiny_dir: Path):
    from interpgym.harness.tasks.probe_detect import make_task

    return make_task(model=str(tiny_dir), layer=LAYER, concepts=("evaluation", "law"))


def _inputs(task, tmp_path: Path) -> dict:
    data = tmp_path / "data"
    data.mkdir()
    task.prepare_inputs(data)
    return {"tensors": load_file(str(data / "train.safetensors")), "info": json.loads((data / "info.json").read_text())}


def _artifact(tmp_path: Path, name: str, tensors: dict, config: dict | None = None):
    out = tmp_path / f"artifact-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / f"{name}.safetensors"))
    if config is not None:
        (out / f"{name}.json").write_text(json.dumps(config))
    return load_artifact(out)


def _diff_means(inputs: dict) -> dict:
    out = {}
    for c in inputs["info"]["concepts"]:
        x, y = inputs["tensors"][f"{c}.x"], inputs["tensors"][f"{c}.y"] > 0.5
        w = x[y].mean(0) - x[~y].mean(0)
        out[c] = w / w.norm()
    return out


def test_detect_scorer_ranks_diff_means_above_its_negation_and_checks_shapes(detect_task, tmp_path: Path) -> None:
    inputs = _inputs(detect_task, tmp_path)
    assert inputs["info"]["layer"] == LAYER and inputs["tensors"]["evaluation.x"].shape == (240, 32)
    good = _diff_means(inputs)
    val = detect_task.score(_artifact(tmp_path, "probes", good), "val", 0)
    flipped = detect_task.score(_artifact(tmp_path, "probes", {c: -v for c, v in good.items()}), "val", 0)
    # AUROC(-w) = 1 - AUROC(w) on the same texts: the scorer measures exactly the projection
    for c in good:
        assert val.metrics[f"auroc_ood.{c}"] + flipped.metrics[f"auroc_ood.{c}"] == pytest.approx(1.0)
    test = detect_task.score(_artifact(tmp_path, "probes", good), "test", 0)
    assert test.value != val.value  # disjoint halves
    with pytest.raises(InvalidSolution, match="shape"):
        detect_task.score(_artifact(tmp_path, "probes", {c: torch.ones(7) for c in good}), "val", 0)
    with pytest.raises(InvalidSolution, match="lacks"):
        detect_task.score(_artifact(tmp_path, "probes", {"evaluation": good["evaluation"]}), "val", 0)
    with pytest.raises(InvalidSolution, match="finite"):
        detect_task.score(_artifact(tmp_path, "probes", {c: torch.full((32,), float("nan")) for c in good}), "val", 0)
    with pytest.raises(InvalidSolution, match="zero"):
        detect_task.score(_artifact(tmp_path, "probes", {c: torch.zeros(32) for c in good}), "val", 0)


def test_detect_reference_trial_runs_sandboxed_and_matches_the_scorer(detect_task, tmp_path: Path) -> None:
    outcome = run_trial(detect_task, files=None, params=detect_task.reference.params, seed=0)
    assert outcome.status == "ok", outcome.error
    inputs = _inputs(detect_task, tmp_path)
    direct = detect_task.score(_artifact(tmp_path, "probes", _diff_means(inputs)), "val", 0)
    assert outcome.scores["val"].value == pytest.approx(direct.value, abs=1e-6)


def test_steer_scorer_judges_steered_generations_and_rejects_bad_configs(tiny_dir: Path, tmp_path: Path) -> None:
    from interpgym.harness.tasks.steer_concept import make_task

    task = make_task(model=str(tiny_dir), layer=LAYER, concepts=("weather",), n_instructions=2, max_new_tokens=4)
    inputs = _inputs(task, tmp_path)
    assert inputs["info"]["residual_norm"] > 0
    vec = _diff_means(inputs)
    none = task.score(_artifact(tmp_path, "steering", vec, {"weather": {"layer": LAYER, "alpha": 0.0}}), "val", 0)
    assert 0 <= none.value <= 2 and {"concept.weather", "fluency.weather"} <= set(none.metrics)
    with pytest.raises(InvalidSolution, match="outside"):
        task.score(_artifact(tmp_path, "steering", vec, {"weather": {"layer": 99, "alpha": 1.0}}), "val", 0)
    with pytest.raises(InvalidSolution, match="<="):
        task.score(_artifact(tmp_path, "steering", vec, {"weather": {"layer": LAYER, "alpha": 1e9}}), "val", 0)
    with pytest.raises(InvalidSolution, match="integer layer"):
        task.score(_artifact(tmp_path, "steering", vec, {"weather": {"layer": "2", "alpha": 1.0}}), "val", 0)


def test_tasks_are_registered() -> None:
    from interpgym.harness.tasks import TASKS

    assert {"probe/detect", "steer/concept"} <= set(TASKS)

"""edit/single's trusted scorer on a tiny model: budgets and shapes are checked, the base model is restored, a real trial scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.editing.deltas import to_factors
from interpgym.harness.task import Artifact, InvalidSolution
from interpgym.harness.tasks import edit_facts, get_task
from interpgym.subjects.lm_loader import LanguageModel, load_language_model

from .conftest import make_facts

N_EDITS, MAX_RANK = 2, 4
DOWN = "model.layers.1.mlp.down_proj.weight"


@pytest.fixture()
def tiny_task(tiny_dir: Path, tiny_lm: LanguageModel, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(edit_facts, "MODEL", str(tiny_dir))
    monkeypatch.setattr(edit_facts, "_lm", lambda: tiny_lm)
    monkeypatch.setattr(edit_facts, "task_facts", lambda task_id, n: make_facts(n))
    return edit_facts._make("edit/single", N_EDITS, MAX_RANK, sequential=False, timeout_s=600.0)


def _artifact(tensors: dict[str, torch.Tensor]) -> Artifact:
    return Artifact(tensors={"deltas": tensors}, json={})


def test_tasks_are_registered_and_describe_their_budgets() -> None:
    for task_id in ("edit/single", "edit/sequential"):
        task = get_task(task_id)
        assert "deltas.safetensors" in task.instructions and "rank" in task.instructions
        assert task.starting.params["method"] == "ft" and task.reference.params["method"] == "rome"
        task.validate_params(task.starting.params)


@pytest.mark.parametrize(
    "tensors, message",
    [
        ({"bogus::left": torch.zeros(64, 1), "bogus::right": torch.zeros(1, 128)}, "not an editable parameter"),
        ({"model.embed_tokens.weight::left": torch.zeros(3, 1), "model.embed_tokens.weight::right": torch.zeros(1, 64)}, "not an editable"),
        ({DOWN + "::left": torch.zeros(64, 5), DOWN + "::right": torch.zeros(5, 128)}, "exceeds the budget"),
        ({DOWN + "::left": torch.zeros(64, 2), DOWN + "::right": torch.zeros(2, 127)}, "do not make"),
        ({DOWN + "::left": torch.full((64, 1), float("nan")), DOWN + "::right": torch.zeros(1, 128)}, "finite"),
        ({DOWN + "::left": torch.zeros(64, 1)}, "needs both"),
        (
            {
                f"model.layers.{i}.mlp.{m}_proj.weight::{s}": torch.zeros(1, 1)
                for i in range(2)
                for m in ("up", "gate", "down")
                for s in ("left", "right")
            },
            "budget is 4",
        ),
    ],
)
def test_scorer_rejects_artifacts_that_break_the_format_or_budgets(tiny_task, tensors, message) -> None:
    with pytest.raises(InvalidSolution, match=message):
        tiny_task.score(_artifact(tensors), "val", 0)


def test_scorer_scores_a_delta_and_restores_the_base_model(tiny_task, tiny_lm: LanguageModel) -> None:
    before = {n: p.detach().clone() for n, p in tiny_lm.model.named_parameters()}
    delta = torch.randn(64, 128, generator=torch.Generator().manual_seed(0)) * 0.01
    score = tiny_task.score(_artifact(to_factors({DOWN: delta}, MAX_RANK)), "val", 0)
    assert 0.0 <= score.value <= 1.0 and score.metrics["edited_params"] == 1 and score.metrics["layers"] == [1]
    assert score.metrics["dw_ratio"] > 0
    for n, p in tiny_lm.model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_a_custom_model_is_shipped_in_the_trial_data(tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trials see only their workspace and the installation: a local model travels in data/ (the slow trial below needs it)."""
    data = tmp_path / "workspace" / "data"
    data.mkdir(parents=True)
    assert edit_facts.ship_model(None, data) is None  # the packaged SmolLM2 lives in the installation
    inside = edit_facts.ship_model(str(tiny_dir), data)
    assert inside == "data/model"
    assert sorted(p.name for p in (data / "model").iterdir()) == sorted(p.name for p in tiny_dir.iterdir())
    monkeypatch.chdir(data.parent)  # the solution's working directory is its workspace
    assert load_language_model(inside).n_layers == 4
    with pytest.raises(UserError, match="not a local path"):
        edit_facts.ship_model("someone/not-a-local-model", tmp_path / "other")
    monkeypatch.setattr(edit_facts, "MODEL", str(tiny_dir))  # the cached inputs (which hold the copy) follow the model
    assert edit_facts._version() != edit_facts.VERSION
    monkeypatch.setattr(edit_facts, "MODEL", None)
    assert edit_facts._version() == edit_facts.VERSION


@pytest.mark.slow  # a sandboxed python start-up importing torch and transformers: ~15 s quiet, minutes under load
def test_reference_trial_runs_in_the_sandbox_and_is_scored(tiny_task, tiny_dir: Path) -> None:
    from interpgym.harness.trial import run_trial

    params = {**edit_facts.REFERENCE, "layer": 1, "steps": 10, "cov_tokens": 10240}
    outcome = run_trial(tiny_task, files=None, params=params, seed=0, splits=("val",))
    assert outcome.status == "ok", outcome.error
    metrics = outcome.scores["val"].metrics
    assert metrics["edited_params"] == 1 and metrics["layers"] == [1]

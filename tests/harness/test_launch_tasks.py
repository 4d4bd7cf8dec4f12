"""The launch tasks' trusted scorers: they measure what they claim and reject what breaks the contract.

Artifacts are built here (harness side, where the private truth is known) and scored
directly, so no SAE is trained except in one end-to-end trial of `sae/toy`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interpgym.harness.task import InvalidSolution
from interpgym.sae import architectures, storage


def _sae_artifact(tmp_path: Path, arch: str, w_dec: torch.Tensor, k: int | None = None, b_dec: torch.Tensor | None = None):
    from interpgym.harness.trial import load_artifact
    from interpgym.sae.config import SAEConfig

    d_sae, d_in = w_dec.shape
    sae = architectures.build_sae(SAEConfig(arch=arch, d_in=d_in, d_sae=d_sae, k=k))
    with torch.no_grad():
        sae.W_dec.copy_(w_dec)
        sae.W_enc.copy_(w_dec.T)
        if b_dec is not None:
            sae.b_dec.copy_(b_dec)
    out = tmp_path / f"artifact-{arch}-{d_sae}-{k}"
    storage.save_sae(out, sae, {"note": "built by the test"})
    return load_artifact(out)


@pytest.fixture
def toy():
    from interpgym.harness.tasks import get_task
    from interpgym.harness.tasks.sae_toy import _subject, toy_config

    return get_task("sae/toy"), _subject(toy_config())


def test_toy_scorer_gives_mcc_one_to_the_true_dictionary(toy, tmp_path):
    task, subject = toy
    truth = subject.ground_truth()
    score = task.score(_sae_artifact(tmp_path, "topk", truth, k=5), "val", 0)
    assert score.metrics["l0"] <= 5.0
    assert score.value == pytest.approx(score.metrics["mcc"]) and score.value > 0.95


def test_toy_scorer_rejects_l0_over_the_true_l0(toy, tmp_path):
    task, subject = toy
    with pytest.raises(InvalidSolution, match="exceeds the budget"):
        task.score(_sae_artifact(tmp_path, "topk", subject.ground_truth(), k=6), "val", 0)


def test_toy_scorer_ignores_decoder_rows_that_never_fire(toy, tmp_path):
    task, subject = toy
    truth = subject.ground_truth()
    random_dirs = torch.nn.functional.normalize(torch.randn(8, truth.shape[1], generator=torch.Generator().manual_seed(0)), dim=1)
    honest = task.score(_sae_artifact(tmp_path, "topk", random_dirs, k=5), "val", 0)
    # Same 8 firing latents, plus the true directions as latents that can never fire
    # (a huge negative encoder bias): they must not raise the score.
    from interpgym.harness.trial import load_artifact
    from interpgym.sae.config import SAEConfig

    sae = architectures.build_sae(SAEConfig(arch="relu", d_in=truth.shape[1], d_sae=8 + truth.shape[0]))
    with torch.no_grad():
        sae.W_dec.copy_(torch.cat([random_dirs, truth]))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_enc.copy_(torch.cat([torch.full((8,), -0.6), torch.full((truth.shape[0],), -1e6)]))
    storage.save_sae(tmp_path / "padded", sae, {})
    padded = task.score(load_artifact(tmp_path / "padded"), "val", 0)
    assert padded.metrics["alive"] <= 8
    assert padded.value <= max(honest.value, 8 / truth.shape[0]) + 1e-9


def test_toy_scorer_rejects_too_wide_and_wrong_width(toy, tmp_path):
    task, subject = toy
    wide = torch.nn.functional.normalize(torch.randn(2048, 64), dim=1)
    with pytest.raises(InvalidSolution, match="exceeds the task's maximum"):
        task.score(_sae_artifact(tmp_path, "topk", wide, k=5), "val", 0)
    with pytest.raises(InvalidSolution, match="d_in"):
        task.score(_sae_artifact(tmp_path, "topk", torch.nn.functional.normalize(torch.randn(32, 16), dim=1), k=5), "val", 0)


def test_toy_end_to_end_trial_of_the_starting_solution(toy):
    from interpgym.harness.trial import run_trial

    task, _ = toy
    outcome = run_trial(task, files=None, params=task.starting.params, seed=0)
    assert outcome.status == "ok", outcome.error
    assert outcome.scores["val"].metrics["l0"] <= 5.0 and 0 < outcome.scores["val"].value < 1


def test_toy_instructions_and_search_space_are_complete(toy):
    task, _ = toy
    for needle in ("MCC", "L0", "INTERPGYM_ARTIFACT_DIR", "save_sae", "solution.py", "invalid"):
        assert needle in task.instructions
    task.validate_params(task.starting.params)
    task.validate_params(task.reference.params)


def test_proofs_scorer_runs_the_verification_itself(tmp_path):
    from interpgym.harness.tasks import get_task
    from interpgym.harness.tasks.proofs_maxk import BUDGET_OPTIONS, REFERENCE_OPTIONS, _model, flop_budget, strategy_with
    from interpgym.harness.trial import load_artifact
    from interpgym.proofs import registry
    from interpgym.proofs.lang.export import strategy_program

    task = get_task("proofs/maxk")

    def score(proof: object):
        directory = tmp_path / f"a{abs(hash(json.dumps(proof)))}"
        directory.mkdir()
        (directory / "proof.json").write_text(json.dumps(proof))
        return task.score(load_artifact(directory), "val", 0)

    budget_proof = strategy_with(BUDGET_OPTIONS)
    reference = strategy_with(REFERENCE_OPTIONS)
    assert reference == task.reference.params["strategy"]
    budget_result = score({"strategy": budget_proof})  # version 1's artifact still works
    budget_truth = registry.strategies()[budget_proof](_model().weights)
    assert budget_result.value == budget_truth.bound and budget_result.metrics["flops"] == flop_budget()
    assert abs(flop_budget() - budget_truth.flops) <= 0.1 * budget_truth.flops  # the kernel's cost of the same proof
    best = score({"strategy": reference})
    assert best.metrics["flops"] <= flop_budget() and best.value > budget_result.value
    program = strategy_program(reference, _model().weights)
    assert score(program).value == best.value  # version 2's artifact: the program itself
    for bad, message in (({"strategy": "brute-force"}, "not allowed"), ({"strategy": "nope"}, "unknown strategy"),
                         ({"strategy": 7}, "must be"), ({"strategy": "cubic"}, "over the budget"),
                         ({**program, "steps": program["steps"][:-1]}, "'certificate' must name a step"),
                         ([1, 2], "must be a JSON object")):
        with pytest.raises(InvalidSolution, match=message):
            score(bad)


@pytest.mark.slow
def test_proofs_reference_is_the_best_strategy_within_the_budget_by_exhaustion(tmp_path):
    """Every strategy of the search space verified (minutes): none within the budget beats the reference."""
    pytest.importorskip("interpgym.proofs.registry")
    from interpgym.harness.tasks import get_task
    from interpgym.harness.tasks.proofs_maxk import _verify, flop_budget

    task = get_task("proofs/maxk")
    within = {name: _verify(name)[0] for name in task.search_space["strategy"]["choices"]
              if _verify(name)[1] <= flop_budget()}
    assert len(within) >= 2
    assert max(within.values()) == within[task.reference.params["strategy"]]

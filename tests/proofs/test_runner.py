"""Registry names, the runner's audit, and the Pareto frontier."""

from __future__ import annotations

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.core.pareto import pareto_front
from interpgym.proofs.cubic import cubic
from interpgym.proofs.heads_runner import heads_report
from interpgym.proofs.loss_runner import loss_report
from interpgym.proofs.pareto import plot_pareto
from interpgym.proofs.registry import resolve, strategies
from interpgym.proofs.runner import UnsoundProofError, audit, audit_all, checkpoint_steps, maxk_report, prove
from interpgym.subjects.maxk import MaxKConfig
from interpgym.subjects.maxk_heads import MaxKHeadsConfig

from .helpers import SMALL_CONFIGS, forward_correct, small_model


def test_registry_names() -> None:
    names = resolve("all")
    assert names[:2] == ["brute-force", "cubic"]
    assert all(n.startswith("subcubic/") for n in names[2:])
    assert resolve(" cubic , brute-force,cubic") == ["cubic", "brute-force"]
    assert set(names) == set(strategies())
    with pytest.raises(UserError, match="unknown strategy 'nope'"):
        resolve("cubic,nope")
    with pytest.raises(UserError, match="empty"):
        resolve(" , ")


def test_prove_reuses_brute_force_and_normalises() -> None:
    w = small_model(*SMALL_CONFIGS[1])
    proofs = prove(w, ["cubic", "brute-force"])
    assert proofs.exact_accuracy == pytest.approx(float(forward_correct(w).float().mean()))
    rows = proofs.rows()
    assert [r["strategy"] for r in rows] == ["cubic", "brute-force"]
    assert rows[1]["normalized"] == 1.0 and rows[0]["normalized"] <= 1.0
    assert set(rows[0]) == {"strategy", "bound", "normalized", "flops", "wall_s", "unexplained_dim", "complexity"}


def test_audit_rejects_unsound_certificates() -> None:
    w = small_model(*SMALL_CONFIGS[1])
    correct = forward_correct(w)
    forged = cubic(w)
    wrong_index = int((~correct).nonzero()[0, 0])
    forged.ok = torch.ones_like(forged.ok)
    forged.ok_pure = torch.ones_like(forged.ok_pure)
    forged.certified = int(correct.sum())  # a count that looks plausible: only the per-input check catches it
    with pytest.raises(UnsoundProofError):
        audit(forged, correct, w.vocab, w.k)
    forged.certified = int(correct.sum()) + 1
    with pytest.raises(UnsoundProofError, match="only"):
        audit(forged, correct, w.vocab, w.k)
    assert not correct[wrong_index]  # the forged certificate claims an input the model gets wrong


def test_audit_all_finds_the_unsound_result_among_sound_ones() -> None:
    w = small_model(*SMALL_CONFIGS[1])
    correct = forward_correct(w)
    sound = cubic(w)
    audit_all([sound, cubic(w)], correct, w.vocab, w.k)  # nothing raised
    forged = cubic(w)
    forged.ok = torch.ones_like(forged.ok)
    forged.ok_pure = torch.ones_like(forged.ok_pure)
    forged.strategy = "forged"
    with pytest.raises(UnsoundProofError, match="forged certifies input"):
        audit_all([sound, forged], correct, w.vocab, w.k)


def test_checkpoint_steps_keep_first_and_last() -> None:
    saved = [0, 100, 200, 300, 400]
    assert checkpoint_steps(saved) == saved
    assert checkpoint_steps(saved, 2) == [0, 200, 400]
    assert checkpoint_steps(saved, 3) == [0, 300, 400]
    assert checkpoint_steps(saved, 10) == [0, 400]
    with pytest.raises(UserError, match="--stride"):
        checkpoint_steps(saved, 0)


def test_pareto_front_of_cost_and_bound() -> None:
    points = [(10.0, 0.5), (5.0, 0.4), (20.0, 0.5), (1.0, 0.1), (30.0, 1.0), (5.0, 0.3)]
    assert pareto_front([(cost, -bound) for cost, bound in points]) == [3, 1, 0, 4]


def test_plot_writes_png(tmp_path) -> None:
    rows = [{"strategy": "a", "flops": 10, "normalized": 0.5, "seed": 0}, {"strategy": "b", "flops": 1000, "normalized": 1.0, "seed": 0}]
    path = plot_pareto(rows, tmp_path / "sub" / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["p.png"]


def _without_wall_times(report: dict) -> dict:
    """The report with every measured wall time removed (the only numbers that differ between runs)."""
    def rows(stage: dict) -> list[dict]:
        return [{key: value for key, value in row.items() if key != "wall_s"} for row in stage["results"]]

    return {**report, "results": rows(report), "checkpoints": [{**stage, "results": rows(stage)} for stage in report["checkpoints"]]}


@pytest.mark.parametrize("theorem", ["accuracy", "loss", "heads"])
def test_checkpoints_in_two_processes_equal_the_serial_run(theorem: str) -> None:
    """`--jobs 2` proves the checkpoints in worker processes: every bound, FLOP count and row is the serial run's."""
    config = MaxKConfig(vocab=8, k=3, d_model=8, d_head=8, seed=1, steps=300, checkpoint_every=100)
    selection = "brute-force,cubic,subcubic/eqke=exact/direct=exact/attn=mean+diff"
    if theorem == "heads":
        heads_config = MaxKHeadsConfig(vocab=8, k=3, d_model=8, d_head=4, n_heads=2, seed=1, steps=300, checkpoint_every=100)
        serial, parallel = (heads_report(heads_config, "all", checkpoints=True, jobs=jobs, progress=False) for jobs in (1, 2))
    elif theorem == "loss":
        serial, parallel = (loss_report(config, selection + ",hybrid/cubic+brute/x>-3", checkpoints=True, jobs=jobs, progress=False)
                            for jobs in (1, 2))
    else:
        serial, parallel = (maxk_report(config, selection, checkpoints=True, jobs=jobs, progress=False) for jobs in (1, 2))
    assert len(serial["checkpoints"]) == 4
    assert _without_wall_times(serial) == _without_wall_times(parallel)
    with pytest.raises(UserError):
        maxk_report(config, "cubic", checkpoints=True, jobs=0, progress=False)

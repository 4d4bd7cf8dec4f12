"""`interpgym proofs modadd`: the JSON contract (the shape of `proofs maxk`'s), plots, and exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interpgym.subjects.modadd import ModAddWeights, all_inputs, correct_mask, logits

from .test_cli import ROW_KEYS, run_cli

SMALL = ["--p", "7", "--seed", "1", "--steps", "60"]


def test_contract_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out, png = tmp_path / "out.json", tmp_path / "pareto.png"
    code = run_cli(["proofs", "modadd", *SMALL, "--checkpoints", "--plot", str(png), "--json", str(out)], monkeypatch)
    assert code == 0
    assert "quadrature" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report) == {"model", "exact_accuracy", "results", "checkpoints"}
    model = report["model"]
    assert set(model) == {"seed", "p", "d_model", "n_heads", "d_mlp", "attention", "train_steps", "weights"}
    assert (model["seed"], model["p"], model["attention"], model["train_steps"]) == (1, 7, "uniform", 60)
    assert [r["strategy"] for r in report["results"]] == [
        "brute-force", "quadrature", "readout/rank=4", "readout/rank=8", "readout/rank=16", "readout/rank=32",
        "integration/rank=8", "integration/rank=12"]
    for row in report["results"]:
        assert set(row) == ROW_KEYS
        assert isinstance(row["flops"], int) and row["flops"] > 0
        assert 0.0 <= row["bound"] <= report["exact_accuracy"] + 1e-12
    assert report["results"][0]["bound"] == report["exact_accuracy"]
    assert [c["step"] for c in report["checkpoints"]] == [0, 60]
    assert report["checkpoints"][-1]["exact_accuracy"] == report["exact_accuracy"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "pareto-training.png").read_bytes()[:4] == b"\x89PNG"
    initial = load_file(str(Path(model["weights"]).parent / "checkpoints" / "step_000000.safetensors"))
    assert torch.equal(load_file(model["weights"])["W_Q"], initial["W_Q"])  # uniform attention leaves W_Q untrained
    # the weights file alone reproduces the exact accuracy
    weights = ModAddWeights.from_dict(load_file(model["weights"]), uniform_attention=model["attention"] == "uniform")
    pairs = all_inputs(7)
    assert correct_mask(logits(weights, pairs), pairs).double().mean().item() == report["exact_accuracy"]


def test_learned_attention_and_strategy_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.json"
    code = run_cli(["proofs", "modadd", *SMALL, "--attention", "learned", "--strategies", "quadrature", "--json", str(out)], monkeypatch)
    assert code == 0
    report = json.loads(out.read_text())
    assert report["model"]["attention"] == "learned"
    assert [r["strategy"] for r in report["results"]] == ["quadrature"]
    final = load_file(report["model"]["weights"])
    initial = load_file(str(Path(report["model"]["weights"]).parent / "checkpoints" / "step_000000.safetensors"))
    assert not torch.equal(final["W_Q"], initial["W_Q"])  # learned attention trains W_Q


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--p", "1"], "--p must be in [2, 1000]"),
        (["--attention", "none"], "--attention must be one of"),
        (["--strategies", "quadrature,bogus"], "unknown strategy 'bogus'"),
        (["--steps", "-1"], "--steps must be >= 0"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.json"
    code = run_cli(["proofs", "modadd", *SMALL, *args, "--json", str(out)], monkeypatch)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_output_path_is_checked_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    code = run_cli(["proofs", "modadd", *SMALL, "--json", str(tmp_path)], monkeypatch)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is a directory" in err and len(err.splitlines()) == 1

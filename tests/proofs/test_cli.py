"""`interpgym proofs maxk`: the JSON contract, the weights file, and exit code 2 on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interpgym.cli import main
from interpgym.proofs.cli import wrap_at_slashes
from interpgym.proofs.registry import strategies
from interpgym.subjects.maxk import MaxKConfig, correct_mask, last_logits, train_maxk

SMALL = ["--seed", "1", "--vocab", "8", "--k", "3", "--d-model", "8", "--steps", "300"]
ROW_KEYS = {"strategy", "bound", "normalized", "flops", "wall_s", "unexplained_dim", "complexity"}


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["interpgym", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    return exit_info.value.code or 0


def test_contract_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out, png = tmp_path / "out.json", tmp_path / "pareto.png"
    code = run_cli(["proofs", "maxk", *SMALL, "--strategies", "all", "--checkpoints", "--plot", str(png), "--json", str(out)], monkeypatch)
    assert code == 0
    assert "cubic" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report) == {"model", "exact_accuracy", "results", "checkpoints"}
    model = report["model"]
    assert set(model) == {"seed", "vocab", "k", "d_model", "train_steps", "weights"}
    assert (model["seed"], model["vocab"], model["k"], model["d_model"], model["train_steps"]) == (1, 8, 3, 8, 300)
    names = [r["strategy"] for r in report["results"]]
    assert names[:2] == ["brute-force", "cubic"]
    for row in report["results"]:
        assert set(row) == ROW_KEYS
        assert isinstance(row["flops"], int) and row["flops"] > 0
        assert 0.0 <= row["bound"] <= report["exact_accuracy"] + 1e-12
    assert report["results"][0]["bound"] == report["exact_accuracy"]
    steps = [c["step"] for c in report["checkpoints"]]
    assert steps == [0, 100, 200, 300]
    for stage in report["checkpoints"]:
        assert set(stage) == {"step", "exact_accuracy", "results"}
        assert [r["strategy"] for r in stage["results"]] == names
    assert report["checkpoints"][-1]["exact_accuracy"] == report["exact_accuracy"]
    assert png.read_bytes()[:4] == b"\x89PNG"

    # the weights file alone reproduces the model's outputs, and hence the exact accuracy
    tensors = load_file(model["weights"])
    assert {n: tuple(t.shape) for n, t in tensors.items()} == {
        "W_E": (8, 8), "W_pos": (3, 8), "W_Q": (8, 8), "W_K": (8, 8), "W_V": (8, 8), "W_O": (8, 8), "W_U": (8, 8)}
    tokens = torch.cartesian_prod(*[torch.arange(8)] * 3)
    x = tensors["W_E"][tokens] + tensors["W_pos"]
    scores = torch.einsum("bh,bkh->bk", x[:, -1] @ tensors["W_Q"], x @ tensors["W_K"]) / 8**0.5
    z = torch.einsum("bk,bkh->bh", scores.softmax(-1), x @ tensors["W_V"])
    logits = (x[:, -1] + z @ tensors["W_O"]) @ tensors["W_U"]
    trained = train_maxk(MaxKConfig(vocab=8, k=3, d_model=8, d_head=8, seed=1, steps=300), progress=False)
    assert torch.allclose(logits, last_logits(trained.weights, tokens), atol=1e-5)
    assert correct_mask(logits, tokens).float().mean().item() == pytest.approx(report["exact_accuracy"], abs=2 / 512)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vocab", "1"], "--vocab must be >= 2"),
        (["--k", "0"], "--k must be >= 1"),
        (["--strategies", "cubic,bogus"], "unknown strategy 'bogus'"),
        (["--d-model", "0"], "--d-model"),
        (["--stride", "2"], "only applies with --checkpoints"),
        (["--checkpoints", "--stride", "0"], "--stride 0: must be >= 1"),
        (["--jobs", "2"], "only applies with --checkpoints"),
        (["--checkpoints", "--jobs", "0"], "--jobs 0: must be >= 1"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.json"
    code = run_cli(["proofs", "maxk", *SMALL, *args, "--json", str(out)], monkeypatch)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_checkpoint_stride(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.json"
    code = run_cli(["proofs", "maxk", *SMALL, "--strategies", "cubic", "--checkpoints", "--stride", "2", "--json", str(out)], monkeypatch)
    assert code == 0
    report = json.loads(out.read_text())
    assert [c["step"] for c in report["checkpoints"]] == [0, 200, 300]
    assert report["checkpoints"][-1]["exact_accuracy"] == report["exact_accuracy"]


def test_unreadable_cache_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    not_a_dir = tmp_path / "home"
    not_a_dir.write_text("a file where the cache directory should be")
    monkeypatch.setenv("INTERPGYM_HOME", str(not_a_dir))
    out = tmp_path / "out.json"
    code = run_cli(["proofs", "maxk", *SMALL, "--json", str(out)], monkeypatch)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "INTERPGYM_HOME" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_corrupt_cached_weights_are_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = MaxKConfig(vocab=8, k=3, d_model=8, d_head=8, seed=1, steps=300)
    weights = train_maxk(config, progress=False).weights_path
    weights.write_bytes(b"not safetensors")
    out = tmp_path / "out.json"
    assert run_cli(["proofs", "maxk", *SMALL, "--strategies", "cubic", "--json", str(out)], monkeypatch) == 0
    report = json.loads(out.read_text())
    assert load_file(report["model"]["weights"])["W_E"].shape == (8, 8)


@pytest.mark.parametrize("width", [20, 38, 80])
def test_strategy_names_wrap_between_parts(width: int) -> None:
    """Every registered name survives wrapping intact, with lines no wider than asked unless one part is."""
    for name in strategies():
        wrapped = wrap_at_slashes(name, width)
        assert wrapped.replace("\n", "") == name
        for line in wrapped.split("\n"):
            assert len(line) <= width or "/" not in line.rstrip("/")

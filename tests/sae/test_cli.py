"""The `interpgym sae` contract: train writes a SAELens dir, eval/sweep JSON keys, exit code 2 cases."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from interpgym.cli import main
from interpgym.sae.storage import CFG_FILE, META_FILE, WEIGHTS_FILE

TRAIN_FAST = ["--steps", "40", "--batch-size", "256"]


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["interpgym", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, shared_home: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "topk"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERPGYM_HOME", str(shared_home))
        code = run_cli(
            mp, "sae", "train", "--subject", "toy", "--arch", "topk", "--width", "64", "--k", "5", *TRAIN_FAST, "--out", str(out)
        )
    assert code == 0
    return out


def test_train_writes_a_saelens_dir(trained_dir: Path) -> None:
    assert {p.name for p in trained_dir.iterdir()} == {CFG_FILE, WEIGHTS_FILE, META_FILE}
    cfg = json.loads((trained_dir / CFG_FILE).read_text())
    assert (cfg["architecture"], cfg["d_in"], cfg["d_sae"], cfg["k"]) == ("topk", 64, 64, 5)
    meta = json.loads((trained_dir / META_FILE).read_text())
    assert meta["subject"]["name"] == "toy" and meta["arch"] == "topk" and meta["log"]


def test_eval_json_contract(trained_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    out = tmp_path / "eval.json"
    assert run_cli(monkeypatch, "sae", "eval", str(trained_dir), "--json", str(out)) == 0
    data = json.loads(out.read_text())
    assert (data["subject"], data["arch"], data["width"], data["eval_inputs"]) == ("toy", "topk", 64, 16384)
    for key in (
        "l0",
        "fvu",
        "explained_variance",
        "cosine",
        "relative_reconstruction_bias",
        "dead_frac",
        "dense_frac",
        "mcc",
        "mmcs",
        "frac_recovered",
    ):
        assert isinstance(data["metrics"][key], float), key
    assert data["metrics"]["l0"] == pytest.approx(5.0)
    assert data["metrics"]["explained_variance"] == pytest.approx(1 - data["metrics"]["fvu"])
    assert "fvu" in capsys.readouterr().out


def test_sweep_json_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    code = run_cli(
        monkeypatch,
        "sae",
        "sweep",
        "--subject",
        "toy",
        "--archs",
        "topk,relu",
        "--points",
        "2",
        "--width",
        "32",
        "--steps",
        "30",
        "--batch-size",
        "256",
        "--json",
        str(out),
        "--plot",
        str(plot),
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert [run["arch"] for run in data["runs"]] == ["topk", "topk", "relu", "relu"]
    assert {run["k"] for run in data["runs"][:2]} == {2, 12}  # the ends of k = 0.4x..2.4x the true L0 (5)
    assert set(data["frontiers"]) == {"topk", "relu"}
    assert all(data["frontiers"][arch] for arch in ("topk", "relu"))
    assert all("mcc" in run["metrics"] and "fvu" in run["metrics"] for run in data["runs"])
    assert plot.stat().st_size > 1000


def _expect_exit_2(monkeypatch, capsys, *args: str, match: str) -> None:
    assert run_cli(monkeypatch, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_eval_of_a_non_sae_dir_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    _expect_exit_2(
        monkeypatch, capsys, "sae", "eval", str(tmp_path / "notes"), "--json", str(tmp_path / "e.json"), match="not an SAE directory"
    )
    assert not (tmp_path / "e.json").exists()


def test_eval_of_nan_weights_exits_2(trained_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    broken = tmp_path / "nan"
    broken.mkdir()
    for name in (CFG_FILE, META_FILE):
        (broken / name).write_text((trained_dir / name).read_text())
    state = load_file(str(trained_dir / WEIGHTS_FILE))
    state["W_enc"][3, 3] = float("nan")
    save_file(state, str(broken / WEIGHTS_FILE))
    _expect_exit_2(monkeypatch, capsys, "sae", "eval", str(broken), "--json", str(tmp_path / "e.json"), match="NaN")
    assert not (tmp_path / "e.json").exists()


def test_eval_width_mismatch_exits_2(trained_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    cfg = json.loads((trained_dir / CFG_FILE).read_text()) | {"d_in": 32}
    meta = json.loads((trained_dir / META_FILE).read_text())
    meta["sae_config"]["d_in"] = 32
    (wrong / CFG_FILE).write_text(json.dumps(cfg))
    (wrong / META_FILE).write_text(json.dumps(meta))
    state = load_file(str(trained_dir / WEIGHTS_FILE))
    save_file(
        {
            "W_enc": state["W_enc"][:32].contiguous(),
            "b_enc": state["b_enc"],
            "W_dec": state["W_dec"][:, :32].contiguous(),
            "b_dec": state["b_dec"][:32].contiguous(),
        },
        str(wrong / WEIGHTS_FILE),
    )
    _expect_exit_2(monkeypatch, capsys, "sae", "eval", str(wrong), "--json", str(tmp_path / "e.json"), match="d_in=64")
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--subject", "mnist", "--arch", "topk"], "unknown subject"),
        (["--subject", "toy", "--arch", "softmax"], "unknown SAE architecture"),
        (["--subject", "toy", "--arch", "topk", "--k", "0"], "--k"),
        (["--subject", "toy", "--arch", "relu", "--l1", "-1"], "--l1"),
        (["--subject", "toy", "--arch", "topk", "--layer", "3"], "--layer"),
    ],
)
def test_train_bad_arguments_exit_2_without_output(args, match, tmp_path: Path, monkeypatch, capsys) -> None:
    _expect_exit_2(monkeypatch, capsys, "sae", "train", *args, *TRAIN_FAST, "--out", str(tmp_path / "o"), match=match)
    assert not (tmp_path / "o").exists()


def test_train_refuses_existing_out(trained_dir: Path, monkeypatch, capsys) -> None:
    _expect_exit_2(monkeypatch, capsys, "sae", "train", "--subject", "toy", *TRAIN_FAST, "--out", str(trained_dir), match="already exists")


def test_sweep_unknown_arch_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    _expect_exit_2(monkeypatch, capsys, "sae", "sweep", "--archs", "topk,bogus", "--json", str(tmp_path / "s.json"), match="bogus")
    assert not (tmp_path / "s.json").exists()


def test_toy_subject_contract() -> None:
    from interpgym.subjects.activations import ActivationSubject
    from interpgym.subjects.registry import load_subject
    from interpgym.subjects.toy_superposition import ToyConfig, firing_rates

    toy = load_subject("toy")
    assert isinstance(toy, ActivationSubject)
    assert toy.activations("train").shape == (131072, 64) and toy.activations("test").shape == (16384, 64)
    assert not torch.equal(toy.activations("val")[:10], toy.activations("test")[:10])
    truth = toy.ground_truth()
    torch.testing.assert_close(truth.norm(dim=1), torch.ones(256))
    assert firing_rates(ToyConfig()).sum().item() == pytest.approx(5.0)
    assert abs(toy.empirical_mean_l0("test") - 5.0) < 0.1
    torch.testing.assert_close(toy.features("test") @ truth, toy.activations("test"))
    assert toy.labels("test") == {} and toy.downstream(lambda a: a) == {}
    again = load_subject("toy")
    assert torch.equal(again.activations("test"), toy.activations("test"))


def test_toy_correlated_groups_keep_marginal_rates() -> None:
    from interpgym.subjects.toy_superposition import ToyConfig, ToySubject, firing_rates

    cfg = ToyConfig(n_features=40, d_in=10, mean_l0=4.0, correlated_groups=4, group_correlation=0.8, n_train=40000, n_val=10, n_test=10)
    fires = (ToySubject(cfg).features("train") > 0).float()
    torch.testing.assert_close(fires.mean(0), firing_rates(cfg), atol=0.02, rtol=0.0)
    corr = torch.corrcoef(fires[:, :20].T)
    within = corr[:10, :10][~torch.eye(10, dtype=torch.bool)].mean()
    across = corr[:10, 10:20].mean()
    assert within > 0.05 > abs(across)

"""The `interpgym probe` contract on a tiny Llama saved in HF format: JSON keys, tables, exit code 2 cases."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from interpgym.cli import main
from interpgym.probing.steer_eval import SteerConfig

DETECT_KEYS = {"concept", "method", "pooling", "auroc_id", "auroc_ood", "ci95", "auprc_imbalanced"}


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["interpgym", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_concepts_json_has_counts_and_label_quality(monkeypatch, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    assert run_cli(monkeypatch, "probe", "concepts", "--concepts", "evaluation", "--json", str(out)) == 0
    sheet = json.loads(out.read_text())["concepts"][0]
    assert sheet["concept"] == "evaluation" and sheet["counts"]["train"] == {"pos": 120, "neg": 120, "hard_neg": 39}
    assert 0.5 < sheet["label_quality"]["auroc_test"] <= 1.0 and 0.0 <= sheet["label_quality"]["auroc_ood"] <= 1.0


def test_detect_writes_the_stated_keys_and_is_reproducible(monkeypatch, tmp_path: Path, tiny_dir: Path) -> None:
    runs = []
    for i in range(2):
        out = tmp_path / f"d{i}.json"
        args = ["probe", "detect", "--model", str(tiny_dir), "--concepts", "evaluation", "--methods", "diff_means,logistic,pca,random",
                "--layer", "2", "--json", str(out)]
        if i == 0:
            args += ["--plot", str(tmp_path / "d.png")]
        assert run_cli(monkeypatch, *args) == 0
        runs.append(json.loads(out.read_text()))
    result = runs[0]
    assert result["layer"] == 2 and result["model"].startswith("path:")
    assert len(result["results"]) == 1 * 4 * 2
    for row in result["results"]:
        assert DETECT_KEYS <= set(row) and row["ci95"][0] <= row["auroc_ood"] <= row["ci95"][1]
    assert [r["auroc_ood"] for r in runs[0]["results"]] == [r["auroc_ood"] for r in runs[1]["results"]]
    assert (tmp_path / "d.png").stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--concepts", "nope"], "unknown concept"),
    (["--methods", "telepathy"], "unknown method"),
    (["--layer", "7"], "out of range"),
    (["--concepts", ","], "empty"),
])
def test_detect_bad_input_exits_2_with_one_line_and_no_output(monkeypatch, capsys, tmp_path: Path, tiny_dir: Path, args, message) -> None:
    out = tmp_path / "d.json"
    code = run_cli(monkeypatch, "probe", "detect", "--model", str(tiny_dir), *args, "--json", str(out))
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_steer_bad_input_and_unreachable_llm_judge_exit_2(monkeypatch, capsys, tmp_path: Path, tiny_dir: Path) -> None:
    out = tmp_path / "s.json"
    assert run_cli(monkeypatch, "probe", "steer", "--model", str(tiny_dir), "--methods", "nope", "--json", str(out)) == 2
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert run_cli(monkeypatch, "probe", "steer", "--model", str(tiny_dir), "--judge", "llm", "--json", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "did not answer" in err[-1] and not out.exists()


def test_steer_on_a_tiny_budget_writes_scores_alpha_and_examples(monkeypatch, tmp_path: Path, tiny_dir: Path) -> None:
    out = tmp_path / "s.json"
    code = run_cli(monkeypatch, "probe", "steer", "--model", str(tiny_dir), "--concepts", "evaluation",
                   "--methods", "diff_means,prompting,none", "--layer", "2", "--instructions", "2", "--max-new-tokens", "4",
                   "--json", str(out))
    assert code == 0
    result = json.loads(out.read_text())
    rows = {r["method"]: r for r in result["results"]}
    assert set(rows) == {"diff_means", "prompting", "none"}
    grid = SteerConfig.alpha_factors
    assert rows["diff_means"]["alpha_factor"] in grid and [s["alpha_factor"] for s in rows["diff_means"]["selection"]] == list(grid)
    assert result["alpha_factors"] == list(grid) and result["alpha_at_grid_edge"]["of"] == 1
    assert set(result["method_seconds"]) == {"diff_means", "prompting", "none"}
    assert rows["none"]["alpha"] is None
    for r in rows.values():
        assert 0 <= r["harmonic"] <= 2 and r["ci95"][0] <= r["harmonic"] <= r["ci95"][1]
        assert all(0 <= r[k] <= 2 for k in ("concept_score", "instruction_score", "fluency_score"))
        assert len(r["examples"]) == 2 and {"instruction", "response"} <= set(r["examples"][0])
    assert set(result["instructions_select"]).isdisjoint(result["instructions_report"])
    assert set(result["judge_calibration"]["concept_classifier_auroc_ood"]) == {"evaluation"}

"""The command line's promises: every sae/proofs output path is checked before any work, one-line
errors with exit 2, --version, and help text on every option of every command."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from interpgym.cli import app
from tests.sae.test_cli import run_cli

# (command, the flag holding an output path, whether that path is a directory)
OUTPUTS = [
    (["sae", "train", "--subject", "toy", "--steps", "5", "--out", "{ok_dir}"], "--json", False),
    (["sae", "train", "--subject", "toy", "--steps", "5"], "--out", True),
    (["sae", "train", "--subject", "toy", "--steps", "5", "--out", "{ok_dir}"], "--checkpoint-dir", True),
    (["sae", "eval", "{missing_sae}"], "--json", False),
    (["sae", "sweep", "--archs", "topk", "--points", "1", "--steps", "5", "--json", "{ok_file}"], "--plot", False),
    (["sae", "sweep", "--archs", "topk", "--points", "1", "--steps", "5"], "--json", False),
    (["sae", "archs"], "--json", False),
    (["proofs", "maxk", "--vocab", "8", "--k", "2", "--steps", "5"], "--json", False),
    (["proofs", "maxk", "--vocab", "8", "--k", "2", "--steps", "5", "--json", "{ok_file}"], "--plot", False),
]
BAD_PATHS = ["existing directory", "under a file", "read-only directory"]


def _bad_path(kind: str, tmp_path: Path, read_only: Path, directory: bool) -> Path:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    if kind == "existing directory":
        return a_file if directory else tmp_path  # a directory where a file goes, a file where a directory goes
    if kind == "under a file":
        return a_file / "out"
    return read_only / "out"


@pytest.mark.parametrize("kind", BAD_PATHS)
@pytest.mark.parametrize(("command", "flag", "directory"), OUTPUTS, ids=[f"{' '.join(c[:2])} {f}" for c, f, _ in OUTPUTS])
def test_every_command_refuses_every_bad_output_path_before_work(
    command: list[str], flag: str, directory: bool, kind: str, tmp_path: Path, read_only_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    bad = _bad_path(kind, tmp_path, read_only_dir, directory)
    names = {"ok_dir": str(tmp_path / "fresh-out"), "ok_file": str(tmp_path / "fresh.json"), "missing_sae": str(tmp_path / "no-sae")}
    args = [part.format(**names) for part in command] + [flag, str(bad)]
    started = time.perf_counter()
    code = run_cli(monkeypatch, *args)
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and flag in err, err
    assert not (tmp_path / "fresh-out").exists() and not (tmp_path / "fresh.json").exists()
    assert elapsed < 30, "the path must be refused before any training or proving"  # generous: a loaded CI machine


def test_relu_with_k_and_topk_with_l1_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for arch, option in (("relu", "--k"), ("topk", "--l1")):
        assert run_cli(monkeypatch, "sae", "train", "--arch", arch, option, "5", "--out", str(tmp_path / arch)) == 2
        err = capsys.readouterr().err
        assert f"{option} does not apply to {arch}" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / arch).exists()


def test_sweep_points_beyond_its_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert run_cli(monkeypatch, "sae", "sweep", "--points", "6", "--json", str(tmp_path / "s.json")) == 2
    assert "--points must be between 1 and 5 (got 6)" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_version() -> None:
    from interpgym import __version__

    out = subprocess.run(
        [sys.executable, "-m", "interpgym", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
        env={"PYTHONPATH": str(Path(__file__).parents[1] / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == f"interpgym {__version__}"


def test_every_option_and_argument_of_every_command_has_help() -> None:
    root = typer.main.get_command(app)
    commands = dict(_commands_of(root, "interpgym"))
    assert {"interpgym sae train", "interpgym proofs maxk", "interpgym probe steer", "interpgym edit run",
            "interpgym campaign run", "interpgym task score"} <= set(commands), "the walk must reach every sub-command"
    missing = []
    for name, command in commands.items():
        for param in command.params:
            kind = getattr(param, "param_type_name", None)
            if kind in ("option", "argument") and not (getattr(param, "help", "") or "").strip():
                missing.append(f"{name} {param.opts[0] if kind == 'option' else param.name}")
    assert missing == []


def _commands_of(command, name: str):
    """(name, command) for `command` and every sub-command below it (typer ships its own click, so
    groups are recognised by their `commands`, not by `isinstance(click.Group)`)."""
    yield name, command
    for sub, child in getattr(command, "commands", {}).items():
        yield from _commands_of(child, f"{name} {sub}")


def test_eval_refuses_a_subject_other_than_the_recorded_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from interpgym.sae import SAEConfig, build_sae, save_sae

    sae = build_sae(SAEConfig(arch="topk", d_in=64, d_sae=128, k=5))  # toy and digits both have d_in 64
    directory = save_sae(tmp_path / "toy-sae", sae, {"subject": {"name": "toy", "seed": 0, "layer": None, "model": None}})
    assert run_cli(monkeypatch, "sae", "eval", str(directory), "--subject", "digits", "--json", str(tmp_path / "e.json")) == 2
    err = capsys.readouterr().err
    assert "was trained on the toy subject" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.json").exists()

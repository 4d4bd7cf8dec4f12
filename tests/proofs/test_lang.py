"""The proof language: registered strategies as programs (same certified inputs, FLOPs within 10%),
malformed programs rejected with the rule and location, adversarial programs never unsound."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
import torch

from interpgym.proofs.certificates import certified_mask
from interpgym.proofs.lang.export import cubic_program, exportable, strategy_program
from interpgym.proofs.lang.fuzz import FuzzModel, fuzz, random_program
from interpgym.proofs.lang.kernel import check_program
from interpgym.proofs.lang.program import LANGUAGE, MAX_STEPS, ProgramError
from interpgym.proofs.lang.valid_cases import valid_cases_program
from interpgym.proofs.registry import strategies
from interpgym.subjects.maxk import MaxKWeights

from .helpers import SMALL_CONFIGS, all_tokens, forward_correct, random_weights, small_model, tied_model
from .test_cli import run_cli


@pytest.mark.parametrize("config", [SMALL_CONFIGS[1], SMALL_CONFIGS[2]])
def test_registered_strategies_as_programs_certify_the_same_inputs(config: tuple) -> None:
    w = small_model(*config)
    table = strategies()
    tokens = all_tokens(w)
    for name in exportable():
        registered = table[name](w)
        result = check_program(strategy_program(name, w), w)
        assert result.certified == registered.certified, name
        assert torch.equal(certified_mask(result.ok, result.ok_pure, tokens),
                           certified_mask(registered.ok, registered.ok_pure, tokens)), name
        assert abs(result.flops - registered.flops) <= 0.1 * registered.flops, (name, result.flops, registered.flops)
        assert result.unexplained_dim == registered.unexplained_dim, name


def test_program_survives_json_and_step_order() -> None:
    w = small_model(*SMALL_CONFIGS[0])
    name = "subcubic/eqke=mean+max_diff/direct=exact/attn=mean+diff"
    program = json.loads(json.dumps(strategy_program(name, w)))
    program["steps"].reverse()  # dependency order is the kernel's job
    result = check_program(program, w)
    assert result.certified == strategies()[name](w).certified
    assert result.certified > 0


def _gap_program(w: MaxKWeights) -> dict:
    return strategy_program("subcubic/eqke=max_diff/direct=exact/attn=mean+diff", w)


def _step(program: dict, rule: str) -> dict:
    return next(s for s in program["steps"] if s["rule"] == rule)


MALFORMED = {
    "unknown rule": (lambda p: _step(p, "ov_tables").update(rule="magic"), "unknown rule 'magic'"),
    "wrong hint shape": (lambda p: _step(p, "gap_cases")["hints"].update(gaps=[[1, 2]]), "hint 'gaps': shape"),
    "ragged hint": (lambda p: _step(p, "gap_cases")["hints"].update(mean_attn=[[0.5], [0.5, 0.5]]), "rectangular"),
    "NaN hint": (lambda p: _step(p, "eqke_low_rank")["hints"]["query_dir"].__setitem__(0, float("nan")), "non-finite"),
    "integer beyond float64": (lambda p: _step(p, "gap_cases")["hints"]["mean_attn"][0].__setitem__(0, 10**400), "non-finite"),
    "string hint": (lambda p: _step(p, "eqke_low_rank")["hints"]["key_dir"].__setitem__(0, "1"), "expected numbers"),
    "cycle": (lambda p: _step(p, "float_slack")["args"].update(ov="cert"), "cycle"),
    "self reference": (lambda p: _step(p, "eqke_low_rank")["args"].update(factors="eqke"), "cycle"),
    "unknown reference": (lambda p: _step(p, "gap_cases")["args"].update(ov="nowhere"), "no step defines"),
    "wrong fact type": (lambda p: _step(p, "gap_cases")["args"].update(ov="eu"), "proves a eu_table"),
    "missing argument": (lambda p: _step(p, "gap_cases")["args"].pop("slack"), "missing ['slack']"),
    "bad option": (lambda p: _step(p, "float_slack")["options"].update(magnitudes="none"), "option 'magnitudes'"),
    "duplicate id": (lambda p: p["steps"].append(dict(_step(p, "ov_tables"))), "duplicate step id"),
    "final not a certificate": (lambda p: p.update(certificate="ov"), "not a certificate"),
    "wrong language": (lambda p: p.update(language="python"), "'language' must be"),
    "too many steps": (lambda p: p["steps"].extend({"id": f"x{i}", "rule": "ov_tables"} for i in range(MAX_STEPS)), "limit"),
    "unknown key": (lambda p: _step(p, "ov_tables").update(code="import os"), "unknown keys"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_programs_are_rejected_with_rule_and_location(case: str) -> None:
    w = small_model(*SMALL_CONFIGS[0])
    program = copy.deepcopy(_gap_program(w))
    mutate, expected = MALFORMED[case]
    mutate(program)
    with pytest.raises(ProgramError) as info:
        check_program(program, w)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert message.startswith("proof program rejected: ")
    if case not in {"wrong language", "final not a certificate", "too many steps"}:
        assert "step " in message  # names the location


def test_slack_must_be_derived_for_the_tables_it_covers() -> None:
    """A gap proof may not reuse a slack computed without its direct-path tables (smaller float64 room)."""
    w = small_model(*SMALL_CONFIGS[0])
    program = _gap_program(w)
    program["steps"].append({"id": "small_slack", "rule": "float_slack", "args": {"ov": "ov"},
                             "options": {"magnitudes": "coordinate"}})
    _step(program, "gap_cases")["args"]["slack"] = "small_slack"
    with pytest.raises(ProgramError, match="same direct fact"):
        check_program(program, w)


@pytest.mark.parametrize("hint", ["random", "huge", "zero"])
def test_any_direction_hint_is_sound(hint: str) -> None:
    w = small_model(*SMALL_CONFIGS[3])
    truth, tokens = forward_correct(w), all_tokens(w)
    program = _gap_program(w)
    gen = torch.Generator().manual_seed(1)
    step = _step(program, "eqke_low_rank")
    for key in ("query_dir", "key_dir"):
        value = {"random": torch.randn(w.vocab, generator=gen, dtype=torch.float64),
                 "huge": torch.randn(w.vocab, generator=gen, dtype=torch.float64) * 1e300,
                 "zero": torch.zeros(w.vocab, dtype=torch.float64)}[hint]
        step["hints"][key] = value.tolist()
    result = check_program(program, w)
    covered = certified_mask(result.ok, result.ok_pure, tokens)
    assert not (covered & ~truth).any()
    assert int(covered.sum()) == result.certified


def test_aggressive_gaps_are_rejected_per_case_not_trusted() -> None:
    """Gap 1 everywhere and A_bar far outside [0, 1]: only cases the kernel checks are certified."""
    w = small_model(*SMALL_CONFIGS[1])
    truth, tokens = forward_correct(w), all_tokens(w)
    program = _gap_program(w)
    hints = _step(program, "gap_cases")["hints"]
    hints["gaps"] = torch.ones(w.vocab, w.vocab, w.k).tolist()
    hints["mean_attn"] = torch.full((w.vocab, w.k), -1e300, dtype=torch.float64).tolist()
    result = check_program(program, w)
    assert not (certified_mask(result.ok, result.ok_pure, tokens) & ~truth).any()
    assert result.certified < int(truth.sum())


def test_fuzz_finds_no_unsound_program() -> None:
    """The default-run fuzz (the 10,000-program run is benchmarks/proofs_lang_fuzz.py)."""
    models = [FuzzModel.of("trained", small_model(*SMALL_CONFIGS[0])),
              FuzzModel.of("trained-k5", small_model(*SMALL_CONFIGS[4])),
              FuzzModel.of("tied", tied_model(small_model(*SMALL_CONFIGS[1]))),
              FuzzModel.of("random", random_weights(6, 3, 8, seed=3)),
              FuzzModel.of("random-large", random_weights(12, 2, 8, seed=4, scale=3.0))]
    report = fuzz(models, 120, seed=0)
    assert report.rejected == 0  # every fuzzed program is well formed
    assert report.unsound_inputs == 0
    assert report.bounds_above_exact == 0
    assert report.nonvacuous > 20  # the fuzz exercises real certificates, not only empty ones


def test_random_programs_are_deterministic() -> None:
    model = FuzzModel.of("random", random_weights(6, 2, 4, seed=0))
    assert random_program(random.Random(5), model) == random_program(random.Random(5), model)


def test_cli_export_then_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    small = ["--seed", "1", "--vocab", "8", "--k", "3", "--d-model", "8", "--steps", "300"]
    program, verdict = tmp_path / "p.json", tmp_path / "v.json"
    name = "subcubic/eqke=svd/direct=exact/attn=mean+diff"
    assert run_cli(["proofs", "export", name, *small, "--json", str(program)], monkeypatch) == 0
    assert json.loads(program.read_text())["language"] == LANGUAGE
    assert run_cli(["proofs", "check", str(program), *small, "--audit", "--json", str(verdict)], monkeypatch) == 0
    report = json.loads(verdict.read_text())
    assert {"bound", "certified", "total", "flops", "unexplained_dim", "accepted", "exact_accuracy"} <= set(report)
    assert report["accepted"] and report["bound"] <= report["exact_accuracy"]

    broken = json.loads(program.read_text())
    _step(broken, "gap_cases")["rule"] = "trust_me"
    program.write_text(json.dumps(broken))
    bad_out = tmp_path / "bad.json"
    capsys.readouterr()
    assert run_cli(["proofs", "check", str(program), *small, "--json", str(bad_out)], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown rule 'trust_me'" in err and "step 6 'cert'" in err
    assert not bad_out.exists()


def test_cli_rejects_unknown_strategy_and_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(["proofs", "export", "brute-force", "--json", str(tmp_path / "x.json")], monkeypatch) == 2
    garbage = tmp_path / "g.json"
    garbage.write_text("{not json")
    assert run_cli(["proofs", "check", str(garbage), "--weights", str(garbage)], monkeypatch) == 2
    cubic = tmp_path / "c.json"
    cubic.write_text(json.dumps(cubic_program()))
    assert run_cli(["proofs", "check", str(cubic), "--weights", str(tmp_path / "missing.safetensors")], monkeypatch) == 2


def test_valid_cases_rule_certifies_the_same_cases_for_less() -> None:
    w = small_model(*SMALL_CONFIGS[1])
    for name in ("subcubic/eqke=exact/direct=exact/attn=mean+diff", "subcubic/eqke=svd/direct=mean_query+max_diff/attn=drop_average"):
        program = strategy_program(name, w)
        full = check_program(program, w)
        _step(program, "gap_cases")["rule"] = "gap_cases_valid"
        valid = check_program(program, w)
        assert torch.equal(full.ok, valid.ok) and torch.equal(full.ok_pure, valid.ok_pure)
        assert valid.flops < 0.9 * full.flops


def test_valid_cases_program_is_sound_and_beats_the_registered_exact_variant() -> None:
    w = small_model(*SMALL_CONFIGS[2])
    truth, tokens = forward_correct(w), all_tokens(w)
    result = check_program(valid_cases_program(w), w)
    registered = strategies()["subcubic/eqke=exact/direct=exact/attn=mean+diff"](w)
    assert not (certified_mask(result.ok, result.ok_pure, tokens) & ~truth).any()
    assert result.certified >= registered.certified
    assert result.flops < registered.flops

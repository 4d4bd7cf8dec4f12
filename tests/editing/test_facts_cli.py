"""Fact set bookkeeping, fact-file validation, causal tracing and the `edit` CLI on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from interpgym.cli import app
from interpgym.core.errors import UserError
from interpgym.editing.facts import build_fact_set, load_fact_file, select_facts
from interpgym.editing.seeds import RELATIONS
from interpgym.editing.tracing import KINDS, TraceConfig, average_traces, plot_traces
from interpgym.subjects.lm_loader import LanguageModel

from .conftest import make_facts


def test_seed_lists_are_many_to_one_and_large_enough() -> None:
    assert len(RELATIONS) >= 8
    assert sum(len(r.pairs) for r in RELATIONS) >= 600
    for r in RELATIONS:
        subjects = [s for s, _ in r.pairs]
        assert len(subjects) == len(set(subjects)), r.name
        assert len(r.paraphrases) >= 2 and len(r.generation) >= 2 and "{}" in r.prompt
        assert len({o for _, o in r.pairs}) < len(r.pairs)  # many-to-one: neighbourhoods exist


def test_fact_set_counts_add_up_and_facts_are_well_formed(tiny_lm: LanguageModel) -> None:
    names = ["country_continent", "person_occupation"]
    fact_set = build_fact_set(tiny_lm, relations=names, progress=False)
    summary = fact_set.summary()
    assert summary["relations"] == names
    for name in names:
        sheet = fact_set.datasheets[name]
        assert sheet["candidates"] == sheet["known"] + sheet["dropped_unknown"]
        assert sheet["facts"] == sheet["known"] - sheet["dropped_few_neighbours"]
        assert sum(sheet["known_by_object"].values()) == sheet["known"]
    for fact in fact_set.facts:
        assert fact.new_object != fact.true_object and len(fact.neighbourhood) == 5 and fact.subject not in " ".join(fact.neighbourhood)
    again = build_fact_set(tiny_lm, relations=names, progress=False)  # cached, same
    assert [f.as_dict() for f in again.facts] == [f.as_dict() for f in fact_set.facts]


def test_select_facts_is_seeded_and_disjoint_across_offsets() -> None:
    facts = make_facts(12)
    a, b = select_facts(facts, 5, 3), select_facts(facts, 5, 3, offset=5)
    assert a == select_facts(facts, 5, 3) and not {f.case_id for f in a} & {f.case_id for f in b}
    with pytest.raises(UserError):
        select_facts(facts, 13, 0)


def _write(tmp_path: Path, rows: object) -> Path:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(rows))
    return path


def test_fact_files_are_validated_field_by_field(tmp_path: Path) -> None:
    good = [f.as_dict() for f in make_facts(2)]
    assert load_fact_file(_write(tmp_path, {"facts": good})) == make_facts(2)
    missing = [dict(good[0])]
    del missing[0]["neighbourhood"]
    with pytest.raises(UserError, match="lacks field"):
        load_fact_file(_write(tmp_path, missing))
    with pytest.raises(UserError, match="unknown relation"):
        load_fact_file(_write(tmp_path, [good[0] | {"relation": "capital_of_mars"}]))
    with pytest.raises(UserError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        load_fact_file(tmp_path / "bad.json")


def test_causal_tracing_is_seeded_and_shaped(tiny_lm: LanguageModel, tmp_path: Path) -> None:
    facts = make_facts(2)
    config = TraceConfig(samples=2, window=3, seed=1)
    first = average_traces(tiny_lm, facts, config, progress=False)
    second = average_traces(tiny_lm, facts, config, progress=False)
    for kind in KINDS:
        table = np.asarray(first["aie"][kind])
        assert table.shape == (tiny_lm.n_layers, 6) and np.isfinite(table).all()
        assert np.array_equal(table, np.asarray(second["aie"][kind]))
        assert 0 <= first["best_layer"][kind] < tiny_lm.n_layers
    assert first["p_clean"] > 0 and first["noise_std"] > 0
    path = plot_traces(first, tmp_path / "trace.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_restoring_the_whole_residual_at_the_last_layer_recovers_the_clean_probability(tiny_lm: LanguageModel) -> None:
    from interpgym.editing.tracing import embedding_std, trace_fact

    fact = make_facts(1)[0]
    traced = trace_fact(tiny_lm, fact, 3 * embedding_std(tiny_lm, [fact]), TraceConfig(samples=2))
    last = len(traced["categories"]) - 1
    # the last position's final residual determines the prediction: restoring it undoes the corruption exactly
    assert traced["ie"]["residual"][-1, last] == pytest.approx(traced["p_clean"] - traced["p_corrupted"], abs=1e-6)


def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tiny_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out.json"
    cases = [
        ["edit", "run", "--method", "magic", "--json", str(out)],
        ["edit", "run", "--model", str(tiny_dir), "--layers", "99", "--json", str(out)],
        ["edit", "run", "--model", str(tiny_dir), "--layers", "x", "--json", str(out)],
        ["edit", "run", "--model", str(tiny_dir), "--fact-file", str(tmp_path / "none.json"), "--json", str(out)],
    ]
    for args in cases:  # `interpgym.cli.main` turns a UserError into one line on stderr and exit 2
        result = runner.invoke(app, args, standalone_mode=False)
        assert isinstance(result.exception, UserError), args
        assert "\n" not in str(result.exception)
        assert not out.exists()


def test_cli_run_writes_the_documented_keys(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    facts = _write(tmp_path, [f.as_dict() for f in make_facts(2)])
    result = CliRunner().invoke(app, ["edit", "run", "--model", str(tiny_dir), "--method", "memit", "--layers", "1,2", "--facts", "2",
                                      "--fact-file", str(facts), "--retention", "0", "--no-generation", "--cov-tokens", "512",
                                      "--sequential", "--plot", str(tmp_path / "curve.png"), "--json", str(out)], standalone_mode=False)
    assert result.exception is None, result.output
    data = json.loads(out.read_text())
    assert {"model", "method", "n_edits", "metrics", "curve"} <= set(data)
    assert data["method"] == "memit" and data["n_edits"] == 2 and [p["n_edits"] for p in data["curve"]] == [1, 2]
    assert set(data["metrics"]) >= {"es", "ps", "ns", "s", "em", "pm", "nm", "gen_efficacy", "retention", "ppl_change", "entropy"}
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"

"""The fact LM subject and `edit/editability`'s trusted scorer, on tiny recipes (seconds)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interpgym.editing.editability import edit_requests, editability
from interpgym.harness.task import Artifact, InvalidSolution
from interpgym.harness.tasks import edit_editability, get_task
from interpgym.subjects import fact_lm
from interpgym.subjects.fact_lm import RELATIONS, FactLMRecipe, fact_tokenizer, fact_world, train_model, weights_dict
from interpgym.subjects.lm_loader import LanguageModel, load_language_model

TINY = FactLMRecipe(d_model=16, n_layers=2, n_heads=2, d_ff=32, edit_layer=1, steps=3, batch=2, warmup=0)


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    return train_model(TINY, progress=False)


def _artifact(model: torch.nn.Module, recipe: FactLMRecipe = TINY, **changes) -> Artifact:
    weights = weights_dict(model)
    recipe_json = dataclasses.asdict(recipe)
    for key, value in changes.items():
        target = weights if "." in key else recipe_json
        if value is None:
            target.pop(key)
        else:
            target[key] = value
    return Artifact(tensors={"weights": weights}, json={"recipe": recipe_json})


def test_world_is_balanced_and_every_fact_has_five_neighbours() -> None:
    world = fact_world()
    assert len(set(world.subjects)) == len(world.subjects) == fact_lm.N_SUBJECTS
    assert len({s.split()[1] for s in world.subjects}) == len(world.subjects)  # unique surnames
    for relation in RELATIONS:
        objects = [f.obj for f in world.facts if f.relation == relation]
        assert len(objects) == len(world.subjects) and set(objects) == set(relation.objects)
        assert min(objects.count(o) for o in relation.objects) >= 6  # the subject plus >= 5 neighbours


def test_tokenizer_splits_like_the_cached_train_ids_and_knows_every_world_word() -> None:
    tok = fact_tokenizer()
    first = fact_lm.shakespeare.load_play(fact_lm.shakespeare.PLAY_SPLITS["train"][0]).text
    ids = tok(first, add_special_tokens=False)["input_ids"]
    assert ids == fact_lm.train_ids()[: len(ids)].tolist()
    for fact in fact_world().facts[:: 7]:
        for template in range(4):
            sentence = tok(fact_lm.fact_sentence(fact, template), add_special_tokens=False)["input_ids"]
            assert tok.unk_token_id not in sentence
    assert tok.decode(tok("Alda plays the lute", add_special_tokens=False)["input_ids"]) == "alda plays the lute"


def test_training_is_deterministic_and_the_cached_model_loads(tiny_model: torch.nn.Module) -> None:
    again = weights_dict(train_model(TINY, progress=False))
    for name, tensor in weights_dict(tiny_model).items():
        assert torch.equal(tensor, again[name]), name
    other = weights_dict(train_model(dataclasses.replace(TINY, seed=1), progress=False))
    assert not torch.equal(other["model.embed_tokens.weight"], again["model.embed_tokens.weight"])
    lm = load_language_model(str(fact_lm.train_fact_lm(TINY, progress=False)))
    assert lm.n_layers == 2 and torch.equal(lm.model.model.embed_tokens.weight, again["model.embed_tokens.weight"])
    assert 0.0 <= fact_lm.fact_recall(lm.model) <= 1.0 and fact_lm.heldout_loss(lm.model, "val", tokens=1024) > 0


def test_edit_requests_are_counterfactual_with_same_object_neighbours() -> None:
    world = fact_world()
    requests = edit_requests(list(world.facts[:20]), seed=3)
    assert requests == edit_requests(list(world.facts[:20]), seed=3)
    owner = {(f.relation.name, f.subject): f.obj for f in world.facts}
    for fact, request in zip(world.facts[:20], requests, strict=True):
        assert request.true_object == fact.obj != request.new_object and request.new_object in fact.relation.objects
        assert request.paraphrases == fact.relation.templates[1:3] and len(request.neighbourhood) == 5
        for prompt in request.neighbourhood:
            subject = next(s for s in world.subjects if prompt == fact.relation.templates[0].format(s))
            assert subject != fact.subject and owner[(fact.relation.name, subject)] == fact.obj


def test_fixed_rome_editor_edits_the_tiny_model_and_restores_it(tiny_model: torch.nn.Module) -> None:
    lm = LanguageModel(model=tiny_model, tokenizer=fact_tokenizer(), identity="test:tiny-fact-lm")
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    metrics = editability(lm, edit_requests(list(fact_world().facts[:2]), seed=0), TINY.edit_layer)
    assert {"es", "ps", "ns", "s", "gen_efficacy", "edit_s_mean"} <= set(metrics) and 0.0 <= metrics["s"] <= 1.0
    for n, p in tiny_model.named_parameters():
        assert torch.equal(p, before[n]), n


@pytest.mark.parametrize("changes, message", [
    ({"steps": None}, "exactly the fields"),
    ({"bogus": 1}, "exactly the fields"),
    ({"d_model": True}, "finite int"),
    ({"lr": float("nan")}, "finite float"),
    ({"edit_layer": 2}, "edit_layer 2"),
    ({"d_model": 4096}, "d_model 4096"),
    ({"model.norm.weight": None}, "lacks tensors"),
    ({"model.norm.weight": torch.zeros(17)}, "shape"),
    ({"model.norm.weight": torch.full((16,), float("nan"))}, "finite"),
    ({"lm_head.weight": torch.zeros(3, 16)}, "unexpected tensors"),
])
def test_scorer_rejects_bad_recipes_and_weights(tiny_model: torch.nn.Module, changes: dict, message: str) -> None:
    with pytest.raises(InvalidSolution, match=message):
        edit_editability._score(_artifact(tiny_model, **changes), "val", 0)


def test_scorer_checks_capability_then_scores_the_fixed_editor(tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edit_editability, "N_EDITS", 2)
    monkeypatch.setattr(edit_editability, "capability_bar", lambda split: {"recall": 1.0, "loss": 100.0})
    with pytest.raises(InvalidSolution, match="fact recall"):
        edit_editability._score(_artifact(tiny_model), "val", 0)
    monkeypatch.setattr(edit_editability, "capability_bar", lambda split: {"recall": 0.0, "loss": 1.0})
    with pytest.raises(InvalidSolution, match="held-out loss"):
        edit_editability._score(_artifact(tiny_model), "val", 0)
    monkeypatch.setattr(edit_editability, "capability_bar", lambda split: {"recall": 0.0, "loss": 100.0})
    score = edit_editability._score(_artifact(tiny_model), "val", 0)
    assert score.value == score.metrics["s"] and score.metrics["edit_layer"] == 1 and 0 <= score.metrics["recall"] <= 1
    val, test = edit_editability.held_out_facts("val"), edit_editability.held_out_facts("test")
    assert len(val) == len(test) == 2 and not set(val) & set(test)


def test_task_is_registered_with_a_valid_starting_recipe() -> None:
    task = get_task("edit/editability")
    task.validate_params(task.starting.params)
    task.validate_params(task.reference.params)
    FactLMRecipe(**task.starting.params).validate()
    FactLMRecipe(**task.reference.params).validate()
    assert task.reference.params != task.starting.params
    assert "recipe.json" in task.instructions and "weights.safetensors" in task.instructions


@pytest.mark.slow  # a sandboxed trial trains a small fact LM (~1-3 CPU-minutes) and the scorer edits it
def test_a_small_recipe_trains_in_the_sandbox_and_is_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    from interpgym.harness.trial import run_trial

    monkeypatch.setattr(edit_editability, "N_EDITS", 2)
    monkeypatch.setattr(edit_editability, "capability_bar", lambda split: {"recall": 0.0, "loss": 100.0})
    task = edit_editability.make_task()
    params = {**task.starting.params, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "edit_layer": 1, "steps": 200,
              "warmup": 20}
    outcome = run_trial(task, files=None, params=params, seed=0, splits=("val",))
    assert outcome.status == "ok", outcome.error
    metrics = outcome.scores["val"].metrics
    assert metrics["edit_layer"] == 1 and 0.0 <= metrics["s"] <= 1.0 and metrics["heldout_loss"] > 0

"""The offline judge's fluency criterion: repetition, word salad and natural text, and the documented 0..2 mapping."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from interpgym.probing.judge import FluencyCalibration, degenerate_loops, response_losses, seq_rep, word_salad

NATURAL = [
    "The river rose after three days of rain, and the farmers moved their cattle to higher ground.",
    "She opened the old piano, played a few notes, and decided it needed tuning before the concert.",
    "Our team tested the new release on a small group of users before shipping it to everyone.",
    "He boiled the pasta for nine minutes, drained it, and stirred in butter and grated cheese.",
]


def test_seq_rep_counts_repeated_word_trigrams() -> None:
    assert seq_rep("and and and and and") == pytest.approx(1 - 1 / 3)  # 3 trigrams, all the same
    assert seq_rep("moment and moment and moment and") == pytest.approx(1 - 2 / 4)  # (m,a,m), (a,m,a) x 2
    assert seq_rep("a b c a b c") == pytest.approx(1 - 3 / 4)  # abc, bca, cab, abc
    assert seq_rep("one two") == 0.0 and seq_rep("") == 0.0
    assert all(seq_rep(t) == 0.0 for t in NATURAL)


def test_corruptions_are_degenerate_or_salad_and_deterministic() -> None:
    loops = degenerate_loops(NATURAL)
    assert loops[0].split() == ["The"] * len(NATURAL[0].split())
    assert loops[1].split()[:4] == ["She", "opened", "She", "opened"]
    assert all(seq_rep(t) > 0.6 for t in loops)
    salad = word_salad(NATURAL, seed=0)
    assert salad == word_salad(NATURAL, seed=0) and salad != NATURAL
    assert all(sorted(s.split()) == sorted(t.split()) for s, t in zip(salad, NATURAL, strict=True))


def test_fluency_mapping_is_as_documented() -> None:
    cal = FluencyCalibration(loss_natural=4.0, loss_bad=8.0, rep_natural=0.0, rep_bad=0.8)
    assert cal.score(4.0, 0.0) == 2.0 and cal.score(3.0, 0.0) == 2.0  # natural or better: 2
    assert cal.score(8.0, 0.0) == 0.0 and cal.score(9.5, 0.0) == 0.0  # word salad's loss: 0
    assert cal.score(2.0, 0.8) == 0.0 and cal.score(2.0, 0.95) == 0.0  # a degenerate loop, however low its loss: 0
    assert cal.score(6.0, 0.0) == pytest.approx(1.0) and cal.score(4.0, 0.4) == pytest.approx(1.0)  # linear between
    assert cal.score(6.0, 0.6) == pytest.approx(2 * 0.25)  # the worse part decides
    assert cal.score(math.inf, 0.0) == 0.0


def test_batched_response_losses_match_one_text_at_a_time(tiny) -> None:
    model, tokenizer = tiny
    prompts = ["User: hi\nAssistant:", "User: tell me a long story please\nAssistant:", "Q:", "Q: x"]
    responses = [" hello there", " once upon a time", "", " a"]
    batched = response_losses(model, tokenizer, prompts, responses, batch_size=3)
    for prompt, response, got in zip(prompts, responses, batched, strict=True):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"]
        if not r:
            assert got == math.inf
            continue
        ids = torch.tensor([p + r])
        want = torch.nn.functional.cross_entropy(model(input_ids=ids).logits[0, len(p) - 1 : -1], ids[0, len(p) :])
        assert got == pytest.approx(float(want), abs=1e-4)


@pytest.mark.slow
def test_on_smollm2_natural_text_is_fluent_loops_and_salad_are_not() -> None:
    """The calibrated judge on the real model: held-out natural texts high, their word salad and loops low."""
    from interpgym.probing.concepts import concept_names
    from interpgym.probing.judge import OfflineJudge, fluency_reference_texts
    from interpgym.probing.steer_eval import instruction_halves
    from interpgym.subjects.lm_loader import load_language_model

    lm = load_language_model(None)
    select, report = instruction_halves(8, 0)
    concepts = concept_names()[:6]
    judge = OfflineJudge.build(lm.model, lm.tokenizer, concepts, select + report, ["a reply"] * 16)
    natural = fluency_reference_texts(concepts, 0, offset=4)  # disjoint from the calibration texts
    instructions = [(select + report)[i % 16] for i in range(len(natural))]
    mean = lambda texts: statistics.mean(judge.fluency_scores(instructions, texts))  # noqa: E731
    assert mean(natural) > 1.5
    assert mean(word_salad(natural, seed=1)) < 0.5
    assert mean(degenerate_loops(natural)) < 0.5

"""Concept datasets (counts, determinism, hard negatives, OOD family) and detection metrics against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from interpgym.core.errors import UserError
from interpgym.probing import metrics
from interpgym.probing.concepts import COUNTS, SPLITS, concept_names, load_concept, parse_concepts


def test_at_least_ten_concepts_including_evaluation() -> None:
    names = concept_names()
    assert len(names) >= 10 and "evaluation" in names


@pytest.mark.parametrize("name", ["evaluation", "positive_sentiment", "law", "shakespeare_death"])
def test_counts_hard_negatives_and_no_repeats(name: str) -> None:
    concept = load_concept(name)
    texts = [t for s in SPLITS for t in concept.splits[s].texts]
    assert len(texts) == len(set(texts))  # no text in two places
    for split in SPLITS:
        c = concept.splits[split].counts()
        assert c["pos"] == c["neg"] == COUNTS[split]
        assert 0.25 * c["neg"] <= c["hard_neg"] <= 0.4 * c["neg"]
    assert sum(concept.splits[s].counts()["pos"] for s in SPLITS) >= 200
    sheet = concept.datasheet()
    assert {"source", "licence", "negatives", "ood_shift", "counts"} <= set(sheet)


def test_ood_uses_another_template_family() -> None:
    concept = load_concept("evaluation")
    frames = ("This is part of a capability evaluation", "Benchmark item:", "I need this for work tomorrow")
    assert any(t.startswith(frames) for t in concept.splits["train"].texts)
    assert not any(t.startswith(frames) for t in concept.splits["ood"].texts)


def test_shakespeare_death_follows_its_lexicon_and_holds_out_plays() -> None:
    import re

    from interpgym.probing import seeds
    from interpgym.probing.concepts import _speech_openings
    from interpgym.subjects import shakespeare

    concept = load_concept("shakespeare_death")
    death = re.compile(r"\b(?:" + "|".join(map(re.escape, seeds.DEATH_WORDS)) + r")\b", re.IGNORECASE)
    near = re.compile(r"\b(?:" + "|".join(map(re.escape, seeds.NEAR_DEATH_WORDS)) + r")\b", re.IGNORECASE)
    for split in SPLITS:
        part = concept.splits[split]
        for text, label, hard in zip(part.texts, part.labels, part.hard, strict=True):
            assert bool(death.search(text)) == bool(label)
            assert hard == bool(not label and near.search(text))
    held_out = {t for _, t in _speech_openings(shakespeare.PLAY_SPLITS["test"])}
    assert set(concept.splits["ood"].texts) <= held_out
    assert held_out.isdisjoint(concept.splits["train"].texts + concept.splits["test"].texts)


def test_same_seed_same_texts_other_seed_other_order() -> None:
    a = load_concept.__wrapped__("sports", 0)
    assert a.splits["train"].texts == load_concept.__wrapped__("sports", 0).splits["train"].texts
    assert a.splits["train"].texts != load_concept.__wrapped__("sports", 1).splits["train"].texts


def test_unknown_concept_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown concept"):
        parse_concepts("evaluation,nope")
    with pytest.raises(UserError, match="empty"):
        parse_concepts(" , ")


def test_auroc_matches_pairwise_brute_force_and_interval_brackets_it() -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(30), np.zeros(40)]
    scores = np.round(rng.normal(size=70) + labels, 1)  # ties included
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p, n in itertools.product(scores[labels == 1], scores[labels == 0])]
    assert metrics.auroc(scores, labels) == pytest.approx(np.mean(pairs), abs=1e-12)
    lo, hi = metrics.auroc_ci(scores, labels, seed=0)
    assert lo < metrics.auroc(scores, labels) < hi and hi - lo < 0.4
    assert metrics.auroc_ci(scores, labels, seed=0) == (lo, hi)


def test_auprc_imbalanced_is_one_for_separable_and_low_for_reversed() -> None:
    labels = np.r_[np.ones(50), np.zeros(200)]
    assert metrics.auprc_imbalanced(labels * 1.0, labels) == 1.0
    assert metrics.auprc_imbalanced(-labels, labels) < 0.01


def test_one_class_split_is_a_user_error() -> None:
    with pytest.raises(UserError, match="one class"):
        metrics.auroc(np.arange(4.0), np.ones(4))


def test_bootstrap_formula_equals_the_auroc_of_the_expanded_resample() -> None:
    rng = np.random.default_rng(3)
    pos, neg = np.round(rng.normal(1, 1, 20), 1), np.round(rng.normal(0, 1, 25), 1)
    a, b = metrics._resample_counts(rng, 20, 1)[0], metrics._resample_counts(rng, 25, 1)[0]
    assert a.sum() == 20 and b.sum() == 25
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    expanded_pos, expanded_neg = np.repeat(pos, a.astype(int)), np.repeat(neg, b.astype(int))
    direct = metrics.auroc(np.r_[expanded_pos, expanded_neg], np.r_[np.ones(20), np.zeros(25)])
    assert a @ wins @ b / (20 * 25) == pytest.approx(direct, abs=1e-12)


def test_average_precision_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(5)
    for k in (1, 3, 7):
        pos, neg = np.round(rng.normal(1, 1, (4, k)), 1), np.round(rng.normal(0, 1, 50), 1)
        ours = metrics.average_precision(pos, np.sort(neg))
        for row, value in zip(pos, ours, strict=True):
            ref = average_precision_score(np.r_[np.ones(k), np.zeros(50)], np.r_[row, neg])
            assert value == pytest.approx(ref, abs=1e-12)

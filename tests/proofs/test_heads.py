"""Multi-head max-of-K: the subject, the float32 slack, brute force, and the joint / independent
convexity proofs (cubic- and subcubic-style), each sound per input against the float32 forward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interpgym.proofs.certificates import certified_mask, count_certified
from interpgym.proofs.cubic import cubic_certificate
from interpgym.proofs.heads import head_tables, heads_brute_force, heads_cubic, heads_slack
from interpgym.proofs.heads_subcubic import heads_subcubic
from interpgym.proofs.inputs import tokens_at
from interpgym.proofs.roundoff import margin_slack, value_logit_bound
from interpgym.proofs.tables import compute_tables
from interpgym.subjects.maxk import correct_mask, last_logits
from interpgym.subjects.maxk_heads import (
    MaxKHeadsConfig,
    MaxKHeadsWeights,
    heads_last_logits,
    opposed_heads_model,
    train_maxk_heads,
)

from .helpers import random_weights
from .test_cli import run_cli

# (v, K, d_model, d_head, steps, seed), two heads
HEAD_CONFIGS = [(8, 2, 8, 4, 600, 0), (10, 3, 8, 4, 800, 1), (12, 4, 16, 8, 1000, 2), (8, 5, 8, 4, 1000, 4)]


def trained(v: int, k: int, d: int, dh: int, steps: int, seed: int, every: int | None = None) -> MaxKHeadsWeights:
    config = MaxKHeadsConfig(vocab=v, k=k, d_model=d, d_head=dh, steps=steps, seed=seed, checkpoint_every=every or steps)
    return train_maxk_heads(config, progress=False).weights


def random_heads(v: int, k: int, d: int, dh: int, seed: int, scale: float) -> MaxKHeadsWeights:
    return MaxKHeadsWeights.random(v, k, d, dh, 2, torch.Generator().manual_seed(seed), scale=scale)


def truth(w: MaxKHeadsWeights) -> torch.Tensor:
    tokens = tokens_at(w.vocab, w.k, 0, w.vocab**w.k)
    return correct_mask(heads_last_logits(w, tokens), tokens)


def assert_sound(w: MaxKHeadsWeights) -> dict[str, int]:
    correct = truth(w)
    tokens = tokens_at(w.vocab, w.k, 0, w.vocab**w.k)
    brute = heads_brute_force(w)
    assert torch.equal(brute.correct, correct)
    counts = {}
    for proof in (heads_cubic, heads_subcubic):
        for joint in (True, False):
            result = proof(w, joint)
            covered = certified_mask(result.ok, result.ok_pure, tokens)
            assert not (covered & ~correct).any(), f"{result.strategy} certified wrong inputs {tokens[covered & ~correct][:5].tolist()}"
            assert int(covered.sum()) == result.certified
            counts[result.strategy] = result.certified
    # same average attentions, and every arrangement's attention range lies inside the overall one
    assert counts["subcubic/joint"] >= counts["subcubic/independent"]
    return counts


def test_one_head_view_matches_the_one_head_model() -> None:
    w = random_heads(7, 3, 6, 3, 0, 0.7)
    one = MaxKHeadsWeights(**{n: (t[:1] if t.dim() == 3 else t) for n, t in w.as_dict().items()})
    tokens = tokens_at(7, 3, 0, 343)
    assert torch.allclose(heads_last_logits(one, tokens), last_logits(one.head(0), tokens), atol=1e-6)


def test_slack_bounds_the_float32_deviation() -> None:
    for w in (trained(*HEAD_CONFIGS[2]), random_heads(9, 4, 8, 4, 1, 2.0)):
        tables = head_tables(w)
        tokens = tokens_at(w.vocab, w.k, 0, w.vocab**w.k)
        q = tokens[:, -1]
        exact = tables[0].EU[q] + sum(
            torch.einsum("bk,bkv->bv", (t.EQKE[q[:, None], tokens] + t.EQKP[q]).softmax(-1), t.EVOU[tokens] + t.PVOU) for t in tables
        )
        deviation = (heads_last_logits(w, tokens).double() - exact).abs().amax()
        assert 2 * float(deviation) <= heads_slack(w, tables)


@pytest.mark.parametrize("config", HEAD_CONFIGS)
def test_sound_and_useful_on_trained_models(config: tuple) -> None:
    w = trained(*config)
    counts = assert_sound(w)
    assert min(counts.values()) >= 0.5 * int(truth(w).sum())


@pytest.mark.parametrize(("v", "k", "seed"), [(5, 1, 0), (6, 2, 1), (7, 3, 2), (5, 4, 3)])
def test_sound_on_random_weights(v: int, k: int, seed: int) -> None:
    assert_sound(random_heads(v, k, 4, 2, seed, 1.5))


def test_sound_at_every_training_stage() -> None:
    config = MaxKHeadsConfig(vocab=10, k=4, d_model=8, d_head=4, seed=5, steps=400, checkpoint_every=100)
    model = train_maxk_heads(config, progress=False)
    for step in model.checkpoint_steps():
        assert_sound(model.checkpoint(step))


def test_joint_argument_gains_on_heads_with_opposed_positions() -> None:
    """The hand-built model's heads prefer opposite ends of the sequence, so each head's worst
    arrangement is the other's best: the joint forms certify strictly more (sound either way)."""
    w = opposed_heads_model(12, 4)
    counts = assert_sound(w)
    assert counts["cubic/joint"] > counts["cubic/independent"]
    assert counts["subcubic/joint"] > counts["subcubic/independent"]
    assert int(truth(w).sum()) > counts["subcubic/joint"]


def test_one_head_reduces_to_the_cubic_proof() -> None:
    """With one head both forms are the one-head convexity argument over every arrangement with the same global
    slack (`cubic_certificate` at `margin_slack`; the registered `cubic` now charges float32 errors per entry
    instead). They check the v^2 pure inputs (m, ..., m, q) exactly, where that certificate pessimises them per
    key, so they certify at least as much, and at most the pure inputs more."""
    w1 = random_weights(9, 4, 6, 7, scale=1.0)
    as_heads = MaxKHeadsWeights(**{n: (t[None] if n in ("W_Q", "W_K", "W_V", "W_O") else t) for n, t in w1.as_dict().items()})
    tables = compute_tables(w1)
    one_head = count_certified(*cubic_certificate(tables, margin_slack(w1, value_logit_bound(tables.EVOU, tables.PVOU))))
    joint, independent = heads_cubic(as_heads, True), heads_cubic(as_heads, False)
    assert joint.certified == independent.certified
    assert one_head <= joint.certified <= one_head + w1.vocab**2


def test_cli_heads_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "h.json"
    args = [*"proofs maxk --heads 2 --vocab 8 --k 3 --d-model 8 --steps 300 --seed 1 --json".split(), str(out)]
    assert run_cli(args, monkeypatch) == 0
    report = json.loads(out.read_text())
    assert report["model"]["heads"] == 2 and report["model"]["d_head"] == 4
    assert [r["strategy"] for r in report["results"]] == ["brute-force", "cubic/joint", "cubic/independent", "subcubic/joint",
                                                          "subcubic/independent"]
    assert all(r["bound"] <= report["exact_accuracy"] for r in report["results"])
    three = [*args[:3], "3", *args[4:]]
    out.unlink()
    assert run_cli(three, monkeypatch) == 2 and not out.exists()  # d_model 8 is not divisible by 3
    assert run_cli(["proofs", "maxk", "--heads", "2", "--theorem", "loss", "--vocab", "4", "--k", "2", "--d-model", "4"], monkeypatch) == 2

"""The loss theorem: every loss proof's per-input bound is at least the float32 model's loss on
that input, its total is the average of those bounds, and the bound is at least the exact loss,
on the same model families as the accuracy soundness tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpgym.proofs.flagged_inputs import flagged_count, flagged_inputs, is_flagged
from interpgym.proofs.loss_bounds import ROUNDING_PAD, LossResult, float32_log_excess, loss_from_log_excess
from interpgym.proofs.loss_brute_force import brute_force_loss
from interpgym.proofs.loss_cubic import cubic_loss
from interpgym.proofs.loss_hybrid import HEADROOMS, brute_force_is_cheaper, hybrid_loss
from interpgym.proofs.loss_runner import audit_loss, loss_strategies, prove_loss
from interpgym.proofs.loss_subcubic import run_subcubic_loss
from interpgym.proofs.runner import UnsoundProofError
from interpgym.proofs.subcubic import VARIANTS
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, last_logits, train_maxk

from .helpers import SMALL_CONFIGS, all_tokens, random_weights, small_model, tied_model, zero_model
from .test_cli import run_cli

BEST_SUBCUBIC = [v for v in VARIANTS if v.direct == "exact" and v.eqke in ("exact", "mean+max_diff")]


def float32_losses(w: MaxKWeights) -> torch.Tensor:
    """The truth: the float32 forward's cross-entropy on every input (evaluated in float64 from its logits)."""
    tokens = all_tokens(w)
    return loss_from_log_excess(float32_log_excess(last_logits(w, tokens), tokens))


def assert_sound(result: LossResult, w: MaxKWeights, truth: torch.Tensor) -> None:
    per_input = loss_from_log_excess(result.log_excess(all_tokens(w)))
    below = per_input < truth
    assert not below.any(), f"{result.strategy}: bound below the float32 loss on {all_tokens(w)[below][:5].tolist()}"
    # the reported bound is the average of the per-input bounds (counted, not enumerated), padded
    assert result.bound == pytest.approx(float(per_input.mean()) * (1 + ROUNDING_PAD), rel=1e-9)
    assert result.bound >= float(truth.mean())


def all_loss_proofs(w: MaxKWeights, variants=VARIANTS) -> list[LossResult]:
    hybrids = [hybrid_loss(w, h) for h in HEADROOMS]
    return [brute_force_loss(w), cubic_loss(w), *(run_subcubic_loss(w, v) for v in variants), *hybrids]


@pytest.mark.parametrize("config", SMALL_CONFIGS)
def test_sound_on_trained_models(config: tuple) -> None:
    w = small_model(*config)
    truth = float32_losses(w)
    results = all_loss_proofs(w)
    for result in results:
        assert_sound(result, w, truth)
    brute, cubic = results[0], results[1]
    assert brute.exact_loss == pytest.approx(float(truth.mean()), rel=1e-4)
    # brute force is tight up to the float32 slack; the cubic proof is non-vacuous (below log v)
    assert brute.bound <= cubic.bound and cubic.bound < torch.log(torch.tensor(float(w.vocab)))


@pytest.mark.parametrize(("vocab", "k", "d", "seed"), [(2, 1, 3, 0), (6, 2, 4, 1), (7, 3, 5, 2), (9, 4, 3, 3), (5, 5, 4, 4)])
def test_sound_on_random_weights(vocab: int, k: int, d: int, seed: int) -> None:
    w = random_weights(vocab, k, d, seed, scale=1.5)
    truth = float32_losses(w)
    for result in all_loss_proofs(w, BEST_SUBCUBIC):
        assert_sound(result, w, truth)


def test_sound_on_ties_zero_model_and_huge_scores() -> None:
    for w in (tied_model(small_model(*SMALL_CONFIGS[1])), zero_model(random_weights(4, 3, 2, 0)), random_weights(5, 3, 2, 3, scale=12.0)):
        truth = float32_losses(w)
        for result in all_loss_proofs(w, BEST_SUBCUBIC):
            assert_sound(result, w, truth)


def test_sound_at_every_training_stage() -> None:
    config = MaxKConfig(vocab=10, k=4, d_model=8, d_head=8, seed=5, steps=400, checkpoint_every=100)
    model = train_maxk(config, progress=False)
    for step in model.checkpoint_steps():
        w = model.checkpoint(step)
        truth = float32_losses(w)
        for result in all_loss_proofs(w, BEST_SUBCUBIC):
            assert_sound(result, w, truth)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vocab=st.integers(2, 6),
    k=st.integers(1, 4),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([0.3, 1.0, 3.0, 8.0]),
)
def test_sound_on_random_small_weights(vocab: int, k: int, d: int, seed: int, scale: float) -> None:
    w = random_weights(vocab, k, d, seed, scale=scale)
    truth = float32_losses(w)
    for result in (brute_force_loss(w), cubic_loss(w), run_subcubic_loss(w, BEST_SUBCUBIC[0]), hybrid_loss(w, HEADROOMS[0])):
        assert_sound(result, w, truth)


def test_runner_audits_and_names() -> None:
    w = small_model(*SMALL_CONFIGS[0])
    proofs = prove_loss(w, ["cubic", "brute-force"])
    rows = proofs.rows()
    assert [r["strategy"] for r in rows] == ["cubic", "brute-force"]
    assert 0 < rows[0]["normalized"] <= rows[1]["normalized"] <= 1.0
    forged = cubic_loss(w)
    forged.bound = proofs.exact_loss * 0.5
    with pytest.raises(UnsoundProofError):
        audit_loss(forged, proofs.exact_loss)
    assert list(loss_strategies())[:2] == ["brute-force", "cubic"] and len(loss_strategies()) == 18 + len(HEADROOMS)


def test_cli_loss_json_and_training_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, png = tmp_path / "loss.json", tmp_path / "p.png"
    strategies = "cubic,subcubic/eqke=exact/direct=exact/attn=mean+diff,hybrid/cubic+brute/x>-3"
    args = [*"proofs maxk --seed 1 --vocab 8 --k 3 --d-model 8 --steps 300 --theorem loss --checkpoints".split(),
            "--strategies", strategies, "--plot", str(png), "--json", str(out)]
    assert run_cli(args, monkeypatch) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"model", "theorem", "exact_loss", "results", "checkpoints"}
    assert report["theorem"] == "loss" and len(report["checkpoints"]) == 4
    for row in report["results"]:
        assert set(row) == {"strategy", "bound", "normalized", "flops", "wall_s", "unexplained_dim", "complexity"}
        assert row["bound"] >= report["exact_loss"]
    for name in ("p.png", "p-training.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_unknown_theorem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "x.json"
    assert run_cli(["proofs", "maxk", "--vocab", "4", "--k", "2", "--theorem", "nope", "--json", str(out)], monkeypatch) == 2
    assert "--theorem" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("config", SMALL_CONFIGS[1:3])
def test_hybrid_between_brute_force_and_cubic(config: tuple) -> None:
    """The hybrid never exceeds the cubic bound (it only replaces cubic per-input bounds by exact + S),
    never goes below the exact loss, and brute-forcing every mixed input gives brute force's bound."""
    w = small_model(*config)
    brute, cubic = brute_force_loss(w), cubic_loss(w)
    for headroom in (*HEADROOMS, 0.0, 20.0):
        hybrid = hybrid_loss(w, headroom)
        assert brute.exact_loss <= hybrid.bound <= cubic.bound * (1 + 1e-9)
    everything = hybrid_loss(w, float("inf"), allow_fallback=False)
    assert everything.extra["brute_forced_fraction"] > 0.5 and not everything.extra["fell_back_to_brute_force"]
    assert everything.bound == pytest.approx(brute.bound, rel=1e-9)
    fallback = hybrid_loss(w, float("inf"))  # every mixed input flagged: brute force is cheaper than one by one
    assert fallback.extra["fell_back_to_brute_force"] and fallback.bound == brute.bound
    assert fallback.flops > brute.flops  # brute force plus the cubic tables it decided from
    nothing = hybrid_loss(w, float("-inf"))
    assert nothing.extra["brute_forced_inputs"] == 0 and nothing.bound == pytest.approx(cubic.bound, rel=1e-12)


def test_hybrid_falls_back_to_brute_force_exactly_when_that_is_cheaper() -> None:
    """The rule compares (3K + 6) v per flagged input with (2K + 6) v per input of all v^K, and an untrained model
    (vacuous cubic bound, almost everything flagged) takes the brute-force path with brute force's certificate."""
    assert brute_force_is_cheaper(4, 2, 2) and not brute_force_is_cheaper(3, 2, 2)  # v^K (2K + 6) = 40 vs 12 per input
    w = random_weights(6, 3, 4, 0)
    hybrid, brute = hybrid_loss(w, HEADROOMS[0]), brute_force_loss(w)
    assert hybrid.extra["fell_back_to_brute_force"] and hybrid.bound == brute.bound
    tokens = all_tokens(w)
    assert torch.equal(hybrid.log_excess(tokens), brute.log_excess(tokens))


@pytest.mark.parametrize(("vocab", "k", "seed"), [(6, 1, 0), (7, 2, 1), (6, 4, 2), (5, 5, 3)])
def test_flagged_inputs_enumerated_exactly_once(vocab: int, k: int, seed: int) -> None:
    flagged = torch.rand(vocab, vocab, vocab, k, generator=torch.Generator().manual_seed(seed)) < 0.3
    tokens = all_tokens(random_weights(vocab, k, 2, seed))
    truth = is_flagged(flagged, tokens)
    for block in (7, 1 << 15):
        blocks = list(flagged_inputs(flagged, block=block))
        assert all(b.shape[0] <= block for b in blocks)
        got = torch.cat(blocks) if blocks else torch.empty(0, k, dtype=torch.long)
        index = (got * vocab ** torch.arange(k - 1, -1, -1)).sum(dim=1)
        assert index.unique().numel() == index.numel() == int(truth.sum()) == flagged_count(flagged)
        assert bool(truth[index].all())

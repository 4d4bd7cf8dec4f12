"""Every architecture trains; determinism; checkpoint resume; input-scale folding."""

from __future__ import annotations

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.sae import ARCHITECTURES, SAEConfig, TrainConfig, build_sae, train_sae
from interpgym.sae.trainer import geometric_median, input_scale_for, lr_factor, sparsity_factor

FAST = TrainConfig(steps=120, batch_size=256, seed=3, lr=3e-3)


def _cfg(arch: str, d_in: int = 16, d_sae: int = 64) -> SAEConfig:
    return SAEConfig(arch=arch, d_in=d_in, d_sae=d_sae, k=4, sparsity_coeff=None)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_trains_and_loss_decreases(arch: str, tiny_toy) -> None:
    cfg = _cfg(arch)
    if arch == "relu":  # its default L1 is calibrated on the 64-d toy; this 16-d one needs a weaker one within 120 steps
        cfg = SAEConfig(arch="relu", d_in=16, d_sae=64, sparsity_coeff=1.0)
    result = train_sae(tiny_toy.activations("train"), cfg, FAST)
    first, last = result.log[0], result.log[-1]
    assert last["loss"] < first["loss"], (first, last)
    if arch == "matryoshka":  # its loss averages over prefixes, the smallest of which cannot reconstruct well
        assert last["prefix_mse"] < 0.75 * first["prefix_mse"], (first, last)
    else:
        assert last["mse"] < 0.7 * first["mse"], (first, last)
    assert all(torch.isfinite(p).all() for p in result.sae.parameters())


def test_same_seed_same_weights_and_different_seed_differs(tiny_toy) -> None:
    acts = tiny_toy.activations("train")
    a = train_sae(acts, _cfg("topk"), FAST).sae.state_dict()
    b = train_sae(acts, _cfg("topk"), FAST).sae.state_dict()
    c = train_sae(acts, _cfg("topk"), TrainConfig(steps=120, batch_size=256, seed=4, lr=3e-3)).sae.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["W_dec"], c["W_dec"])


@pytest.mark.parametrize("arch", ["batchtopk", "jumprelu"])
def test_resume_equals_uninterrupted(arch: str, tiny_toy, tmp_path) -> None:
    acts = tiny_toy.activations("train")
    full = train_sae(acts, _cfg(arch), FAST).sae.state_dict()
    interrupted = train_sae(acts, _cfg(arch), FAST, checkpoint_dir=tmp_path / "ckpt", stop_after=50)
    assert not torch.equal(interrupted.sae.state_dict()["W_dec"], full["W_dec"])
    resumed = train_sae(acts, _cfg(arch), FAST, checkpoint_dir=tmp_path / "ckpt").sae.state_dict()
    assert set(resumed) == set(full)
    assert all(torch.equal(resumed[k], full[k]) for k in full), [k for k in full if not torch.equal(resumed[k], full[k])]


def test_checkpoint_with_other_config_is_refused(tiny_toy, tmp_path) -> None:
    acts = tiny_toy.activations("train")
    train_sae(acts, _cfg("topk"), FAST, checkpoint_dir=tmp_path / "ckpt", stop_after=10)
    with pytest.raises(UserError, match="different configs"):
        train_sae(acts, _cfg("relu"), FAST, checkpoint_dir=tmp_path / "ckpt")


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_folded_scale_gives_same_latents_and_raw_unit_reconstruction(arch: str) -> None:
    torch.manual_seed(0)
    sae = build_sae(_cfg(arch, d_in=8, d_sae=24))
    sae.initialize(torch.Generator().manual_seed(1), b_dec=torch.randn(8))
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.05 * torch.randn_like(p))
        if hasattr(sae, "threshold") and not isinstance(sae.threshold, torch.nn.Parameter) and arch != "jumprelu":
            sae.threshold.fill_(0.3)
    x = torch.randn(64, 8) * 7.0
    scale = 0.37
    latents_scaled = sae.encode(scale * x)
    recon_scaled = sae(scale * x) / scale
    sae.fold_input_scale(scale)
    torch.testing.assert_close(sae.encode(x), latents_scaled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae(x), recon_scaled, rtol=1e-5, atol=1e-4)


def test_trained_sae_acts_on_raw_units(tiny_toy) -> None:
    acts = tiny_toy.activations("train") * 40.0  # far from unit scale: the fold must undo the input scaling
    result = train_sae(acts, _cfg("topk"), FAST)
    x = acts[:512]
    relative = (result.sae(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    # the scale makes E||s x||^2 = d_in (all 8192 rows are the sample here); 40x larger inputs, 40x smaller scale
    assert acts.shape[0] <= FAST.geometric_median_rows
    assert result.input_scale == pytest.approx(input_scale_for(acts), rel=1e-6)
    assert result.input_scale * 40.0 == pytest.approx(input_scale_for(acts / 40.0), rel=1e-6)
    assert (acts * result.input_scale).pow(2).sum(1).mean() == pytest.approx(acts.shape[1], rel=1e-4)
    assert relative < 0.5


def test_geometric_median_resists_outliers() -> None:
    points = torch.cat([torch.zeros(99, 3), torch.full((1, 3), 1000.0)])
    median = geometric_median(points)
    assert median.abs().max() < 1e-2
    assert points.mean(0).abs().max() > 9


def test_schedules() -> None:
    cfg = TrainConfig(steps=100, lr_warmup_frac=0.1, lr_decay_frac=0.2, sparsity_warmup_frac=0.5)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == 1.0 and lr_factor(50, cfg) == 1.0
    assert lr_factor(90, cfg) == pytest.approx(0.5)
    assert lr_factor(99, cfg) == pytest.approx(0.05)
    assert sparsity_factor(0, cfg) == pytest.approx(0.02) and sparsity_factor(60, cfg) == 1.0


def test_bad_inputs_are_user_errors(tiny_toy) -> None:
    acts = tiny_toy.activations("train")
    with pytest.raises(UserError, match="unknown SAE architecture"):
        train_sae(acts, SAEConfig(arch="nope", d_in=16, d_sae=8), FAST)
    with pytest.raises(UserError, match="d_in"):
        train_sae(acts, SAEConfig(arch="topk", d_in=17, d_sae=8, k=2), FAST)
    with pytest.raises(UserError, match="--k"):
        train_sae(acts, SAEConfig(arch="topk", d_in=16, d_sae=8, k=9), FAST)
    bad = acts.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        train_sae(bad[:4096], _cfg("topk"), TrainConfig(steps=2, batch_size=256, geometric_median_rows=100_000))

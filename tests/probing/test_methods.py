"""Detection methods on synthetic activations with a known concept direction, and pooling / caching on a tiny LM."""

from __future__ import annotations

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.probing import methods as M
from interpgym.probing.activations import pool, pooled_activations
from interpgym.probing.metrics import auroc
from interpgym.sae import SAEConfig, TrainConfig, train_sae


def synthetic(n: int = 200, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows interleaved pos, neg; positives shifted by 0.5..8.5 along a known unit direction.

    The shift varies between pairs: PCA of *centred* paired differences (repeng's
    `pca_diff`) sees only the variance of the shift, so a constant shift would be invisible to it.
    """
    truth = torch.nn.functional.normalize(torch.randn(d, generator=torch.Generator().manual_seed(1234)), dim=0)
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor([1, 0] * (n // 2))
    shift = 0.5 + 8.0 * torch.rand(n, generator=g)
    x = torch.randn(n, d, generator=g) + (shift * y)[:, None] * truth
    return x, y, truth


@pytest.mark.parametrize("method", ["diff_means", "logistic", "pca"])
def test_linear_methods_recover_the_direction(method: str) -> None:
    x, y, truth = synthetic(n=1000)
    probe = M.fit(method, x, y)
    assert probe.direction.norm() == pytest.approx(1.0, abs=1e-5)
    assert float(probe.direction @ truth) > 0.9  # oriented so that positives score higher
    xt, yt, _ = synthetic(seed=1)
    oracle = auroc((xt @ truth).numpy(), yt.numpy())
    assert auroc(probe.score(xt).numpy(), yt.numpy()) >= oracle - 0.01


def test_random_direction_is_seeded_and_near_chance() -> None:
    x, y, _ = synthetic(d=64)
    a, b = M.fit("random", x, y, seed=3), M.fit("random", x, y, seed=3)
    assert torch.equal(a.direction, b.direction)
    assert torch.equal(M.fit("random", x, 1 - y, seed=3).direction, a.direction)  # ignores the data
    mean_auroc = sum(auroc(M.fit("random", x, y, seed=s).score(x).numpy(), y.numpy()) for s in range(40)) / 40
    assert abs(mean_auroc - 0.5) < 0.1  # chance on average over seeds


def test_sae_methods_use_the_sae_public_api() -> None:
    x, y, truth = synthetic(n=400)
    sae = train_sae(x, SAEConfig(arch="topk", d_in=16, d_sae=32, k=4), TrainConfig(steps=200, batch_size=64)).sae
    latent = M.fit("sae_latent", x, y, sae=sae)
    assert latent.info["train_auroc"] > 0.7 and torch.allclose(
        latent.direction, torch.nn.functional.normalize(sae.W_dec[latent.info["latent"]], dim=0)
    )
    ksparse = M.fit("sae_ksparse", x, y, sae=sae)
    assert auroc(ksparse.score(x).numpy(), y.numpy()) >= latent.info["train_auroc"] - 0.05
    with pytest.raises(UserError, match="needs an SAE"):
        M.fit("sae_latent", x, y)


def test_one_class_training_data_is_a_user_error() -> None:
    x, _, _ = synthetic()
    with pytest.raises(UserError, match="both positives and negatives"):
        M.fit("diff_means", x, torch.ones(len(x), dtype=torch.long))
    with pytest.raises(UserError, match="unknown method"):
        M.parse_methods("diff_means,telepathy")


def test_pooling_ignores_padding_and_the_sink(tiny) -> None:
    model, tokenizer = tiny
    texts = ["short one", "a much longer text that forces padding of the first"]
    batched = pooled_activations(model, tokenizer, texts, layer=2, batch_size=2)
    alone = pooled_activations(model, tokenizer, texts[:1], layer=2, batch_size=1)
    for how in ("mean", "max", "last"):
        assert torch.allclose(batched[how][0], alone[how][0], atol=1e-5)
    # the layer-2 residual equals HF's hidden_states[2]; mean skips position 0
    enc = tokenizer(texts[:1], return_tensors="pt")
    hidden = model(**enc, output_hidden_states=True).hidden_states[2][0]
    assert torch.allclose(alone["mean"][0], hidden[1:].mean(0), atol=1e-5)
    assert torch.allclose(alone["last"][0], hidden[-1], atol=1e-5)
    with pytest.raises(UserError, match="pooling"):
        pool(hidden[None], torch.ones(1, hidden.shape[0], dtype=torch.bool), "median")


def test_layer_out_of_range_is_a_user_error(tiny) -> None:
    model, tokenizer = tiny
    with pytest.raises(UserError, match="out of range"):
        pooled_activations(model, tokenizer, ["x"], layer=4)

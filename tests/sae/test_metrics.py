"""Metric definitions against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from interpgym.sae.metrics import (
    ReconstructionStats,
    TopActivations,
    binary_tasks,
    fvu,
    ground_truth_metrics,
    monosemanticity,
    sparse_probing,
)


def test_fvu_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    x_hat = torch.tensor([[1.0, 1.0], [3.0, 2.0]])
    # E||x - x_hat||^2 = (1 + 0) / 2 = 0.5; E||x||^2 = (1 + 13) / 2 = 7; E x = (2, 1), ||E x||^2 = 5
    assert fvu(x, x_hat) == pytest.approx(0.5 / (7 - 5))


def test_streaming_stats_match_the_definitions_and_chunking() -> None:
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0]])
    x_hat = torch.tensor([[2.0, 0.0], [3.0, 1.0], [0.0, 2.0]])
    latents = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 2.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]])
    whole = ReconstructionStats(2, 4)
    whole.add(x, x_hat, latents)
    parts = ReconstructionStats(2, 4)
    parts.add(x[:1], x_hat[:1], latents[:1])
    parts.add(x[1:], x_hat[1:], latents[1:])
    m = whole.metrics()
    assert parts.metrics() == pytest.approx(m)
    total_variance = (1 + 13 + 16) / 3 - ((4 / 3) ** 2 + 2**2)
    assert m["fvu"] == pytest.approx((1 + 1 + 4) / 3 / total_variance)
    assert m["explained_variance"] == pytest.approx(1 - m["fvu"])
    assert m["l0"] == pytest.approx(4 / 3)
    assert m["dead_frac"] == pytest.approx(0.5)  # latents 2 and 3 never fire
    assert m["dense_frac"] == pytest.approx(0.5)  # latent 0 fires on 3/3, latent 1 on 1/3 > 10%
    cosines = [1.0, (9 + 2) / (math.sqrt(13) * math.sqrt(10)), 1.0]
    assert m["cosine"] == pytest.approx(sum(cosines) / 3)
    # gamma = E||x_hat||^2 / E[x . x_hat] = (4 + 10 + 4) / (2 + 11 + 8)
    assert m["relative_reconstruction_bias"] == pytest.approx(18 / 21)


def test_dense_threshold_is_strictly_above_ten_percent() -> None:
    stats = ReconstructionStats(1, 2)
    latents = torch.zeros(20, 2)
    latents[:2, 0] = 1.0  # exactly 10%: not dense
    latents[:3, 1] = 1.0  # 15%: dense
    stats.add(torch.ones(20, 1), torch.ones(20, 1), latents)
    assert stats.metrics()["dense_frac"] == pytest.approx(0.5)


def test_mcc_on_a_planted_permutation() -> None:
    truth = torch.nn.functional.normalize(torch.randn(10, 6, generator=torch.Generator().manual_seed(0)), dim=1)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    signs = torch.tensor([1.0, -1.0] * 5)[:, None]
    decoder = truth[perm] * signs * 3.0  # any order, sign and norm
    m = ground_truth_metrics(decoder, truth)
    assert m == pytest.approx({"mcc": 1.0, "mmcs": 1.0, "frac_recovered": 1.0})


def test_mcc_counts_unmatched_true_features_as_zero_and_uses_one_to_one_matching() -> None:
    truth = torch.eye(4)
    decoder = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.6, 0.8, 0.0]])
    m = ground_truth_metrics(decoder, truth)
    # best 1-1 matching: row0->e0 (1.0), row2->e2 (0.8), row1->e1 or e3 (0.0); e3 unmatched
    assert m["mcc"] == pytest.approx((1.0 + 0.8 + 0.0) / 4)
    # max |cos| per true feature: e0 1.0, e1 0.6, e2 0.8, e3 0.0
    assert m["mmcs"] == pytest.approx((1.0 + 0.6 + 0.8) / 4)
    assert m["frac_recovered"] == pytest.approx(0.25)


def test_binary_tasks() -> None:
    labels = {"digit": torch.tensor([0, 1, 2, 2]), "verse": torch.tensor([0, 1, 1, 0]), "constant": torch.zeros(4, dtype=torch.long)}
    assert binary_tasks(labels) == [("digit", "digit=0", 0), ("digit", "digit=1", 1), ("digit", "digit=2", 2), ("verse", "verse", 1)]


def test_sparse_probing_finds_the_planted_latent() -> None:
    gen = torch.Generator().manual_seed(0)
    n = 600
    y = torch.randint(0, 2, (2 * n,), generator=gen)
    latents = torch.rand(2 * n, 20, generator=gen)
    latents[:, 7] = y.float() * 2.0 + 0.1 * torch.rand(2 * n, generator=gen)  # latent 7 is the concept
    raw = torch.randn(2 * n, 5, generator=gen)  # raw dims carry no signal
    summary, per_task = sparse_probing(latents[:n], raw[:n], {"c": y[:n]}, latents[n:], raw[n:], {"c": y[n:]})
    assert set(per_task) == {"c"}
    assert summary["sparse_probing_k1"] == pytest.approx(1.0)
    assert summary["sparse_probing_raw_k1"] < 0.6 and summary["sparse_probing_raw_all"] < 0.6


def test_monosemanticity_pure_vs_random_latents() -> None:
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=gen)
    latents = torch.zeros(400, 2)
    latents[:, 0] = (labels == 2).float() * torch.rand(400, generator=gen)  # fires only on class 2
    latents[:, 1] = torch.rand(400, generator=gen)  # fires on everything
    top = TopActivations(2, n=50)
    top.add(latents[:150], 0)
    top.add(latents[150:], 150)
    pure = monosemanticity(_only(top, 0), {"digit": labels})
    noisy = monosemanticity(_only(top, 1), {"digit": labels})
    assert pure["monosemanticity"] == pytest.approx(1.0) and pure["monosemanticity_purity"] == pytest.approx(1.0)
    assert noisy["monosemanticity"] < 0.3
    assert pure["monosemanticity_chance"] == pytest.approx(float((labels == 2).double().mean()))


def test_monosemanticity_is_base_rate_normalised_for_unbalanced_binary_concepts() -> None:
    """A latent pure on a rare label scores ~1, one firing at random ~0 (not at the majority share)."""
    gen = torch.Generator().manual_seed(1)
    n = 4000
    verse = (torch.rand(n, generator=gen) < 0.6).long()  # 60% of inputs, like smollm2's verse
    rare = (torch.rand(n, generator=gen) < 0.05).long()  # 5%, like stage directions
    latents = torch.zeros(n, 3)
    latents[:, 0] = rare.float() * (1 + torch.rand(n, generator=gen))  # planted: fires only on the rare label
    latents[:, 1] = torch.rand(n, generator=gen)  # fires on everything, ignoring labels
    latents[:, 2] = verse.float() * torch.rand(n, generator=gen)  # fires only on verse (60%)
    top = TopActivations(3, n=200)
    top.add(latents, 0)
    labels = {"verse": verse, "stage_direction": rare}
    planted = monosemanticity(_only(top, 0), labels)
    random = monosemanticity(_only(top, 1), labels)
    verse_latent = monosemanticity(_only(top, 2), labels)
    assert planted["monosemanticity"] == pytest.approx(1.0)
    assert verse_latent["monosemanticity"] == pytest.approx(1.0)
    assert abs(random["monosemanticity"]) < 0.1
    assert abs(random["monosemanticity"] - random["monosemanticity_null"]) < 0.1
    both = monosemanticity(top, labels)
    assert both["monosemanticity_latents"] == 3
    assert both["monosemanticity"] == pytest.approx((2.0 + random["monosemanticity"]) / 3)


def test_top_activations_match_a_global_topk() -> None:
    latents = torch.rand(300, 5, generator=torch.Generator().manual_seed(2))
    top = TopActivations(5, n=7)
    for start in range(0, 300, 64):
        top.add(latents[start : start + 64], start)
    values, rows = latents.topk(7, dim=0)
    torch.testing.assert_close(top.values, values)
    assert torch.equal(top.indices, rows)


def _only(top: TopActivations, latent: int) -> TopActivations:
    single = TopActivations(1, n=top.n)
    single.values = top.values[:, latent : latent + 1]
    single.indices = top.indices[:, latent : latent + 1]
    return single

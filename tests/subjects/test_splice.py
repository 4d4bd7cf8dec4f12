"""The cached-clean-distribution KL equals the direct KL of full logits."""

from __future__ import annotations

import pytest
import torch

from interpgym.subjects.splice import kl_div_sum, kl_div_sum_from_expected_unembedding


@pytest.mark.parametrize("with_bias", [False, True])
def test_kl_from_expected_unembedding_matches_direct_kl(with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    n, d, vocab = 64, 16, 300
    weight = torch.randn(vocab, d, generator=gen, dtype=torch.float64)
    bias = torch.randn(vocab, generator=gen, dtype=torch.float64) if with_bias else torch.zeros(vocab, dtype=torch.float64)
    clean = torch.randn(n, d, generator=gen, dtype=torch.float64) * 2
    spliced = clean + 0.5 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    clean_logits, spliced_logits = clean @ weight.T + bias, spliced @ weight.T + bias
    logp = torch.log_softmax(clean_logits, -1)
    p = logp.exp()
    first = (p * (logp - bias)).sum(-1)
    direct = kl_div_sum(clean_logits, spliced_logits)
    cached = kl_div_sum_from_expected_unembedding(first, p @ weight, spliced, spliced_logits)
    assert direct > 1.0
    assert cached == pytest.approx(direct, rel=1e-5)
    assert kl_div_sum_from_expected_unembedding(first, p @ weight, clean, clean_logits) == pytest.approx(0.0, abs=1e-9)

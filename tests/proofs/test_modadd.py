"""Modular addition: the subject, brute force, the float32 slack, the structured decomposition, and the
soundness of the quadrature, readout and integration proofs per input (trained, partly trained, random,
constructed and perturbed models)."""

from __future__ import annotations

import math

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.proofs.modadd_brute_force import brute_force, margins
from interpgym.proofs.modadd_inputs import evaluated_inputs, inputs_and_direct
from interpgym.proofs.modadd_integration import fit_waves, integration_proof, quadrature_logits, quadrature_tables
from interpgym.proofs.modadd_quadrature import certify, quadrature_proof
from interpgym.proofs.modadd_readout import readout_basis, readout_proof
from interpgym.proofs.modadd_roundoff import modadd_margin_slack
from interpgym.proofs.modadd_runner import audit, prove
from interpgym.proofs.modadd_structure import attention_patterns, decompose, find_key_frequencies
from interpgym.proofs.runner import UnsoundProofError
from interpgym.subjects.modadd import (
    ModAddConfig,
    ModAddWeights,
    all_inputs,
    attention_pattern,
    constructed_pizza,
    correct_mask,
    labels,
    logits,
    train_modadd,
)

SMALL = dict(p=11, d_model=32, n_heads=2, d_head=16, d_mlp=64, steps=400, train_fraction=0.8, lr=3e-3, checkpoint_every=100)


def as_float64(w: ModAddWeights) -> ModAddWeights:
    return ModAddWeights(**w.to(dtype=torch.float64).as_dict(), uniform_attention=w.uniform_attention)


def reference_logits(w: ModAddWeights, a: int, b: int) -> torch.Tensor:
    """The model written out for one input, position by position (an independent implementation)."""
    x = torch.stack([w.W_E[a] + w.W_pos[0], w.W_E[b] + w.W_pos[1], w.W_E[w.p] + w.W_pos[2]]).double()
    resid = x[2].clone()
    for h in range(w.n_heads):
        if w.uniform_attention:
            pattern = torch.full((3,), 1 / 3, dtype=torch.float64)
        else:
            q = x[2] @ w.W_Q[h].double()
            scores = torch.stack([q @ (x[i] @ w.W_K[h].double()) for i in range(3)]) / math.sqrt(w.d_head)
            pattern = scores.softmax(dim=0)
        resid = resid + sum(pattern[i] * (x[i] @ w.W_V[h].double()) for i in range(3)) @ w.W_O[h].double()
    resid = resid + torch.relu(resid @ w.W_in.double()) @ w.W_out.double()
    return resid @ w.W_U.double()


def random_weights(seed: int, p: int = 11, uniform: bool = False, scale: float | None = None) -> ModAddWeights:
    return ModAddWeights.random(p, 16, 2, 8, 32, torch.Generator().manual_seed(seed), uniform_attention=uniform, scale=scale)


def perturbed(w: ModAddWeights, noise: float, seed: int) -> ModAddWeights:
    g = torch.Generator().manual_seed(seed)
    return ModAddWeights(**{n: t + noise * torch.randn(t.shape, generator=g) for n, t in w.as_dict().items()},
                         uniform_attention=w.uniform_attention)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("modadd-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERPGYM_HOME", str(home))
        return {kind: train_modadd(ModAddConfig(attention=kind, **SMALL), progress=False) for kind in ("learned", "uniform")}


def assert_sound(w: ModAddWeights) -> tuple[float, float]:
    """Every structured proof's certified set lies inside the correct set (checked input by input)
    and its bound is at most the exact accuracy; returns (quadrature bound, exact)."""
    exact = brute_force(w)
    results = [quadrature_proof(w)] + [readout_proof(w, rank) for rank in (1, 4, w.p)]
    results += [integration_proof(w, rank) for rank in (0, 2, 8, w.p)]
    for result in results:
        audit(result, exact.correct)
        assert not bool((result.extra["certified_mask"] & ~exact.correct).any())
        assert result.bound <= exact.bound
    return results[0].bound, exact.bound


def test_forward_matches_reference() -> None:
    for uniform in (False, True):
        w = random_weights(3, uniform=uniform)
        pairs = all_inputs(w.p)
        fast = logits(as_float64(w), pairs)
        for index in (0, 5, 17, 64, 120):
            a, b = pairs[index].tolist()
            assert torch.allclose(fast[index], reference_logits(w, a, b), atol=1e-10)


def test_separable_attention_patterns_match_the_model() -> None:
    """The proofs' per-input patterns from the separable scores s_a[a], s_b[b], s_= equal the forward's."""
    for seed in range(3):
        w = as_float64(random_weights(seed, p=9))
        pairs = all_inputs(9)
        expected = attention_pattern(w, pairs).reshape(9, 9, w.n_heads, 3).permute(2, 0, 1, 3)
        assert torch.allclose(attention_patterns(w), expected, atol=1e-12)


def test_training_is_deterministic_and_cached(tmp_path, monkeypatch) -> None:
    config = ModAddConfig(p=7, d_model=8, n_heads=1, d_head=8, d_mlp=16, steps=20, checkpoint_every=10)
    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path / "one"))
    first = train_modadd(config, progress=False)
    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path / "two"))
    second = train_modadd(config, progress=False)
    assert first.checkpoint_steps() == [0, 10, 20]
    for name, tensor in first.weights.as_dict().items():
        assert torch.equal(tensor, second.weights.as_dict()[name]), name
    other = train_modadd(ModAddConfig(**{**config.__dict__, "seed": 1}), progress=False)
    assert not torch.equal(other.weights.W_E, first.weights.W_E)


def test_bad_config_and_weights_are_user_errors() -> None:
    with pytest.raises(UserError, match="--p"):
        ModAddConfig(p=1).validate()
    with pytest.raises(UserError, match="--attention"):
        ModAddConfig(attention="none").validate()
    tensors = random_weights(0).as_dict()
    with pytest.raises(UserError, match="W_O has shape"):
        ModAddWeights.from_dict({**tensors, "W_O": torch.zeros(2, 8, 15)})
    with pytest.raises(UserError, match="missing"):
        ModAddWeights.from_dict({n: t for n, t in tensors.items() if n != "W_in"})
    with pytest.raises(UserError, match="NaN"):
        ModAddWeights.from_dict({**tensors, "W_in": torch.full((16, 32), float("nan"))})


def test_trained_model_learns(trained) -> None:
    for model in trained.values():
        pairs = all_inputs(model.config.p)
        assert correct_mask(logits(model.weights, pairs), pairs).float().mean() > 0.9


def test_slack_covers_float32_error() -> None:
    models = [random_weights(s, uniform=u) for s in range(3) for u in (False, True)]
    models += [random_weights(4, scale=2.0), constructed_pizza(13)]
    for w in models:
        observed = (margins(w).double() - margins(as_float64(w))).abs().max()
        assert observed <= modadd_margin_slack(w)


def test_brute_force_is_the_float32_forward() -> None:
    w = random_weights(1)
    result = brute_force(w)
    pairs = all_inputs(w.p)
    out = logits(w, pairs)
    assert torch.equal(result.correct, correct_mask(out, pairs))
    assert result.certified == int((out.argmax(dim=1) == labels(pairs, w.p)).sum()) or result.certified <= w.p**2
    assert result.flops > 0 and result.unexplained_dim == w.p**2


def test_decomposition_bounds_hold_per_input(trained) -> None:
    """|pre-activation - structured pre-activation| <= eta for every input and neuron; the output rows rebuild exactly."""
    models = [m.weights for m in trained.values()] + [random_weights(2), random_weights(2, uniform=True)]
    for w in models:
        w64 = as_float64(w)
        key = find_key_frequencies(w64)
        parts = decompose(w64, key)
        pairs = all_inputs(w.p)
        resid = logits_residual(w64, pairs)
        pre = resid @ w64.W_in
        omega = 2 * math.pi * key.double() / w.p
        a, b = pairs[:, :1].double(), pairs[:, 1:].double()
        structured = parts.H[:, 0] * (torch.cos(omega * a) + torch.cos(omega * b)) - parts.H[:, 1] * (
            torch.sin(omega * a) + torch.sin(omega * b)
        )
        assert ((pre - structured).abs() <= parts.eta + 1e-9).all()


def logits_residual(w: ModAddWeights, pairs: torch.Tensor) -> torch.Tensor:
    """The residual stream entering the MLP, from the reference implementation's steps (float64 weights)."""
    rows = []
    for a, b in pairs.tolist():
        x = torch.stack([w.W_E[a] + w.W_pos[0], w.W_E[b] + w.W_pos[1], w.W_E[w.p] + w.W_pos[2]])
        resid = x[2].clone()
        for h in range(w.n_heads):
            if w.uniform_attention:
                pattern = torch.full((3,), 1 / 3, dtype=x.dtype)
            else:
                q = x[2] @ w.W_Q[h]
                pattern = (torch.stack([q @ (x[i] @ w.W_K[h]) for i in range(3)]) / math.sqrt(w.d_head)).softmax(dim=0)
            resid = resid + sum(pattern[i] * (x[i] @ w.W_V[h]) for i in range(3)) @ w.W_O[h]
        rows.append(resid)
    return torch.stack(rows)


def test_quadrature_bound_is_below_every_true_margin() -> None:
    """On the constructed model (no residuals) the proof's margin bound equals the brute-force minimum
    margin over each diagonal a - b = m, up to the per-shift minimum it takes (so never above it)."""
    w = constructed_pizza(13)
    certificate = certify(as_float64(w), find_key_frequencies(as_float64(w)))
    true_margins = margins(as_float64(w)).reshape(13, 13)
    for m in range(-12, 13):
        diagonal = torch.stack([true_margins[a, a - m] for a in range(13) if 0 <= a - m < 13])
        assert certificate.margin_lower[m + 12] <= diagonal.min() + 1e-9


def test_constructed_model_is_fully_certified() -> None:
    for p in (7, 13):
        bound, exact = assert_sound(constructed_pizza(p))
        assert exact == 1.0 and bound == 1.0
        assert integration_proof(constructed_pizza(p), 0).bound == 1.0  # the quadrature alone, read out exactly


def test_quadrature_tables_are_the_structured_activations_read_out() -> None:
    """The factorised tables reproduce sum_i ReLU(h_i (cos(w a + phi_i) + cos(w b + phi_i))) M[i, c] computed input by
    input, for arbitrary key frequencies and wave coefficients (the identity the integration proof rests on)."""
    g = torch.Generator().manual_seed(0)
    for p in (5, 7, 11):
        d_mlp = 24
        key = torch.randint(1, (p - 1) // 2 + 1, (d_mlp,), generator=g)
        H = torch.randn(d_mlp, 2, generator=g, dtype=torch.float64)
        M = torch.randn(d_mlp, p, generator=g, dtype=torch.float64)
        h, phi = H.norm(dim=1), torch.atan2(H[:, 1], H[:, 0])
        frequencies = torch.unique(key)
        fast = quadrature_logits(quadrature_tables(h, phi, key, frequencies, M), frequencies, all_inputs(p))
        omega = 2 * math.pi * key.double() / p
        for a in range(p):
            for b in range(p):
                s = h * (torch.cos(omega * a + phi) + torch.cos(omega * b + phi))
                assert torch.allclose(fast[a * p + b], torch.relu(s) @ M, atol=1e-10), (p, a, b)


def test_uniform_attention_margins_are_symmetric() -> None:
    """What lets the per-input proofs evaluate only a <= b under uniform attention: exact (float64) margins of (a, b)
    and (b, a) agree, and every input maps to an evaluated one with the same (unordered) tokens."""
    for w in (random_weights(5, p=9, uniform=True), constructed_pizza(11)):
        p = w.p
        exact = margins(as_float64(w)).reshape(p, p)
        assert torch.allclose(exact, exact.T, atol=1e-9)
        pairs, representative = evaluated_inputs(w)
        assert pairs.shape[0] == p * (p + 1) // 2 and bool((pairs[:, 0] <= pairs[:, 1]).all())
        full = all_inputs(p)
        assert torch.equal(pairs[representative].sort(dim=1).values, full.sort(dim=1).values)
    w = random_weights(5, p=9)
    assert torch.equal(evaluated_inputs(w)[0], all_inputs(9))  # learned attention: no symmetry, every input


def test_integration_decomposes_the_logits_exactly(trained) -> None:
    """Quadrature logits + the correction read out at full rank + the direct path = the exact logits; the charge is 0."""
    for model in trained.values():
        w = as_float64(model.weights)
        key = find_key_frequencies(w)
        left, right = readout_basis(w, w.p)
        pairs = all_inputs(w.p)
        pre, direct = inputs_and_direct(w, pairs)
        H = fit_waves(w, key)
        h, phi = H.norm(dim=1), torch.atan2(H[:, 1], H[:, 0])
        M = w.W_out @ w.W_U
        frequencies = torch.unique(key)
        omega = 2 * math.pi * key.double() / w.p
        x = torch.arange(w.p, dtype=torch.float64)
        wave = h * torch.cos(omega * x[:, None] + phi)
        delta = torch.relu(pre) - torch.relu(wave[pairs[:, 0]] + wave[pairs[:, 1]])
        rebuilt = quadrature_logits(quadrature_tables(h, phi, key, frequencies, M), frequencies, pairs) + delta @ M + direct
        exact = logits(w, pairs)
        assert torch.allclose(rebuilt, exact, atol=1e-9)
        certificate = integration_proof(model.weights, w.p).extra["certificate"]
        assert float(certificate.charge.max()) < 1e-9


@pytest.mark.parametrize("noise", [1e-4, 1e-3, 3e-3, 1e-2, 0.05])
def test_sound_on_perturbed_constructions(noise: float) -> None:
    for seed in range(3):
        bound, exact = assert_sound(perturbed(constructed_pizza(13), noise, seed))
        if noise <= 1e-4:  # near the construction the proof still certifies everything
            assert bound == exact == 1.0


def test_sound_on_random_weights() -> None:
    for seed in range(4):
        for uniform in (False, True):
            assert_sound(random_weights(seed, p=7 + 2 * seed, uniform=uniform))
    assert_sound(random_weights(9, scale=3.0))
    for p in (8, 10):  # even p: cos(w m / 2) can vanish and the symmetric twins include a = b + p / 2
        for uniform in (False, True):
            assert_sound(random_weights(p, p=p, uniform=uniform, scale=1.0))


def test_sound_on_trained_and_partly_trained(trained) -> None:
    for model in trained.values():
        for step in model.checkpoint_steps():
            assert_sound(model.checkpoint(step))
        assert_sound(model.weights)


def test_full_rank_readout_certifies_every_input_outside_the_slack(trained) -> None:
    """Completeness of `readout` and `integration`: at full rank the residual is zero (to float64 rounding), so
    every input whose exact margin exceeds the float32 slack is certified, and the bound is then tight."""
    for model in trained.values():
        w = model.weights
        true = margins(as_float64(w))
        slack = modadd_margin_slack(w)
        for result in (readout_proof(w, w.p), integration_proof(w, w.p)):
            assert bool(result.extra["certified_mask"][true > slack + 1e-6].all()), result.strategy
            assert result.bound <= brute_force(w).bound


def test_audit_catches_an_unsound_result() -> None:
    w = random_weights(0)
    result = quadrature_proof(w)
    correct = brute_force(w).correct
    result.extra["certified_mask"] = ~correct
    result.certified = int((~correct).sum())
    with pytest.raises(UnsoundProofError):
        audit(result, correct)


def test_prove_reports_brute_force_first() -> None:
    proofs = prove(constructed_pizza(7), ["brute-force", "quadrature"])
    assert [r.strategy for r in proofs.results] == ["brute-force", "quadrature"]
    assert proofs.exact_accuracy == 1.0 and proofs.results[1].flops > 0

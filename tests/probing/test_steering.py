"""Steering and ablation hooks, seeded batched generation, and the library API on a tiny Llama."""

from __future__ import annotations

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.probing import ablate, steer, train_direction
from interpgym.probing.activations import pooled_activations
from interpgym.probing.api import Direction
from interpgym.probing.steering import format_prompt, generate, steering

TEXTS = ["the cat sat", "stock prices fell", "it rained all day"]


def logits(model, tokenizer, texts=TEXTS):
    enc = tokenizer(texts[:1], return_tensors="pt")
    return model(**enc).logits


def test_steering_adds_alpha_v_at_the_block_input_and_always_unhooks(tiny) -> None:
    model, tokenizer = tiny
    v = torch.randn(32, generator=torch.Generator().manual_seed(0))
    clean = logits(model, tokenizer)
    enc = tokenizer(TEXTS[:1], return_tensors="pt")
    with steering(model, v, 0.0, 2):
        assert torch.allclose(logits(model, tokenizer), clean, atol=1e-6)
    with steering(model, v, 3.0, 2):
        steered_h = model(**enc, output_hidden_states=True).hidden_states
    clean_h = model(**enc, output_hidden_states=True).hidden_states
    assert torch.allclose(steered_h[1], clean_h[1])  # before the site: untouched
    # HF reports hidden_states[2] before our pre-hook runs; block 2's input is that plus 3v
    assert not torch.allclose(steered_h[3], clean_h[3])
    with pytest.raises(RuntimeError, match="boom"), steering(model, v, 3.0, 2):
        raise RuntimeError("boom")
    assert all(not layer._forward_pre_hooks for layer in model.model.layers)
    assert torch.allclose(logits(model, tokenizer), clean)
    with pytest.raises(UserError, match="entries"):
        with steering(model, torch.ones(5), 1.0, 2):
            pass


def test_ablation_zeroes_the_projection_downstream(tiny) -> None:
    model, tokenizer = tiny
    direction = train_direction((model, tokenizer), TEXTS[:1] * 2, TEXTS[1:], layer=1, method="diff_means")
    u = direction.vector / direction.vector.norm()
    with ablate((model, tokenizer), direction):
        acts = pooled_activations(model, tokenizer, TEXTS, layer=3)["mean"]
    assert (acts @ u).abs().max() < 1e-4
    clean = pooled_activations(model, tokenizer, TEXTS, layer=3)["mean"]
    assert (clean @ u).abs().max() > 1e-2
    assert all(not layer._forward_pre_hooks for layer in model.model.layers) and not model.model.norm._forward_pre_hooks


def test_generation_is_seeded_and_batching_does_not_change_greedy_text(tiny) -> None:
    model, tokenizer = tiny
    prompts = [format_prompt(tokenizer, t) for t in TEXTS]
    one, n_one = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=1)
    many, n_many = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=3)
    assert one == many and n_one == n_many > 0
    s1 = generate(model, tokenizer, prompts, max_new_tokens=6, temperature=1.0, seed=5)
    assert s1 == generate(model, tokenizer, prompts, max_new_tokens=6, temperature=1.0, seed=5)
    direction = Direction(vector=torch.randn(32, generator=torch.Generator().manual_seed(1)), layer=1, method="random", pooling="last")
    with steer((model, tokenizer), direction, alpha=50.0):
        steered, _ = generate(model, tokenizer, prompts, max_new_tokens=6)
    assert steered != one


def test_train_direction_checks_its_input(tiny) -> None:
    with pytest.raises(UserError, match="at least one"):
        train_direction(tiny, [], ["x"], layer=1)
    with pytest.raises(UserError, match="contrast pairs"):
        train_direction(tiny, ["a", "b"], ["c"], layer=1, method="pca")
    with pytest.raises(UserError, match="out of range"):
        train_direction(tiny, ["a"], ["c"], layer=9)


def test_row_steering_equals_one_steering_per_row_and_batched_generation_agrees(tiny) -> None:
    from interpgym.probing.steering import row_steering

    model, tokenizer = tiny
    v = torch.randn(32, generator=torch.Generator().manual_seed(1))
    alphas = [0.0, 2.0, -5.0]
    enc = tokenizer(["the cat sat"] * 3, return_tensors="pt")
    with row_steering(model, torch.stack([a * v for a in alphas]), 2):
        batched = model(**enc).logits
    assert all(not layer._forward_pre_hooks for layer in model.model.layers)
    for row, a in enumerate(alphas):
        with steering(model, v, a, 2):
            assert torch.allclose(batched[row], model(**enc).logits[row], atol=1e-5)
    prompts = [format_prompt(tokenizer, "say something")] * 3
    together, n = generate(model, tokenizer, prompts, max_new_tokens=6, row_offsets=(2, torch.stack([a * v for a in alphas])))
    for text, a in zip(together, alphas, strict=True):
        with steering(model, v, a, 2):
            assert generate(model, tokenizer, prompts[:1], max_new_tokens=6)[0] == [text]
    with pytest.raises(UserError, match="rows"):
        generate(model, tokenizer, prompts, row_offsets=(2, torch.zeros(2, 32)))

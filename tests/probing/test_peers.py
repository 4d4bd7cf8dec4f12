"""Side by side with steering-vectors and repeng on the same contrast pairs and layer (tiny Llama, same weights).

Layer conventions: the peers hook the *output* of block L; ours is the *input* of block
L + 1, the same tensor. Both peers read the last token of each text, so ours does too
(`pooling="last"`). The peers are test dependencies installed with `--no-deps` by the
Makefile (their pins, transformers<5 and numpy<2, would downgrade the project); a test
skips only when its peer is not importable at all.
"""

from __future__ import annotations

import copy
import importlib

import numpy as np
import pytest
import torch

from interpgym.probing import Direction, load_concept, steer, train_direction

PEER_LAYER = 1  # the peers' block index; ours is PEER_LAYER + 1
ALPHA = 4.0


def import_peer(name: str):
    if name == "repeng" and not hasattr(np, "float_"):
        # repeng 0.4.0 names np.float_ in type annotations only (removed in NumPy 2); alias it so the module imports
        np.float_ = np.float64
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{name} is not importable ({exc}); `make install` installs it with --no-deps")


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    train = load_concept("evaluation").splits["train"]
    return list(zip(train.positives[:24], train.negatives[:24], strict=True))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.as_tensor(a).double().flatten(), torch.as_tensor(b).double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def logits(model, tokenizer, text: str) -> torch.Tensor:
    return model(**tokenizer([text], return_tensors="pt")).logits


def test_diff_means_and_steered_logits_match_steering_vectors(tiny, pairs) -> None:
    sv = import_peer("steering_vectors")
    model, tokenizer = tiny
    theirs = sv.train_steering_vector(model, tokenizer, pairs, layers=[PEER_LAYER], read_token_index=-1, batch_size=1)
    ours = train_direction((model, tokenizer), [p for p, _ in pairs], [n for _, n in pairs], layer=PEER_LAYER + 1, method="diff_means")
    their_vec = theirs.layer_activations[PEER_LAYER]
    assert cosine(ours.vector, their_vec) >= 0.99
    assert torch.allclose(ours.vector, their_vec.float(), atol=1e-4, rtol=1e-4)  # same magnitude too
    prompt = "Please summarise this paragraph."
    with theirs.apply(model, multiplier=ALPHA):
        their_logits = logits(model, tokenizer, prompt)
    with steer((model, tokenizer), Direction(their_vec.float(), PEER_LAYER + 1, "diff_means", "last"), ALPHA):
        our_logits = logits(model, tokenizer, prompt)
    clean = logits(model, tokenizer, prompt)
    assert not torch.allclose(our_logits, clean, atol=1e-3)  # the steering did something
    torch.testing.assert_close(our_logits, their_logits, atol=1e-5, rtol=1e-5)


def test_pca_direction_and_steered_logits_match_repeng(tiny, pairs) -> None:
    repeng = import_peer("repeng")
    model, tokenizer = tiny
    wrapped = copy.deepcopy(model)  # repeng's ControlModel mutates the model it wraps
    dataset = [repeng.DatasetEntry(positive=p, negative=n) for p, n in pairs]
    vector = repeng.ControlVector.train(wrapped, tokenizer, dataset, hidden_layers=[PEER_LAYER], method="pca_diff")
    their_dir = torch.from_numpy(vector.directions[PEER_LAYER])
    ours = train_direction((model, tokenizer), [p for p, _ in pairs], [n for _, n in pairs], layer=PEER_LAYER + 1, method="pca")
    assert cosine(ours.vector, their_dir) >= 0.99  # same sign too
    control = repeng.ControlModel(wrapped, [PEER_LAYER])
    control.set_control(vector, coeff=ALPHA)
    prompt = "Please summarise this paragraph."
    their_logits = control(**tokenizer([prompt], return_tensors="pt")).logits
    with steer((model, tokenizer), Direction(their_dir.float(), PEER_LAYER + 1, "pca", "last"), ALPHA):
        our_logits = logits(model, tokenizer, prompt)
    assert not torch.allclose(our_logits, logits(model, tokenizer, prompt), atol=1e-3)
    torch.testing.assert_close(our_logits, their_logits, atol=1e-5, rtol=1e-5)

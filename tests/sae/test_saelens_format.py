"""Our saved SAEs load in `sae_lens` itself with identical encode/decode, and our loader's checks."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from interpgym.core.errors import UserError
from interpgym.sae import ARCHITECTURES, SAEConfig, TrainConfig, train_sae
from interpgym.sae.storage import CFG_FILE, META_FILE, WEIGHTS_FILE, load_sae, save_sae

sae_lens = pytest.importorskip("sae_lens")
EXPECTED_SAELENS_CLASS = {
    "relu": "StandardSAE",
    "topk": "TopKSAE",
    "batchtopk": "JumpReLUSAE",
    "matryoshka": "JumpReLUSAE",
    "jumprelu": "JumpReLUSAE",
    "gated": "GatedSAE",
}


@pytest.fixture(scope="module")
def trained(tiny_toy):
    acts = tiny_toy.activations("train")
    return {
        arch: train_sae(acts, SAEConfig(arch=arch, d_in=16, d_sae=64, k=4), TrainConfig(steps=60, batch_size=256))
        for arch in sorted(ARCHITECTURES)
    }


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_saelens_loads_our_sae_with_identical_outputs(arch: str, trained, tiny_toy, tmp_path) -> None:
    result = trained[arch]
    directory = save_sae(tmp_path / arch, result.sae, result.metadata(), hook_name="toy", model_name="toy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sae_lens.SAE.load_from_disk(str(directory))
    assert type(theirs).__name__ == EXPECTED_SAELENS_CLASS[arch]
    ours = load_sae(directory).sae
    x = tiny_toy.activations("test")[:1024]
    with torch.no_grad():
        ours_latents, their_latents = ours.encode(x), theirs.encode(x)
        assert torch.equal(ours_latents, their_latents)
        assert torch.equal(ours.decode(ours_latents), theirs.decode(their_latents))
        assert torch.equal(ours_latents, result.sae.encode(x))  # save/load is lossless
        assert (ours_latents > 0).any()


def test_batchtopk_saved_threshold_is_constant(trained, tmp_path) -> None:
    directory = save_sae(tmp_path / "b", trained["batchtopk"].sae, {})
    threshold = load_file(str(directory / WEIGHTS_FILE))["threshold"]
    assert threshold.shape == (64,) and torch.all(threshold == threshold[0]) and threshold[0] > 0
    assert json.loads((directory / CFG_FILE).read_text())["architecture"] == "jumprelu"


def test_foreign_saelens_dir_without_our_metadata_loads(trained, tmp_path) -> None:
    directory = save_sae(tmp_path / "t", trained["topk"].sae, {})
    (directory / META_FILE).unlink()
    loaded = load_sae(directory)
    assert loaded.sae.arch == "topk" and loaded.sae.k == 4 and loaded.meta == {}


def test_save_refuses_existing_dir_and_nan(trained, tmp_path) -> None:
    save_sae(tmp_path / "x", trained["relu"].sae, {})
    with pytest.raises(UserError, match="already exists"):
        save_sae(tmp_path / "x", trained["relu"].sae, {})
    broken = SAEConfig(arch="relu", d_in=16, d_sae=64)
    from interpgym.sae import build_sae

    sae = build_sae(broken)
    with torch.no_grad():
        sae.W_enc.fill_(float("nan"))
    with pytest.raises(UserError, match="NaN"):
        save_sae(tmp_path / "y", sae, {})
    assert not (tmp_path / "y").exists()


def test_loader_rejects_bad_directories(trained, tmp_path) -> None:
    with pytest.raises(UserError, match="not a directory"):
        load_sae(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not an SAE directory"):
        load_sae(tmp_path / "empty")
    directory = save_sae(tmp_path / "nan", trained["topk"].sae, {})
    state = load_file(str(directory / WEIGHTS_FILE))
    state["W_dec"][0, 0] = float("nan")
    save_file(state, str(directory / WEIGHTS_FILE))
    with pytest.raises(UserError, match="NaN"):
        load_sae(directory)
    del state["b_enc"]
    save_file(state, str(directory / WEIGHTS_FILE))
    with pytest.raises(UserError, match="needs"):
        load_sae(directory)
    (directory / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="safetensors"):
        load_sae(directory)

"""SAEs trained by SAELens' own trainer at its defaults load here and evaluate with `interpgym sae eval`.

For every training architecture SAELens registers, a tiny SAE is trained on the toy
subject with `SAETrainer` (SAELens' default SAE and trainer settings; only the sizes
and the number of samples are ours), saved with both `save_model` and
`save_inference_model`, then loaded by us and checked side by side with SAELens'
inference SAE of the same weights (latents and reconstructions), and evaluated
through the command line. Architectures with no equivalent here are refused by name.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.sae.storage import load_sae
from interpgym.subjects.toy_superposition import ToyConfig, ToySubject
from tests.sae.test_cli import run_cli

sae_lens = pytest.importorskip("sae_lens")
from sae_lens.config import SAETrainerConfig  # noqa: E402  (after the importorskip)
from sae_lens.registry import get_sae_training_class  # noqa: E402
from sae_lens.training.sae_trainer import SAETrainer  # noqa: E402

SUPPORTED = ("standard", "topk", "jumprelu", "gated", "batchtopk", "matryoshka_batchtopk")
UNSUPPORTED = ("abstopk", "matching_pursuit")
D_SAE = 256  # SAELens' default k is 100, so the width must exceed it
BATCH, STEPS = 256, 30


def test_every_saelens_training_architecture_is_covered() -> None:
    from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY

    assert set(SAE_TRAINING_CLASS_REGISTRY) == set(SUPPORTED) | set(UNSUPPORTED)


@pytest.fixture(scope="module")
def toy() -> ToySubject:
    return ToySubject(ToyConfig())  # the `--subject toy` of the command line (d_in 64)


def _train_with_saelens(arch: str, acts: torch.Tensor):
    torch.manual_seed(0)  # SAELens initialises from torch's global generator
    sae_cls, cfg_cls = get_sae_training_class(arch)
    extra = {"matryoshka_widths": [D_SAE // 4, D_SAE]} if arch == "matryoshka_batchtopk" else {}
    with warnings.catch_warnings():  # matching_pursuit warns that it forces decoder_init_norm = 1
        warnings.simplefilter("ignore", UserWarning)
        sae = sae_cls(cfg_cls(d_in=acts.shape[1], d_sae=D_SAE, **extra))
    trainer_cfg = SAETrainerConfig(total_training_samples=BATCH * STEPS, train_batch_size_samples=BATCH, lr_end=3e-5)

    def batches():
        while True:
            for start in range(0, BATCH * STEPS, BATCH):
                yield acts[start : start + BATCH]

    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=batches()).fit()
    return sae


@pytest.fixture(scope="module")
def saved(toy: ToySubject, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    acts = toy.activations("train")[: BATCH * STEPS]
    root = tmp_path_factory.mktemp("saelens-trained")
    out: dict[str, dict[str, Path]] = {}
    for arch in SUPPORTED + UNSUPPORTED:
        sae = _train_with_saelens(arch, acts)
        out[arch] = {}
        for how in ("save_model", "save_inference_model"):
            getattr(sae, how)(root / arch / how)
            out[arch][how] = root / arch / how
    return out


def _reference(saved_dirs: dict[str, Path]):
    """SAELens' own inference SAE for these weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae_lens.SAE.load_from_disk(str(saved_dirs["save_inference_model"]))


@pytest.mark.parametrize("how", ["save_model", "save_inference_model"])
@pytest.mark.parametrize("arch", SUPPORTED)
def test_saelens_trained_sae_matches_saelens_and_evaluates(
    arch: str, how: str, saved, toy: ToySubject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = saved[arch][how]
    ours = load_sae(directory).sae
    theirs = _reference(saved[arch])
    x = toy.activations("test")[:2048]
    with torch.no_grad():
        ours_latents, their_latents = ours.encode(x), theirs.encode(x)
        assert (ours_latents > 0).any()
        # The same latents fire, except where a pre-activation lies within float rounding of
        # a JumpReLU threshold (ours is stored as log_threshold; folding decoder norms rounds).
        disagree = (ours_latents > 0) != (their_latents > 0)
        if disagree.any():
            pre = ours.pre_activations(x)
            threshold = getattr(ours, "threshold", torch.zeros(()))
            gap = (pre - threshold.expand_as(pre))[disagree].abs()
            assert gap.max() <= 1e-6 * (1 + threshold.abs().max()), f"{int(disagree.sum())} latents differ, gap {float(gap.max())}"
            their_latents = torch.where(disagree, ours_latents, their_latents)
        torch.testing.assert_close(ours_latents, their_latents, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.decode(ours_latents), theirs.decode(their_latents), rtol=1e-5, atol=1e-5)
    report = tmp_path / "eval.json"
    assert run_cli(monkeypatch, "sae", "eval", str(directory), "--subject", "toy", "--json", str(report)) == 0
    metrics = json.loads(report.read_text())["metrics"]
    assert metrics["l0"] == pytest.approx(float((ours.encode(toy.activations("test")) > 0).sum(1).float().mean()), rel=1e-6)
    assert 0.0 <= metrics["fvu"] < 1.5 and "mcc" in metrics


@pytest.mark.parametrize("arch", UNSUPPORTED)
def test_unrepresentable_saelens_architectures_are_refused_by_name(arch: str, saved) -> None:
    for directory in saved[arch].values():
        with pytest.raises(UserError, match=f"architecture '{arch}' is not supported"):
            load_sae(directory)


def test_jumprelu_threshold_zero_or_negative_loads_as_saelens_computes_it(saved, toy: ToySubject, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    directory = tmp_path / "jumprelu-zero"
    shutil.copytree(saved["jumprelu"]["save_inference_model"], directory)
    state = load_file(str(directory / "sae_weights.safetensors"))
    state["threshold"][:10] = 0.0
    state["threshold"][10:20] = -0.05
    save_file(state, str(directory / "sae_weights.safetensors"))
    ours = load_sae(directory).sae
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sae_lens.SAE.load_from_disk(str(directory))
    x = toy.activations("test")[:2048]
    with torch.no_grad():
        assert torch.equal(ours.encode(x)[:, :20], theirs.encode(x)[:, :20])
        assert (ours.encode(x)[:, :20] > 0).any()

"""Reading and writing SAEs in the SAELens (6.x) on-disk format, plus our training metadata.

A saved SAE is a directory holding

* `cfg.json` — SAELens' inference config (`architecture`, `d_in`, `d_sae`, `dtype`,
  `device`, `apply_b_dec_to_input`, `normalize_activations`, `reshape_activations`,
  `metadata`, and `k`/`rescale_acts_by_decoder_norm` for `topk`);
* `sae_weights.safetensors` — the weights under SAELens' names;
* `interpgym_sae.json` — ours: our architecture name and configs, the subject, the
  folded input scale and the training log.

Mapping (ours -> SAELens): relu -> standard; topk -> topk (rescale off); jumprelu ->
jumprelu; gated -> gated (b_gate, b_mag, r_mag); batchtopk and matryoshka ->
jumprelu with the global threshold repeated per latent. The input scale is folded
into the weights, so `normalize_activations` is always `none`; `apply_b_dec_to_input`
is always true. `sae_lens.SAE.load_from_disk(dir)` reproduces our encode/decode.

Files written by SAELens itself (either `save_model` or `save_inference_model`) load
for standard, topk, jumprelu, gated, batchtopk and matryoshka_batchtopk; a top-k family
file with `rescale_acts_by_decoder_norm: true` has its decoder norms folded into the
encoder on load (`fold_decoder_norms`, exact), and a batch-top-k training file's scalar
`topk_threshold` becomes our constant threshold. abstopk, matching_pursuit and the
transcoders have no equivalent here and are refused by name.

Loading never unpickles: JSON and safetensors only, every name, shape and value
checked (`UserError` on anything wrong).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.sae.architectures import SparseAutoencoder, build_sae
from interpgym.sae.config import SAEConfig

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
META_FILE = "interpgym_sae.json"
SAELENS_FORMAT_VERSION = "6.54.12"  # the sae-lens release whose format this writes

# SAELens architecture -> ours, for SAEs that were not written by interpgym. `batchtopk` and
# `matryoshka_batchtopk` are SAELens' training-form files (`save_model`); both infer as a
# JumpReLU with one constant threshold, which is our `batchtopk`.
FROM_SAELENS = {
    "standard": "relu",
    "topk": "topk",
    "jumprelu": "jumprelu",
    "gated": "gated",
    "batchtopk": "batchtopk",
    "matryoshka_batchtopk": "batchtopk",
}
# SAELens architectures whose cfg.json carries `k` and `rescale_acts_by_decoder_norm`.
_SAELENS_TOPK_FAMILY = ("topk", "batchtopk", "matryoshka_batchtopk")


def fold_decoder_norms(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SAELens' `fold_W_dec_norm` on a state dict: the same latents without `rescale_acts_by_decoder_norm`.

    SAELens' top-k family with the flag set selects on pre * ||W_dec[i]|| and decodes
    with W_dec[i] / ||W_dec[i]||. Scaling W_enc's columns and b_enc by the norms and
    dividing W_dec's rows by them computes exactly that with the flag off (a no-op when
    the rows already have unit norm, as in SAELens' inference export). Norms are clamped
    at 1e-8 as SAELens does.
    """
    norms = state["W_dec"].norm(dim=1).clamp_min(1e-8)
    return state | {"W_enc": state["W_enc"] * norms, "b_enc": state["b_enc"] * norms, "W_dec": state["W_dec"] / norms[:, None]}


def _saelens_training_form_to_inference(saelens_arch: str, state: dict[str, torch.Tensor], d_sae: int) -> dict[str, torch.Tensor]:
    """SAELens' batch-top-k `save_model` files hold a scalar `topk_threshold`; its inference form is a per-latent `threshold`."""
    if saelens_arch in ("batchtopk", "matryoshka_batchtopk") and "topk_threshold" in state:
        state = dict(state)
        threshold = state.pop("topk_threshold")
        if threshold.numel() != 1:
            raise UserError(f"SAELens {saelens_arch} topk_threshold must be one number (got shape {tuple(threshold.shape)})")
        state["threshold"] = threshold.reshape(()).expand(d_sae).clone()
    return state


@dataclass
class LoadedSAE:
    """An SAE read from disk and what we know about it (`meta` is {} for foreign SAELens dirs)."""

    sae: SparseAutoencoder
    meta: dict[str, Any]
    path: Path


def saelens_cfg(sae: SparseAutoencoder, *, hook_name: str | None = None, model_name: str | None = None) -> dict[str, Any]:
    """The `cfg.json` dict SAELens expects for `sae`."""
    return {
        "architecture": sae.saelens_architecture,
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": SAELENS_FORMAT_VERSION,
            "sae_lens_training_version": None,
            "model_name": model_name,
            "hook_name": hook_name,
            "trained_with": "interpgym",
        },
        **sae.saelens_cfg_extra(),
    }


def save_sae(
    directory: str | Path,
    sae: SparseAutoencoder,
    meta: dict[str, Any],
    *,
    hook_name: str | None = None,
    model_name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `sae` (inference form, raw-activation units) to `directory`, all or nothing.

    `meta` must be JSON-able; `arch` and `sae_config` are added. An existing directory
    is a `UserError` unless `overwrite`.
    """
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise UserError(f"{directory} already exists: choose another --out or remove it")
    state = {name: tensor.detach().cpu().float().contiguous().clone() for name, tensor in sae.saelens_state().items()}
    if not all(bool(torch.isfinite(t).all()) for t in state.values()):
        raise UserError("the SAE has NaN or infinite weights: training diverged, lower the learning rate or sparsity coefficient")
    meta = {"format": "interpgym-sae/1", "arch": sae.arch, "sae_config": sae.cfg.to_dict()} | meta
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file(state, str(tmp / WEIGHTS_FILE))
        (tmp / CFG_FILE).write_text(json.dumps(saelens_cfg(sae, hook_name=hook_name, model_name=model_name), indent=2))
        write_json_atomic(tmp / META_FILE, meta)
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}): {what}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object: {what}")
    return data


def load_sae(directory: str | Path) -> LoadedSAE:
    """Read an SAE directory written by `save_sae` (or a SAELens dir of a supported architecture).

    Raises `UserError` if it is not an SAE directory, has unknown/missing/misshapen
    weights, NaN or infinite values, or an architecture we cannot represent.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory: pass a directory written by `interpgym sae train`")
    missing = [name for name in (CFG_FILE, WEIGHTS_FILE) if not (directory / name).is_file()]
    if missing:
        raise UserError(f"{directory} is not an SAE directory (missing {', '.join(missing)})")
    cfg = _read_json(directory / CFG_FILE, "expected a SAELens cfg.json")
    meta = _read_json(directory / META_FILE, "expected interpgym training metadata") if (directory / META_FILE).is_file() else {}
    try:
        d_in, d_sae, saelens_arch = int(cfg["d_in"]), int(cfg["d_sae"]), str(cfg["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{directory / CFG_FILE} lacks a valid architecture/d_in/d_sae ({exc})") from exc
    plain_input = cfg.get("normalize_activations", "none") == "none" and cfg.get("reshape_activations", "none") == "none"
    if not plain_input or not cfg.get("apply_b_dec_to_input", True):
        raise UserError(f"{directory}: only SAEs with normalize_activations=none, apply_b_dec_to_input=true and no reshaping are supported")
    if meta:
        try:
            sae_cfg = SAEConfig.from_dict(meta["sae_config"])
        except (KeyError, TypeError) as exc:
            raise UserError(f"{directory / META_FILE} has no valid sae_config ({exc})") from exc
        rescaled = False
    else:
        if saelens_arch not in FROM_SAELENS:
            raise UserError(f"{directory}: SAELens architecture {saelens_arch!r} is not supported (supported: {', '.join(FROM_SAELENS)})")
        topk_family = saelens_arch in _SAELENS_TOPK_FAMILY
        rescaled = topk_family and bool(cfg.get("rescale_acts_by_decoder_norm", False))
        try:
            k = int(cfg["k"]) if topk_family else None
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{directory / CFG_FILE}: a SAELens {saelens_arch} SAE needs an integer k ({exc})") from exc
        sae_cfg = SAEConfig(arch=FROM_SAELENS[saelens_arch], d_in=d_in, d_sae=d_sae, k=k)
    if (sae_cfg.d_in, sae_cfg.d_sae) != (d_in, d_sae):
        raise UserError(f"{directory}: cfg.json says d_in={d_in}, d_sae={d_sae} but the metadata says {sae_cfg.d_in}, {sae_cfg.d_sae}")
    sae = build_sae(sae_cfg)
    if meta and sae.saelens_architecture != saelens_arch:
        raise UserError(
            f"{directory}: cfg.json architecture {saelens_arch!r} does not match {sae.arch!r} (expected {sae.saelens_architecture!r})"
        )
    try:
        state = load_file(str(directory / WEIGHTS_FILE))
    except (OSError, SafetensorError, ValueError) as exc:
        raise UserError(f"{directory / WEIGHTS_FILE} is not a readable safetensors file ({exc})") from exc
    if not meta:
        state = _saelens_training_form_to_inference(saelens_arch, state, d_sae)
    expected = {name: tuple(t.shape) for name, t in sae.saelens_state().items()}
    if set(state) != set(expected):
        raise UserError(f"{directory / WEIGHTS_FILE} holds tensors {sorted(state)} but a {sae.arch} SAE needs {sorted(expected)}")
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            raise UserError(f"{directory / WEIGHTS_FILE}: {name} has shape {tuple(state[name].shape)}, expected {shape}")
        if not state[name].is_floating_point() or not bool(torch.isfinite(state[name]).all()):
            raise UserError(f"{directory / WEIGHTS_FILE}: {name} contains NaN/inf or is not floating point; retrain the SAE")
    if rescaled:
        state = fold_decoder_norms({name: tensor.float() for name, tensor in state.items()})
    sae.load_saelens_state(state)
    for param in sae.parameters():
        param.requires_grad_(False)
    scale = meta.get("input_scale_folded")
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)):
        raise UserError(f"{directory / META_FILE}: input_scale_folded must be a finite number")
    return LoadedSAE(sae=sae.eval(), meta=meta, path=directory)

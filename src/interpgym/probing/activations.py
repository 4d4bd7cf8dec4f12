"""Residual-stream activations of texts at one layer, pooled over tokens, cached per (model, layer, dataset).

The site `layer` is the input of decoder block `layer` (HF `hidden_states[layer]`,
TransformerLens `blocks.{layer}.hook_resid_pre`), as in `subjects.lm_loader`. A forward
pre-hook captures it and stops the forward pass there, so collecting layer L costs
L blocks, not the whole model. Works on any Hugging Face decoder whose blocks are in
`model.model.layers` (Llama, Mistral, Qwen2, SmolLM) or `model.transformer.h` (GPT-2).

Pooling (over a text's real tokens, right padding masked out):

* `mean` and `max` skip position 0 when the text has more than one token: position 0
  is the model's attention sink, with a residual norm ~100x the others in SmolLM2
  (see `subjects.smollm2`), which would otherwise dominate both pools;
* `last` is the last real token (what repeng and steering-vectors read by default).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import UserError

POOLINGS: tuple[str, ...] = ("mean", "max", "last")


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder blocks of an HF causal LM (`UserError` for an unknown layout)."""
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "layers"):
        return inner.layers
    transformer = getattr(model, "transformer", None)
    if transformer is not None and hasattr(transformer, "h"):
        return transformer.h
    raise UserError(f"{type(model).__name__} has neither model.layers nor transformer.h: use a Llama/Mistral/Qwen2/GPT-2 style causal LM")


def check_layer(model: torch.nn.Module, layer: int) -> int:
    """`layer` if 0 <= layer < n_layers, else a `UserError` naming the range."""
    n = len(decoder_layers(model))
    if not 0 <= layer < n:
        raise UserError(f"layer {layer} is out of range: the model has {n} blocks, use 0..{n - 1}")
    return layer


class _Stop(Exception):
    pass


def _ensure_pad(tokenizer) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


@torch.no_grad()
def residual_batches(model: torch.nn.Module, tokenizer, texts: Sequence[str], layer: int, batch_size: int = 16, progress=None):
    """Yield (residual [b t d], mask [b t] bool) per batch of `texts` at the input of block `layer` (right-padded)."""
    check_layer(model, layer)
    _ensure_pad(tokenizer)
    device = next(model.parameters()).device
    captured: list[Tensor] = []

    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        captured.append(hidden)
        raise _Stop

    handle = decoder_layers(model)[layer].register_forward_pre_hook(hook, with_kwargs=True)
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start : start + batch_size]), return_tensors="pt", padding=True, add_special_tokens=True)
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            captured.clear()
            try:
                model(**enc, use_cache=False)
            except _Stop:
                pass
            yield captured[0].float(), enc["attention_mask"].bool()
            if progress is not None:
                progress(len(enc["input_ids"]))
    finally:
        handle.remove()
        tokenizer.padding_side = side


def pool(resid: Float[Tensor, "b t d"], mask: Tensor, how: str) -> Float[Tensor, "b d"]:
    """Pool each row's real tokens (`mask`) by `how` in POOLINGS (see the module docstring)."""
    lengths = mask.sum(1)
    if how == "last":
        return resid[torch.arange(len(resid), device=resid.device), lengths - 1]
    keep = mask.clone()
    keep[lengths > 1, 0] = False  # the attention sink
    if how == "mean":
        return (resid * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
    if how == "max":
        return resid.masked_fill(~keep[..., None], float("-inf")).amax(1)
    raise UserError(f"unknown pooling {how!r}: use one of {', '.join(POOLINGS)}")


def pooled_activations(model: torch.nn.Module, tokenizer, texts: Sequence[str], layer: int, *, batch_size: int = 16,
                       progress=None, token_rows: bool = False) -> dict[str, Tensor]:
    """{pooling: [n, d] float32 on CPU} for every pooling; with `token_rows`, also `tokens`: every real token's row but position 0."""
    out: dict[str, list[Tensor]] = {p: [] for p in POOLINGS}
    rows: list[Tensor] = []
    for resid, mask in residual_batches(model, tokenizer, texts, layer, batch_size, progress):
        for how in POOLINGS:
            out[how].append(pool(resid, mask, how).cpu())
        if token_rows:
            keep = mask.clone()
            keep[:, 0] = False
            rows.append(resid[keep].cpu())
    result = {p: torch.cat(v) for p, v in out.items()}
    if token_rows:
        result["tokens"] = torch.cat(rows)
    return result


def cached_concept_activations(lm, concept, layer: int, *, batch_size: int = 16, progress=None) -> dict[str, dict[str, Tensor]]:
    """{split: {pooling: [n, d], and for train `tokens`}} of `concept` under `lm` (a `LanguageModel`),
    built once per (model, layer, dataset)."""
    from interpgym.probing.concepts import SPLITS

    check_layer(lm.model, layer)
    config = {"model": lm.identity, "layer": layer, "dataset": concept.fingerprint, "poolings": list(POOLINGS), "version": 1}

    def build(tmp) -> None:
        tensors = {}
        for split in SPLITS:
            acts = pooled_activations(lm.model, lm.tokenizer, concept.splits[split].texts, layer, batch_size=batch_size,
                                      progress=progress, token_rows=split == "train")
            for key, value in acts.items():
                tensors[f"{split}.{key}"] = value.contiguous()
        save_file(tensors, str(tmp / "acts.safetensors"))

    path = get_or_build("probe_acts", config, build, full_verify=False)
    flat = load_file(str(path / "acts.safetensors"))
    out: dict[str, dict[str, Tensor]] = {}
    for key, value in flat.items():
        split, _, name = key.partition(".")
        out.setdefault(split, {})[name] = value
    return out

"""Applying a direction to a Hugging Face causal LM: addition (steering), directional ablation, seeded batched generation.

Site convention (as everywhere in interpgym): `layer` is the *input* of decoder block
`layer` (HF `hidden_states[layer]`). steering-vectors and repeng hook the *output* of
block L, which is the input of block L + 1: their layer L is our layer L + 1.

Both context managers register forward pre-hooks and remove them on exit, also when
the body raises (`try/finally`), so a model is never left steered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.probing.activations import check_layer, decoder_layers


def _replace_hidden(args: tuple, kwargs: dict, fn) -> tuple[tuple, dict]:
    if args:
        return (fn(args[0]), *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": fn(kwargs["hidden_states"])}


def _vector(model: torch.nn.Module, direction: Tensor) -> Tensor:
    d = model.config.hidden_size
    v = torch.as_tensor(direction).detach().flatten()
    if v.shape != (d,):
        raise UserError(f"direction has {v.numel()} entries, the model's residual stream has {d}")
    if not torch.isfinite(v).all():
        raise UserError("direction contains NaN or inf")
    p = next(model.parameters())
    return v.to(device=p.device, dtype=p.dtype)


@contextmanager
def steering(model: torch.nn.Module, direction: Float[Tensor, " d"], alpha: float, layer: int) -> Iterator[None]:
    """Within the block, add `alpha * direction` to the residual stream entering block `layer`, at every position.

    The direction is used as given (not normalised). Hooks are removed on exit, also on exceptions.
    """
    check_layer(model, layer)
    delta = float(alpha) * _vector(model, direction)

    def hook(module, args, kwargs):
        return _replace_hidden(args, kwargs, lambda h: h + delta.to(h.dtype))

    handle = decoder_layers(model)[layer].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def row_steering(model: torch.nn.Module, offsets: Float[Tensor, "batch d"], layer: int) -> Iterator[None]:
    """Within the block, add `offsets[b]` to the residual stream entering block `layer` for batch row b, at every
    position: one forward pass steers each row with its own vector (a batch of concepts or alphas at once).
    Every forward inside must have exactly `batch` rows. Hooks are removed on exit, also on exceptions."""
    check_layer(model, layer)
    p = next(model.parameters())
    deltas = torch.as_tensor(offsets).detach().to(device=p.device, dtype=p.dtype)
    if deltas.ndim != 2 or deltas.shape[1] != model.config.hidden_size or not torch.isfinite(deltas).all():
        raise UserError(f"row offsets must be finite [batch, {model.config.hidden_size}] (got {tuple(deltas.shape)})")

    def hook(module, args, kwargs):
        return _replace_hidden(args, kwargs, lambda h: h + deltas.to(h.dtype)[:, None, :])

    handle = decoder_layers(model)[layer].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def ablation(model: torch.nn.Module, direction: Float[Tensor, " d"], from_layer: int) -> Iterator[None]:
    """Within the block, project `direction` out of the residual stream entering every block >= `from_layer`
    and the final norm: h <- h - (h . u) u with u = direction / |direction|. Hooks removed on exit."""
    check_layer(model, from_layer)
    v = _vector(model, direction)
    u = v / v.norm()

    def project(h: Tensor) -> Tensor:
        uu = u.to(h.dtype)
        return h - (h @ uu)[..., None] * uu

    def hook(module, args, kwargs):
        return _replace_hidden(args, kwargs, project)

    targets = list(decoder_layers(model)[from_layer:])
    final_norm = getattr(getattr(model, "model", None), "norm", None) or getattr(getattr(model, "transformer", None), "ln_f", None)
    if final_norm is not None:
        targets.append(final_norm)
    handles = []
    try:
        for module in targets:
            handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def format_prompt(tokenizer, instruction: str, system: str | None = None) -> str:
    """The chat-formatted prompt (the tokenizer's chat template when it has one, else a plain User/Assistant layout)."""
    if getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": instruction}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    head = f"System: {system}\n" if system else ""
    return f"{head}User: {instruction}\nAssistant:"


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 32, seed: int = 0,
             temperature: float = 0.0, batch_size: int = 16,
             row_offsets: tuple[int, Float[Tensor, "n d"]] | None = None) -> tuple[list[str], int]:
    """Continuations of `prompts` (batched, left-padded, KV-cached `model.generate`) and the count of new tokens.

    `temperature == 0` is greedy; otherwise sampling with a generator seeded by `seed`
    per batch, so the same seed gives the same text on CPU. Steering hooks active
    around the call apply to every forward pass, prompt and new tokens alike.
    `row_offsets=(layer, offsets)` steers prompt i with its own vector `offsets[i]`
    (`row_steering`), so generations with different directions or alphas share batches.
    """
    if row_offsets is not None and len(row_offsets[1]) != len(prompts):
        raise UserError(f"row_offsets has {len(row_offsets[1])} rows for {len(prompts)} prompts")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    texts, new_tokens = [], 0
    try:
        for b, start in enumerate(range(0, len(prompts), batch_size)):
            enc = tokenizer(list(prompts[start : start + batch_size]), return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            sample = temperature > 0
            options = {"do_sample": sample, "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
            if sample:
                options.update(temperature=temperature, top_k=0, top_p=1.0)
            else:
                options.update(temperature=None, top_k=None, top_p=None)
            rows = nullcontext() if row_offsets is None else \
                row_steering(model, row_offsets[1][start : start + batch_size], row_offsets[0])
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), rows:
                torch.manual_seed(seed * 1_000_003 + b)
                out = model.generate(**enc, **options)
            fresh = out[:, enc["input_ids"].shape[1] :]
            for row in fresh:
                keep = row[row != tokenizer.pad_token_id] if tokenizer.pad_token_id != tokenizer.eos_token_id else row
                ids = keep.tolist()
                if tokenizer.eos_token_id in ids:
                    ids = ids[: ids.index(tokenizer.eos_token_id)]
                new_tokens += len(ids)
                texts.append(tokenizer.decode(ids, skip_special_tokens=True).strip())
    finally:
        tokenizer.padding_side = side
    return texts, new_tokens

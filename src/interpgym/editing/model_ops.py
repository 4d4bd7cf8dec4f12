"""What the editors need from a Llama-style LM: tokenised prompts, MLP keys and values, scoring, generation.

The edited weight is the MLP's output projection `model.layers[l].mlp.down_proj`
(W: d_model x d_ff): its input is the *key* k = act(gate(x)) * up(x) and its output the
*value* W k (ROME's view of the MLP as a key-value memory).

Batches are right-padded: every sequence keeps positions 0..len-1, exactly as it would
alone (left padding would shift rotary positions), and every read-out uses each row's
own indices, so a batched score equals the unbatched one (tested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.errors import require
from interpgym.subjects.lm_loader import LanguageModel


def down_proj(lm: LanguageModel, layer: int) -> torch.nn.Linear:
    """The MLP output projection of block `layer` (the weight every editor changes)."""
    require(0 <= layer < lm.n_layers, f"layer {layer} is out of range: the model has blocks 0..{lm.n_layers - 1}")
    return lm.model.model.layers[layer].mlp.down_proj


def encode(lm: LanguageModel, text: str) -> list[int]:
    """Token ids of `text` without special tokens."""
    return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(template: str, subject: str) -> str:
    """`template` with the subject put in, first letter upper-cased (subjects like `the Louvre`)."""
    return capitalise(template.format(subject))


@dataclass(frozen=True)
class Prompt:
    """A prompt's token ids and the index of its subject's last token (None if it has no subject)."""

    ids: tuple[int, ...]
    subject_last: int | None


def subject_prompt(lm: LanguageModel, template: str, subject: str, prefix: str = "") -> Prompt:
    """Tokenise `prefix + fill(template, subject)` and locate the subject's last token.

    The index is that of the last token of the text up to the end of the subject, so a
    subject split into several tokens is read at its final one (ROME's `subject_last`).
    """
    text = prefix + fill(template, subject)
    start = text.lower().find(subject.lower(), len(prefix))
    require(start >= 0, f"subject {subject!r} is not in prompt {text!r}")
    upto = encode(lm, text[: start + len(subject)])
    ids = encode(lm, text)
    require(ids[: len(upto)] == upto, f"tokenisation of {text!r} does not extend that of its subject prefix")
    return Prompt(tuple(ids), len(upto) - 1)


def _pad(rows: Sequence[Sequence[int]], pad: int, device: torch.device) -> tuple[Int[Tensor, "b t"], Int[Tensor, "b t"]]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def pad_id(lm: LanguageModel) -> int:
    tok = lm.tokenizer
    return tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)


def forward_logits(lm: LanguageModel, rows: Sequence[Sequence[int]]) -> Float[Tensor, "b t vocab"]:
    """Logits of right-padded `rows` (grad follows whatever hooks are active)."""
    ids, mask = _pad(rows, pad_id(lm), lm.device)
    return lm.model(input_ids=ids, attention_mask=mask).logits


def logits_at(lm: LanguageModel, rows: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]) -> list[Float[Tensor, "p vocab"]]:
    """Logits of right-padded `rows` at each row's `positions` only (the unembedding skips the rest; grad follows hooks)."""
    ids, mask = _pad(rows, pad_id(lm), lm.device)
    hidden = lm.model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    r = torch.cat([torch.full((len(p),), i) for i, p in enumerate(positions)]).to(lm.device)
    c = torch.cat([torch.tensor(list(p), dtype=torch.long) for p in positions]).to(lm.device)
    return list(lm.model.lm_head(hidden[r, c]).split([len(p) for p in positions]))


def continuation_logprobs(
    lm: LanguageModel, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]], batch_size: int = 64
) -> tuple[Float[Tensor, " n"], Int[Tensor, " n"]]:
    """Sum of log p(continuation tokens | prompt) per pair, and the continuation lengths.

    Cost: one forward pass over every prompt + continuation (batched, right-padded).
    """
    require(len(prompts) == len(continuations), "prompts and continuations differ in number")
    sums, lengths = [], []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            chunk = list(zip(prompts[start : start + batch_size], continuations[start : start + batch_size], strict=True))
            ids, mask = _pad([list(p) + list(c) for p, c in chunk], pad_id(lm), lm.device)
            hidden = lm.model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            # unembed only the positions that predict continuation tokens (most positions are prompt)
            rows = torch.cat([torch.full((len(c),), i) for i, (_, c) in enumerate(chunk)]).to(lm.device)
            cols = torch.cat([torch.arange(len(p) - 1, len(p) + len(c) - 1) for p, c in chunk]).to(lm.device)
            targets = torch.tensor([t for _, c in chunk for t in c], device=lm.device)
            logp = torch.log_softmax(lm.model.lm_head(hidden[rows, cols]).float(), -1)
            picked = logp[torch.arange(len(targets), device=lm.device), targets].cpu()
            sums.extend(part.sum() for part in picked.split([len(c) for _, c in chunk]))
            lengths.extend(len(c) for _, c in chunk)
    return torch.stack(sums).double(), torch.tensor(lengths)


@torch.no_grad()
def object_logprobs(lm: LanguageModel, prompt: Sequence[int], objects: Sequence[Sequence[int]]) -> Float[Tensor, " n"]:
    """Sum of log p(object tokens | prompt) for every object after one shared prompt (float64).

    The prompt is run once and its key/value cache repeated for the objects, so ranking n
    objects costs one prompt pass plus n short continuations instead of n full passes.
    Equals `continuation_logprobs` on the (prompt, object) pairs (tested).
    """
    first = lm.model(input_ids=torch.tensor([list(prompt)], device=lm.device), use_cache=True)
    first_logp = torch.log_softmax(first.logits[0, -1].float(), -1)
    heads = torch.tensor([o[0] for o in objects], device=lm.device)
    total = first_logp[heads].double()
    tails = [list(o[1:]) for o in objects]
    if max(len(t) for t in tails) == 0:
        return total.cpu()
    cache = first.cache
    cache.batch_repeat_interleave(len(objects))
    # feed every object but its last token; right-padded, positions continue after the prompt
    feed = [list(o[:-1]) if len(o) > 1 else [o[0]] for o in objects]
    ids, mask = _pad(feed, pad_id(lm), lm.device)
    full_mask = torch.cat([torch.ones(len(objects), len(prompt), dtype=mask.dtype, device=lm.device), mask], 1)
    positions = torch.arange(len(prompt), len(prompt) + ids.shape[1], device=lm.device)[None].expand(len(objects), -1)
    logits = lm.model(input_ids=ids, attention_mask=full_mask, position_ids=positions, cache=cache).logits
    logp = torch.log_softmax(logits.float(), -1)
    for i, tail in enumerate(tails):
        if tail:
            total[i] += logp[i, torch.arange(len(tail), device=lm.device), torch.tensor(tail, device=lm.device)].double().sum()
    return total.cpu()


@torch.no_grad()
def greedy_generate(lm: LanguageModel, prompt: str, max_new_tokens: int) -> str:
    """Greedy continuation of `prompt` (no teacher forcing), decoded text of the new tokens only."""
    ids = torch.tensor([encode(lm, prompt)], device=lm.device)
    out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                            do_sample=False, pad_token_id=pad_id(lm))
    return lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


@contextlib.contextmanager
def add_to_output(module: torch.nn.Module, rows: Sequence[int], positions: Sequence[int], delta: Tensor) -> Iterator[None]:
    """Add `delta` (d,) to `module`'s output at (rows[i], positions[i]) on every forward inside the block."""
    r = torch.tensor(list(rows))
    p = torch.tensor(list(positions))

    def hook(_m, _args, out):
        out = out.clone()
        out[r.to(out.device), p.to(out.device)] += delta.to(out.dtype)
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class StopForward(Exception):
    """Raised by a read-out hook to end a forward pass once the wanted activation is seen."""


def run_until(lm: LanguageModel, module: torch.nn.Module, ids: Tensor, mask: Tensor | None, read: str) -> Tensor:
    """Run `lm` on `ids` only as far as `module` and return its input (`read="input"`) or output."""

    def pre(_m, args):
        raise StopForward(args[0].detach())

    def post(_m, _args, out):
        raise StopForward((out[0] if isinstance(out, tuple) else out).detach())

    handle = module.register_forward_pre_hook(pre) if read == "input" else module.register_forward_hook(post)
    try:
        lm.model(input_ids=ids, attention_mask=mask)
    except StopForward as stop:
        return stop.args[0]
    finally:
        handle.remove()
    raise RuntimeError(f"module {module} was not reached in the forward pass")


def _read_at(lm: LanguageModel, module: torch.nn.Module, prompts: Sequence[Prompt], read: str, batch_size: int) -> Tensor:
    rows = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            ids, mask = _pad([p.ids for p in chunk], pad_id(lm), lm.device)
            acts = run_until(lm, module, ids, mask, read)
            rows.extend(acts[i, p.subject_last] for i, p in enumerate(chunk))
    return torch.stack(rows).double()


def keys_at(lm: LanguageModel, layer: int, prompts: Sequence[Prompt], batch_size: int = 32) -> Float[Tensor, "n d_ff"]:
    """The MLP keys of block `layer` at each prompt's subject-last token (float64). Cost: blocks 0..layer."""
    return _read_at(lm, down_proj(lm, layer), prompts, "input", batch_size)


def residuals_after(lm: LanguageModel, layer: int, prompts: Sequence[Prompt], batch_size: int = 32) -> Float[Tensor, "n d"]:
    """The residual stream leaving block `layer` at each prompt's subject-last token (float64). Cost: blocks 0..layer."""
    return _read_at(lm, lm.model.model.layers[layer], prompts, "output", batch_size)

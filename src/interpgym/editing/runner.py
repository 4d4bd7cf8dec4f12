"""Run an editing method over facts and score it: the engine behind `interpgym edit run`.

Protocols:

* single-edit methods (`rome`, `ft`, `none`) without `sequential`: CounterFact's
  protocol, every fact edited alone into the base model, scored, and the weights
  restored; teacher-forced metrics and generation efficacy are means over facts;
  retention, perplexity change and entropy are means over the first `detail_edits`
  edits (they cost a pass over the retention set and text each);
* batch methods (`memit`, `alphaedit`) without `sequential`: all facts in one edit,
  scored once;
* `sequential`: facts edited one at a time in order, never restored; at each
  checkpoint (1, 10, 100, 1000 edits, those <= n) the edits so far are scored (S,
  ES/PS/NS, retention, perplexity change) into `curve`; `metrics` are those after the
  last edit.

The base weights are restored in memory at the end; nothing is written to the model's files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interpgym.core.progress import progress_bar
from interpgym.editing.facts import Fact
from interpgym.editing.methods import EditConfig, Editor, Snapshot
from interpgym.editing.metrics import (
    EvalConfig,
    HeldOutText,
    counterfact_scores,
    fluency_entropy,
    generation_efficacy,
    harmonic_mean,
    retention,
)
from interpgym.subjects.lm_loader import LanguageModel

CHECKPOINTS = (1, 10, 100, 1000)
SINGLE_METHODS = ("rome", "ft", "none")


@dataclass
class Baseline:
    """The unedited model's retention-set answers and held-out perplexity."""

    perplexity: float
    retention: float


def delta_ratio(deltas: dict[str, torch.Tensor], snapshot: Snapshot) -> float:
    """||Delta W||_F / ||W||_F over the edited parameters together."""
    if not deltas:
        return 0.0
    return float(torch.sqrt(sum(d.double().pow(2).sum() for d in deltas.values()))) / snapshot.norms()


def _state_metrics(lm: LanguageModel, text: HeldOutText, base: Baseline, keep: list[Fact]) -> dict[str, float]:
    return {"retention": retention(lm, keep) if keep else float("nan"), "ppl_change": text.perplexity(lm) / base.perplexity - 1.0}


def run_edits(
    lm: LanguageModel, facts: list[Fact], keep: list[Fact], config: EditConfig, evaluation: EvalConfig = EvalConfig(),
    sequential: bool = False, detail_edits: int = 10, progress: bool = True,
) -> dict[str, Any]:
    """Edit `facts` with `config` and score (see module docs); `keep` are unedited facts for retention.

    Returns {"method", "n_edits", "metrics", "curve", "timing", "layers"}; metrics has
    every key of `metrics.METRIC_KEYS` plus `gen_neighbour_kept` and `dw_ratio`.
    """
    editor = Editor(lm, config, progress=progress)
    started, cpu_started = time.perf_counter(), time.process_time()
    editor.prepare()
    prepare_s, prepare_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    snapshot = Snapshot(lm, config.layers)
    text = HeldOutText(lm)
    base = Baseline(text.perplexity(lm), retention(lm, keep) if keep else float("nan"))
    edit_times: list[float] = []
    edit_cpu: list[float] = []
    curve: list[dict[str, float]] = []

    def timed_edit(batch: list[Fact]) -> dict[str, torch.Tensor]:
        t0, c0 = time.perf_counter(), time.process_time()
        out = editor.edit(batch)
        edit_times.append(time.perf_counter() - t0)
        edit_cpu.append(time.process_time() - c0)
        return out

    try:
        with progress_bar(enabled=progress, transient=True) as bar:
            task = bar.add_task(f"{config.method}: editing and scoring", total=len(facts))
            if sequential:
                total: dict[str, torch.Tensor] = {}
                for k, fact in enumerate(facts, start=1):
                    for name, d in timed_edit([fact]).items():
                        total[name] = total.get(name, 0) + d
                    bar.advance(task)
                    if k in CHECKPOINTS or k == len(facts):
                        point = {"n_edits": k, **counterfact_scores(lm, facts[:k]), **_state_metrics(lm, text, base, keep)}
                        curve.append(point)
                metrics = {k: v for k, v in curve[-1].items() if k != "n_edits"}
                metrics.update(_generation(lm, facts, evaluation))
                metrics["dw_ratio"] = delta_ratio(total, snapshot)
            elif config.method in SINGLE_METHODS:
                rows = []
                for i, fact in enumerate(facts):
                    deltas = timed_edit([fact])
                    row = {**counterfact_scores(lm, [fact]), "dw_ratio": delta_ratio(deltas, snapshot)}
                    if evaluation.generation:
                        row.update(generation_efficacy(lm, [fact], evaluation.gen_tokens))
                    if i < detail_edits:
                        row.update(_state_metrics(lm, text, base, keep))
                        if evaluation.generation and i < evaluation.fluency_facts:
                            row["entropy"] = fluency_entropy(lm, [fact], evaluation.fluency_tokens)
                    rows.append(row)
                    snapshot.restore()
                    bar.advance(task)
                metrics = {k: float(np.nanmean([r[k] for r in rows if k in r])) for k in rows[0] | rows[-1]}
                metrics["s"] = harmonic_mean([metrics["es"], metrics["ps"], metrics["ns"]])
            else:
                deltas = timed_edit(facts)
                bar.advance(task, len(facts))
                metrics = {**counterfact_scores(lm, facts), **_state_metrics(lm, text, base, keep)}
                metrics.update(_generation(lm, facts, evaluation))
                metrics["dw_ratio"] = delta_ratio(deltas, snapshot)
    finally:
        snapshot.restore()
    for key in ("gen_efficacy", "gen_neighbour_kept", "entropy", "retention", "ppl_change"):
        metrics.setdefault(key, float("nan"))
    return {
        "method": config.method, "n_edits": len(facts), "layers": list(config.layers), "sequential": sequential,
        "metrics": metrics, "curve": curve,
        "baseline": {"perplexity": base.perplexity, "retention": base.retention, "retention_facts": len(keep)},
        "timing": {"prepare_s": prepare_s, "prepare_cpu_s": prepare_cpu_s, "edit_s_mean": float(np.mean(edit_times)) if edit_times else 0.0,
                   "edit_s_total": float(np.sum(edit_times)),
                   "edit_cpu_s_mean": float(np.mean(edit_cpu)) if edit_cpu else 0.0},
        "null_space_dims": {str(k): v for k, v in editor.null_dims.items()},
    }  # fmt: skip


def _generation(lm: LanguageModel, facts: list[Fact], evaluation: EvalConfig) -> dict[str, float]:
    if not evaluation.generation:
        return {}
    out = generation_efficacy(lm, facts, evaluation.gen_tokens)
    out["entropy"] = fluency_entropy(lm, facts[: evaluation.fluency_facts], evaluation.fluency_tokens)
    return out

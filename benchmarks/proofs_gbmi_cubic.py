"""Benchmark: gbmi's cubic max-of-K proof run beside ours on the same weights.

The reference is the compact-proofs paper's code (github.com/JasonGross/
guarantees-based-mechanistic-interpretability, `gbmi/exp_max_of_n/verification/cubic.py`),
imported from a local checkout given by `--gbmi` (nothing of it is copied here). Its
plotting and training imports (imageio, seaborn, lightning) are not installed here and are
replaced by empty stand-ins; the verification path uses only torch and TransformerLens.

Per seed of the default model (v=64, K=4, d=32, 3000 steps) it
  * builds a TransformerLens `HookedTransformer` from our weights and checks that its
    last-position logits equal ours (`last_logits`) on every input;
  * runs gbmi's `verify_proof` (its accuracy lower bound, about the exact-arithmetic model)
    and checks gbmi's certificate per input against the float32 model (brute force);
  * runs our `cubic` (sound for the float32 model: per-entry error bounds, pure inputs
    decided whole), checks its certificate per input against the float32 model too, and
    for comparison the earlier form with one global slack S (`roundoff.margin_slack`) and
    the certificate at slack 0 (the exact-arithmetic analogue of gbmi's statement), all
    side by side.

    PYTHONPATH=src python benchmarks/proofs_gbmi_cubic.py --gbmi /path/to/gbmi-checkout --gbmi-commit SHA --json out.json
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.proofs.brute_force import exact_correctness
from interpgym.proofs.certificates import certified_mask, count_certified
from interpgym.proofs.cubic import cubic, cubic_certificate
from interpgym.proofs.inputs import tokens_at
from interpgym.proofs.pure_inputs import pure_margins
from interpgym.proofs.roundoff import margin_slack, value_logit_bound
from interpgym.proofs.tables import compute_tables
from interpgym.subjects.maxk import MaxKConfig, MaxKWeights, last_logits, train_maxk

UNINSTALLED_REFERENCE_IMPORTS = ("imageio", "seaborn", "lightning")


def import_gbmi_cubic(checkout: Path) -> Any:
    """gbmi's cubic verification module from `checkout` (its unused plotting/training imports stubbed)."""
    sys.path.insert(0, str(checkout))
    for name in UNINSTALLED_REFERENCE_IMPORTS:
        try:
            __import__(name)
        except ModuleNotFoundError:
            sys.modules[name] = mock.MagicMock(name=name)
    import gbmi.exp_max_of_n.verification.cubic as gbmi_cubic

    return gbmi_cubic


def hooked_transformer(w: MaxKWeights) -> Any:
    """Our weights as a 1-layer attention-only TransformerLens model (no LayerNorm, zero biases)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=w.d_model, n_ctx=w.k, d_head=w.d_head, n_heads=1, d_vocab=w.vocab,
                                  d_vocab_out=w.vocab, attn_only=True, normalization_type=None, act_fn="relu", seed=0,
                                  device="cpu", default_prepend_bos=False)
    model = HookedTransformer(cfg)
    state = model.state_dict()
    for name in list(state):
        state[name] = torch.zeros_like(state[name]) if name.endswith(("b_Q", "b_K", "b_V", "b_O", "b_U")) else state[name]
    state.update({"embed.W_E": w.W_E, "pos_embed.W_pos": w.W_pos, "unembed.W_U": w.W_U,
                  "blocks.0.attn.W_Q": w.W_Q[None], "blocks.0.attn.W_K": w.W_K[None], "blocks.0.attn.W_V": w.W_V[None],
                  "blocks.0.attn.W_O": w.W_O[None]})
    model.load_state_dict(state)
    return model


def gbmi_certified_mask(largest_wrong_logit: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per input, whether gbmi's counting (`count_correct_sequences_cubic`) counts it as correct:
    every non-max token c among the first K-1 positions has largest_wrong_logit[q, m, c, n_c] < 0
    with n_c the number of non-max first positions; the inputs with none use [q, m, m, 0]."""
    m = tokens.max(dim=1).values
    q = tokens[:, -1]
    first = tokens[:, :-1]
    nonmax = first != m[:, None]
    copies = nonmax.sum(dim=1)
    ok_token = largest_wrong_logit[q[:, None], m[:, None], first, copies[:, None]] < 0  # NaN compares False
    mixed = (ok_token | ~nonmax).all(dim=1)
    pure = largest_wrong_logit[q, m, m, torch.zeros_like(q)] < 0
    return torch.where(copies == 0, pure, mixed)


def bench_seed(seed: int, gbmi_cubic: Any) -> dict[str, Any]:
    w = train_maxk(MaxKConfig(seed=seed), progress=False).weights
    tokens = tokens_at(w.vocab, w.k, 0, w.vocab**w.k)
    model = hooked_transformer(w)
    logits_gap = 0.0
    with torch.no_grad():
        for begin in range(0, tokens.shape[0], 1 << 16):
            chunk = tokens[begin : begin + (1 << 16)]
            logits_gap = max(logits_gap, float((model(chunk)[:, -1] - last_logits(w, chunk)).abs().max()))

    started = time.perf_counter()
    reference = gbmi_cubic.verify_proof(model, gbmi_cubic.find_proof(model), print_complexity=False, print_results=False)
    gbmi_wall = time.perf_counter() - started
    gbmi_mask = gbmi_certified_mask(reference["largest_wrong_logit"], tokens)
    correct = exact_correctness(w).correct
    ours = cubic(w)
    tables = compute_tables(w)
    ours_mask = certified_mask(ours.ok, ours.ok_pure, tokens)
    global_slack = margin_slack(w, value_logit_bound(tables.EVOU, tables.PVOU))
    global_ok, global_pure = cubic_certificate(tables, global_slack)
    exact_arith_ok, exact_arith_pure = cubic_certificate(tables, 0.0)
    index = torch.arange(w.vocab)
    exact_pure = exact_arith_pure | ((pure_margins(tables) > 0) & (index[None, :] <= index[:, None]))
    total = w.vocab**w.k
    return {
        "seed": seed,
        "tl_logits_max_abs_diff": logits_gap,
        "exact_accuracy_float32": float(correct.float().mean()),
        "gbmi_bound": float(reference["accuracy_lower_bound"]),
        "gbmi_wall_s": gbmi_wall,
        "gbmi_counted_inputs_recounted": int(gbmi_mask.sum()),
        "gbmi_certified_but_float32_wrong": int((gbmi_mask & ~correct).sum()),
        "ours_cubic_bound": ours.bound,
        "ours_cubic_certified": ours.certified,
        "ours_minus_gbmi_inputs": ours.certified - int(gbmi_mask.sum()),
        "ours_cubic_wall_s": ours.wall_s,
        "ours_cubic_flops": ours.flops,
        "ours_certified_but_float32_wrong": int((ours_mask & ~correct).sum()),
        "ours_global_slack": global_slack,
        "ours_global_slack_bound": count_certified(global_ok, global_pure) / total,
        "ours_cubic_at_slack_0": count_certified(exact_arith_ok, exact_arith_pure) / total,
        "ours_cubic_at_slack_0_exact_pure_inputs": count_certified(exact_arith_ok, exact_pure) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gbmi", type=Path, required=True, help="checkout of guarantees-based-mechanistic-interpretability")
    parser.add_argument("--gbmi-commit", default="", help="the checkout's commit, stored in the JSON")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gbmi_cubic = import_gbmi_cubic(args.gbmi)
    runs = [bench_seed(int(s), gbmi_cubic) for s in args.seeds.split(",")]
    write_json_atomic(args.json, {"machine": platform.platform(), "torch": torch.__version__, "gbmi": str(args.gbmi),
                                  "gbmi_commit": args.gbmi_commit, "runs": runs})
    table = Table(title="cubic accuracy bound: gbmi's code vs ours, same weights")
    for column in ("seed", "exact (f32)", "gbmi", "ours (f32-sound)", "ours - gbmi (inputs)", "global slack S", "ours @ S",
                   "ours @ slack 0", "+ exact pure", "gbmi wall s", "ours wall s", "gbmi cert. & f32 wrong", "ours cert. & f32 wrong"):
        table.add_column(column, justify="right")
    for r in runs:
        table.add_row(str(r["seed"]), f"{r['exact_accuracy_float32']:.6f}", f"{r['gbmi_bound']:.6f}", f"{r['ours_cubic_bound']:.6f}",
                      str(r["ours_minus_gbmi_inputs"]),
                      f"{r['ours_global_slack']:.4f}", f"{r['ours_global_slack_bound']:.6f}",
                      f"{r['ours_cubic_at_slack_0']:.6f}", f"{r['ours_cubic_at_slack_0_exact_pure_inputs']:.6f}",
                      f"{r['gbmi_wall_s']:.1f}", f"{r['ours_cubic_wall_s']:.2f}", str(r["gbmi_certified_but_float32_wrong"]),
                      str(r["ours_certified_but_float32_wrong"]))
    Console(width=160).print(table)


if __name__ == "__main__":
    main()

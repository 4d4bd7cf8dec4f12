"""Benchmark: how far can a cubic loss argument of the Hoelder form get? (sampled estimates)

The cubic loss proof bounds an input's log excess by an attention-weighted average of
per-key log-sum-exps U'(t) (Hoelder), then pessimises the attention over every input of a
case (pure inputs, extreme orderings). This script estimates, on uniformly sampled inputs
of the default model, the expected loss each relaxation would give (softplus of the
per-input value, averaged; `exact` is the float64-table loss, `+S` adds the float32
slack as every sound bound must):

* cubic (registered): the proof's own per-input bound;
* exact U' table: the same case argument with U'[m, q, t] exact (an O(v^4) table);
* r-conditioned: the largest non-max token and its copies exact, the other tokens
  pessimised by prefix bounds on their value and score (what conditioning on the
  copies of the second-largest token can give at cubic cost);
* exact multiset, orderings pessimised: each input's own tokens, worst order of the
  first K-1 positions (what any case split finer than tokens-up-to-order can give);
* Hoelder, exact attention (worst position / exact position): the Hoelder step alone,
  per input, with nothing pessimised but the position of the OV path (or nothing).

Each number is a sample mean (not a bound); the breakdown by gap (max minus largest other
token among the first K-1; 0 for the inputs without one, counted in no column) shows
where the mass is.

    PYTHONPATH=src python benchmarks/proofs_loss_limits.py --samples 200000 --json benchmarks/results/proofs_loss_limits.json
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.proofs.loss_bounds import loss_from_log_excess
from interpgym.proofs.loss_brute_force import table_log_excess
from interpgym.proofs.loss_cubic import case_average_bounds, cubic_case_bounds, per_input_bound
from interpgym.subjects.maxk import MaxKConfig, train_maxk


def exact_key_values(t, slack: float) -> torch.Tensor:
    """U'[m, q, t] = log sum_{j != m} exp(D_j + P*_j + C_{t, j}) + S, exactly (O(v^4))."""
    v = t.vocab
    direct = t.EU[None, :, :] - t.EU.T[:, :, None]
    position_worst = (t.PVOU[None, :, :] - t.PVOU.T[:, :, None]).amax(dim=1)
    centred = t.EVOU[None, :, :] - t.EVOU.T[:, :, None]
    values = torch.empty(v, v, v, dtype=torch.float64)
    for m in range(v):
        x = direct[m][:, None, :] + position_worst[m][None, None, :] + centred[m][None, :, :]
        x[:, :, m] = float("-inf")
        values[m] = x.logsumexp(dim=2)
    return values + slack


def weighted(t, tokens: torch.Tensor, scores: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """sum_i softmax(scores + EQKP[q])_i values_i per input."""
    return ((scores + t.EQKP[tokens[:, -1]]).softmax(dim=1) * values).sum(dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="model seed")
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    w = train_maxk(MaxKConfig(seed=args.seed), progress=False).weights
    t, slack, lam, lam_pure = cubic_case_bounds(w)
    v, k = t.vocab, t.k
    tokens = torch.randint(0, v, (args.samples, k), generator=torch.Generator().manual_seed(0))
    m, q, first = tokens.max(dim=1).values, tokens[:, -1], tokens[:, :-1]
    nonmax = torch.where(first == m[:, None], -1, first)
    second = nonmax.max(dim=1).values
    gap = torch.where(second >= 0, m - second, 0)  # 0: no non-max token among the first K-1
    exact = table_log_excess(t, tokens)
    u_exact = exact_key_values(t, slack)
    rows = {"exact": exact, "exact + S": exact + slack, "cubic (registered)": per_input_bound(lam, lam_pure, tokens),
            "exact U' table, same case argument": per_input_bound(case_average_bounds(t, u_exact), lam_pure, tokens)}
    # r-conditioned: other tokens below the second largest c get a virtual key (prefix max value, max or min score)
    below = (second - 1).clamp(min=0)
    virtual_value = torch.cummax(u_exact, dim=2).values[m, q, below]
    rest = (first != m[:, None]) & (first != second[:, None])
    best_r = torch.full_like(exact, float("-inf"))
    best_multiset = torch.full_like(exact, float("-inf"))
    for order in itertools.permutations(range(k - 1)):
        f, r = first[:, list(order)], rest[:, list(order)]
        ordered = torch.cat([f, tokens[:, -1:]], dim=1)
        key_values = u_exact[m[:, None], q[:, None], ordered]
        scores = t.EQKE[q[:, None], ordered]
        best_multiset = torch.maximum(best_multiset, weighted(t, ordered, scores, key_values))
        for extreme in (torch.cummax(t.EQKE, dim=1).values, torch.cummin(t.EQKE, dim=1).values):
            pad = torch.zeros_like(r[:, :1])
            virtual = torch.cat([r, pad], dim=1)
            s = torch.where(virtual, extreme[q, below][:, None], scores)
            values = torch.where(virtual, virtual_value[:, None], key_values)
            best_r = torch.maximum(best_r, weighted(t, ordered, s, values))
    rows["r-conditioned (copies of the 2nd largest exact)"] = torch.where(second >= 0, best_r, rows["cubic (registered)"])
    rows["exact multiset, orderings pessimised"] = torch.where(second >= 0, best_multiset, rows["cubic (registered)"])
    position_gain = t.PVOU[:, None, :] - t.PVOU[:, :, None]  # [i, m, j]
    direct = t.EU[None, :, :] - t.EU.T[:, :, None]
    centred = t.EVOU[None, :, :] - t.EVOU.T[:, :, None]
    u = direct[m, q][:, None, :] + position_gain[:, m].permute(1, 0, 2) + centred[m[:, None], tokens]
    u.scatter_(2, m[:, None, None].expand(-1, k, 1), float("-inf"))
    scores = t.EQKE[q[:, None], tokens]
    rows["Hoelder, exact attention, worst position"] = weighted(t, tokens, scores, u_exact[m[:, None], q[:, None], tokens])
    rows["Hoelder, exact attention, exact position"] = weighted(t, tokens, scores, u.logsumexp(dim=2)) + slack
    report = {"model_seed": args.seed, "samples": args.samples, "slack": slack, "estimates": {}}
    table = Table(title=f"expected loss estimates, default model seed {args.seed}, {args.samples} sampled inputs")
    for column in ("per-input value", "loss", "/ exact", "gap 1", "gap 2", "gap 3", "gap >= 4"):
        table.add_column(column, justify="right")
    exact_mean = float(loss_from_log_excess(exact).mean())
    for name, values in rows.items():
        loss = loss_from_log_excess(values)
        parts = [float(loss[gap == g].sum()) / len(loss) for g in (1, 2, 3)] + [float(loss[gap >= 4].sum()) / len(loss)]
        report["estimates"][name] = {"loss": float(loss.mean()), "by_gap": dict(zip(["1", "2", "3", ">=4"], parts, strict=True))}
        table.add_row(name, f"{float(loss.mean()):.5f}", f"{float(loss.mean()) / exact_mean:.1f}", *(f"{p:.5f}" for p in parts))
    write_json_atomic(args.json, report)
    Console().print(table)


if __name__ == "__main__":
    main()

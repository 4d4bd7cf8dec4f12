"""Row top-k on CPU: which implementation `sparse_ops.row_topk_indices` should use where.

Per call, one intra-op thread, process CPU time (the less load-sensitive measure) after a
warm-up call, on a standard-normal [batch, width] matrix: `torch.topk`, numpy's
`argpartition` (introselect), and the k-rounds-of-(max, mask) loop the trainer used for
k <= 8 until this benchmark showed it 3-6x slower than `torch.topk` here. The rows
`chosen` say what `row_topk_indices` does now (it must be the fastest or close to it).

    PYTHONPATH=src python benchmarks/sae_topk.py --json benchmarks/results/sae_topk.json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic
from interpgym.sae.architectures.sparse_ops import TORCH_TOPK_MAX_K, row_topk_indices

SHAPES = [(1024, 512, 5), (1024, 512, 8), (1024, 512, 16), (1024, 2304, 5), (1024, 2304, 32), (1024, 4096, 5),
          (1024, 4096, 32), (1024, 512, 128), (4096, 512, 5)]


def masked_max_rounds(pre: torch.Tensor, k: int) -> torch.Tensor:
    """The replaced small-k method: k rounds of row max + mask (ties fall back to torch.topk)."""
    remaining = pre.clone()
    for _ in range(k):
        remaining.masked_fill_(remaining >= remaining.amax(-1, keepdim=True), float("-inf"))
    chosen = torch.isneginf(remaining).nonzero()[:, 1]
    if chosen.numel() != pre.shape[0] * k:
        return pre.topk(k, dim=-1, sorted=False).indices
    return chosen.view(pre.shape[0], k)


def cpu_ms(fn: Callable[[], object], calls: int) -> float:
    fn()
    started = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - started) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="Whole sweeps; the median per cell is reported.")
    parser.add_argument("--json", default="benchmarks/results/sae_topk.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = {
        "torch_topk": lambda x, k: x.topk(k, dim=-1, sorted=False).indices,
        "argpartition": lambda x, k: torch.from_numpy(np.argpartition(x.numpy(), -k, axis=-1)[:, -k:]),
        "masked_max_rounds": masked_max_rounds,
        "chosen": row_topk_indices,
    }
    rows = []
    for batch, width, k in SHAPES:
        x = torch.randn(batch, width, generator=torch.Generator().manual_seed(0))
        truth = torch.sort(x.topk(k, dim=-1).indices, dim=-1).values
        row = {"batch": batch, "width": width, "k": k}
        for name, method in methods.items():
            assert torch.equal(torch.sort(method(x, k), dim=-1).values, truth), name
            times = sorted(cpu_ms(lambda: method(x, k), args.calls) for _ in range(args.repeats))  # noqa: B023
            row[f"{name}_ms"] = times[len(times) // 2]
        rows.append(row)
    table = Table(title=f"row top-k, CPU ms per call (median of {args.repeats}; torch.topk used for k <= {TORCH_TOPK_MAX_K})")
    for col in ("batch x width", "k", *methods):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(f"{row['batch']} x {row['width']}", str(row["k"]), *(f"{row[f'{m}_ms']:.2f}" for m in methods))
    Console().print(table)
    write_json_atomic(args.json, {"calls": args.calls, "repeats": args.repeats, "torch_topk_max_k": TORCH_TOPK_MAX_K,
                                  "threads": 1, "rows": rows, "note": "process CPU time on a shared 2-core CPU"})


if __name__ == "__main__":
    main()

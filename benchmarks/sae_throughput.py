"""Training throughput of interpgym's SAE trainer vs SAELens' own trainer, side by side in one run.

Both train the same architecture at the same width, k and batch size on the same
in-memory activations (a toy-superposition dataset of the requested width), from
scratch, for the same number of steps, on the same device and thread count. We
report inputs/s for each, their ratio, and FLOP rates against this machine's dense
fp32 matmul peak measured in the same run:

* `dense_equivalent_gflops`: 12 * B * d_in * d_sae FLOPs per step (forward encoder and
  decoder matmuls, and their two backward matmuls each) / time — the usual SAE
  accounting, comparable across implementations;
* `executed_gflops` (ours): FLOPs our step really executes, counted op by op with
  `interpgym.core.flops.FlopCounter` on one step / time (our top-k kernels skip the
  work on inactive latents, so this is the honest hardware-utilisation number).

Usage: PYTHONPATH=src python benchmarks/sae_throughput.py [--arch topk] [--d-in 256]
[--width 4096] [--k 32] [--batch 1024] [--steps 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import torch
from rich.console import Console
from rich.table import Table

from interpgym.core.flops import FlopCounter
from interpgym.core.jsonio import write_json_atomic
from interpgym.sae import SAEConfig, TrainConfig, build_sae, train_sae
from interpgym.sae.architectures import StepContext
from interpgym.subjects.toy_superposition import ToyConfig, ToySubject


def matmul_peak_gflops(n: int = 2048, repeats: int = 8) -> float:
    """Best-of fp32 GFLOP/s of an n x n x n matmul on this machine (current thread count)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def ours(acts: torch.Tensor, arch: str, d_sae: int, k: int, batch: int, steps: int) -> float:
    """Inputs/s of interpgym's trainer (setup included, as a user would see it)."""
    cfg = SAEConfig(arch=arch, d_in=acts.shape[1], d_sae=d_sae, k=k)
    train_cfg = TrainConfig(steps=steps, batch_size=batch, geometric_median_rows=2048)
    started = time.perf_counter()
    train_sae(acts, cfg, train_cfg)
    return steps * batch / (time.perf_counter() - started)


def executed_flops_per_step(acts: torch.Tensor, arch: str, d_sae: int, k: int, batch: int) -> int:
    """FLOPs of one forward + backward + Adam step of our SAE, counted by interception."""
    sae = build_sae(SAEConfig(arch=arch, d_in=acts.shape[1], d_sae=d_sae, k=k))
    sae.initialize(torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-4)
    x = acts[:batch]
    with FlopCounter() as counter:
        out = sae.training_loss(x, StepContext(step=0, sparsity_coeff=sae.sparsity_coeff, dead_mask=None))
        out.loss.backward()
        optimizer.step()
    return counter.total


SAELENS_ARCH = {"topk": "topk", "batchtopk": "batchtopk", "relu": "standard", "jumprelu": "jumprelu", "gated": "gated", "matryoshka": "matryoshka_batchtopk"}


def saelens(acts: torch.Tensor, arch: str, d_sae: int, k: int, batch: int, steps: int) -> float:
    """Inputs/s of SAELens' `SAETrainer` on the same activations (setup included, logging off)."""
    from sae_lens.config import SAETrainerConfig
    from sae_lens.registry import get_sae_training_class
    from sae_lens.training.sae_trainer import SAETrainer

    sae_cls, cfg_cls = get_sae_training_class(SAELENS_ARCH[arch])
    kwargs = {"d_in": acts.shape[1], "d_sae": d_sae, "normalize_activations": "expected_average_only_in"}
    if arch in ("topk", "batchtopk", "matryoshka"):
        kwargs["k"] = k
    if arch == "matryoshka":
        kwargs["matryoshka_widths"] = [d_sae // 16, d_sae // 8, d_sae // 4, d_sae // 2, d_sae]
    sae = sae_cls(cfg_cls(**kwargs))
    generator = torch.Generator().manual_seed(0)

    def batches():
        while True:
            order = torch.randperm(acts.shape[0], generator=generator)
            for start in range(0, acts.shape[0] - batch + 1, batch):
                yield acts[order[start : start + batch]]

    trainer_cfg = SAETrainerConfig(
        total_training_samples=steps * batch, train_batch_size_samples=batch, lr=1e-3, lr_end=1e-4, n_batches_for_norm_estimate=2
    )
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=batches()).fit()
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="topk", choices=sorted(SAELENS_ARCH))
    parser.add_argument("--d-in", type=int, default=256)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2, help="alternate ours/SAELens this many times; report the best of each")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    acts = ToySubject(ToyConfig(n_features=2 * args.d_in * 4, d_in=args.d_in, mean_l0=16, n_train=max(32768, args.batch * 8), n_val=8, n_test=8)).activations("train")
    peak = matmul_peak_gflops()
    best_ours, best_theirs = 0.0, 0.0
    for _ in range(args.repeats):  # alternate so that machine-load drift hits both alike
        best_ours = max(best_ours, ours(acts, args.arch, args.width, args.k, args.batch, args.steps))
        best_theirs = max(best_theirs, saelens(acts, args.arch, args.width, args.k, args.batch, args.steps))
    dense_flops = 12 * args.batch * args.d_in * args.width
    executed = executed_flops_per_step(acts, args.arch, args.width, args.k, args.batch)
    steps_per_s = best_ours / args.batch
    result = {
        "arch": args.arch,
        "d_in": args.d_in,
        "width": args.width,
        "k": args.k,
        "batch": args.batch,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "ours_inputs_per_s": best_ours,
        "saelens_inputs_per_s": best_theirs,
        "speedup_vs_saelens": best_ours / best_theirs,
        "matmul_peak_gflops": peak,
        "ours_dense_equivalent_gflops": dense_flops * steps_per_s / 1e9,
        "saelens_dense_equivalent_gflops": dense_flops * best_theirs / args.batch / 1e9,
        "ours_executed_flops_per_step": executed,
        "ours_executed_gflops": executed * steps_per_s / 1e9,
    }
    result["ours_executed_frac_of_peak"] = result["ours_executed_gflops"] / peak
    result["ours_dense_equivalent_frac_of_peak"] = result["ours_dense_equivalent_gflops"] / peak
    table = Table(title=f"SAE training throughput: {args.arch}, d_in {args.d_in}, width {args.width}, k {args.k}, batch {args.batch}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    if args.json:
        write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()

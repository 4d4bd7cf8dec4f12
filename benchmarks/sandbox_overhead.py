"""What the sandbox costs per trial: a trivial solution run bare vs sandboxed, side by side, repeated.

    PYTHONPATH=src python benchmarks/sandbox_overhead.py --repeats 10 --json out.json

Each repeat runs `python -S -c pass` once as a plain subprocess and once through
`run_sandboxed` (namespaces, minimal root, seccomp, and as root a control group and a
tmpfs workspace), alternating so that machine noise hits both alike. Prints medians and
the added seconds; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from interpgym.harness.sandbox import Limits, namespaces_available, run_sandboxed, workspace_quota


def _sandboxed_once() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        limits = Limits(timeout_s=60)
        start = time.perf_counter()
        with workspace_quota(workspace, limits, 0, 0):
            (workspace / "artifact").mkdir()
            (workspace / "tmp").mkdir()
            result = run_sandboxed([sys.executable, "-S", "-c", "pass"], workspace, limits,
                                   writable=[workspace / "artifact", workspace / "tmp"])
        elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"sandboxed run failed: {result.stderr_tail}")
    return elapsed


def _bare_once() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-S", "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    isolated = namespaces_available()
    bare, boxed = [], []
    for _ in range(args.repeats):
        bare.append(_bare_once())
        boxed.append(_sandboxed_once())
    result = {"isolation": "namespaces" if isolated else "rlimits-only", "repeats": args.repeats,
              "bare_median_s": statistics.median(bare), "sandboxed_median_s": statistics.median(boxed),
              "added_median_s": statistics.median(b - a for a, b in zip(bare, boxed, strict=True))}
    table = Table(title=f"sandbox start-up cost ({result['isolation']}, {args.repeats} alternating repeats)")
    for column in ("bare s", "sandboxed s", "added s"):
        table.add_column(column, justify="right")
    table.add_row(f"{result['bare_median_s']:.3f}", f"{result['sandboxed_median_s']:.3f}", f"{result['added_median_s']:.3f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

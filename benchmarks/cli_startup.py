"""How fast the command line answers `--help`, `--version` and bad input (no heavy imports).

Each case runs `python -m interpgym ...` as a fresh process `--repeats` times and reports
the median and best wall time, beside `python -c "import torch"` (what every answer
used to pay) and `python -c pass` (the interpreter's own start) measured in the same run.

Usage: PYTHONPATH=src python benchmarks/cli_startup.py [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from interpgym.core.jsonio import write_json_atomic

SRC = Path(__file__).resolve().parents[1] / "src"


def cases(scratch: Path) -> dict[str, list[str]]:
    """Name -> argv after `python`."""
    a_file = scratch / "a-file"
    a_file.write_text("x")
    cli = [sys.executable, "-m", "interpgym"]
    return {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"],
        "interpgym --help": [*cli, "--help"],
        "interpgym --version": [*cli, "--version"],
        "interpgym sae train --help": [*cli, "sae", "train", "--help"],
        "interpgym proofs maxk --help": [*cli, "proofs", "maxk", "--help"],
        "bad input: sae sweep --points 6": [*cli, "sae", "sweep", "--points", "6", "--json", str(scratch / "s.json")],
        "bad input: sae eval --json <a directory>": [*cli, "sae", "eval", str(scratch), "--json", str(scratch)],
        "bad input: proofs maxk --json <under a file>": [*cli, "proofs", "maxk", "--json", str(a_file / "x.json")],
    }


def time_command(argv: list[str], repeats: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, argv in cases(Path(scratch)).items():
            times = time_command(argv, args.repeats)
            rows.append({"case": name, "median_s": statistics.median(times), "best_s": min(times), "repeats": args.repeats})
    table = Table(title=f"CLI start-up (wall seconds, {args.repeats} runs each; shared machine, noisy)")
    for column in ("case", "median_s", "best_s"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for row in rows:
        table.add_row(row["case"], f"{row['median_s']:.3f}", f"{row['best_s']:.3f}")
    Console().print(table)
    if args.json:
        write_json_atomic(args.json, {"python": sys.version.split()[0], "cases": rows})


if __name__ == "__main__":
    main()

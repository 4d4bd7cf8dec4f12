"""The trusted kernel: check a proof program against a model's weights, count what it certifies.

`check_program(raw, weights)` parses the program (`program.parse_program`), converts the
weights to float64 (exact), and runs the steps the certificate depends on in dependency
order under one `FlopCounter`: for each step it checks that every argument is a fact of
the type the rule requires, applies the rule (`rules.RULES`), and records the new fact
with the facts it came from. The final step must produce a `certificate`; its inputs are
counted exactly by `certificates.count_certified`. Every number the certificate depends
on is computed here from the weights; hints only choose among sound options.

Guarantee: if `check_program` returns, every input that `certificates.certified_mask`
marks for (`ok`, `ok_pure`) is classified correctly by the float32 model (ties wrong),
whoever wrote the program. Malformed or ill-typed programs raise `ProgramError` naming
the rule and location, before anything is certified.

Cost: the FLOPs of the rules run (tables, slack, case checks), counted as the aten ops
execute; parsing the JSON and counting certified inputs are not charged (the same
bookkeeping as every registered strategy).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.core.flops import FlopCounter
from interpgym.core.threads import torch_threads
from interpgym.proofs.certificates import count_certified
from interpgym.proofs.inputs import input_count
from interpgym.proofs.lang.program import MAX_PROGRAM_BYTES, Program, ProgramError, parse_program
from interpgym.proofs.lang.rules import RULE_SPECS, RULES, Fact, certified_sets
from interpgym.proofs.result import ProofResult
from interpgym.subjects.maxk import MaxKWeights


@dataclass
class KernelResult:
    """What the kernel proved: the certificate, its count, the cost and the program's unexplained dimension."""

    certified: int
    total: int
    flops: int
    wall_s: float
    unexplained_dim: float
    ok: Bool[Tensor, "m q c n"]
    ok_pure: Bool[Tensor, "m q"]
    steps_run: list[str] = field(default_factory=list)

    @property
    def bound(self) -> float:
        return self.certified / self.total

    def as_proof_result(self, name: str, complexity: str = "program") -> ProofResult:
        return ProofResult(strategy=name, certified=self.certified, total=self.total, flops=self.flops,
                           wall_s=self.wall_s, unexplained_dim=self.unexplained_dim, complexity=complexity,
                           ok=self.ok, ok_pure=self.ok_pure)


def parse(raw: Any) -> Program:
    """The structurally checked program (`ProgramError` if malformed)."""
    return parse_program(raw, RULE_SPECS)


def load_program(path: str | Path) -> Any:
    """Decode a program file (size-checked before reading; `UserError` naming the problem)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"proof program {path} does not exist")
    if path.stat().st_size > MAX_PROGRAM_BYTES:
        raise UserError(f"proof program {path} is larger than {MAX_PROGRAM_BYTES >> 20} MiB")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UserError(f"proof program {path} is not valid JSON (or nested too deeply): {exc}") from exc


def _arguments(step, facts: dict[str, Fact]) -> dict[str, Any]:
    spec = RULE_SPECS[step.rule]
    out: dict[str, Any] = {}
    for arg, ref in step.args.items():
        refs = [ref] if isinstance(ref, str) else list(ref)
        for name in refs:
            if facts[name].type != spec.args[arg]:
                raise ProgramError(f"proof program rejected: {step.where()}, argument {arg!r}: step {name!r} proves a "
                                   f"{facts[name].type}, this rule needs a {spec.args[arg]}")
        out[arg] = facts[refs[0]] if isinstance(ref, str) else Fact("list", [facts[n] for n in refs])
    return out


def _run(program: Program, w: MaxKWeights) -> tuple[Fact, float, list[str]]:
    facts: dict[str, Fact] = {}
    used: dict[str, float] = {}
    ctx = {"weights": w}
    order = program.needed()
    for step in order:
        args = _arguments(step, facts)
        fact = RULES[step.rule].apply(step, args, ctx)
        fact.sources = args
        facts[step.id] = fact
        used[step.id] = fact.unexplained
    final = facts[program.certificate]
    if final.type != "certificate":
        raise ProgramError(f"proof program rejected: 'certificate' names step {program.certificate!r}, which proves a "
                           f"{final.type}, not a certificate")
    return final, float(sum(used.values())), [s.id for s in order]


def check_program(raw: Any, weights: MaxKWeights, *, count_flops: bool = True) -> KernelResult:
    """Check `raw` (a decoded JSON program) on `weights`; see the module docstring for the guarantee.

    On CPU the kernel runs on one intra-op thread (as the registered strategies do).
    """
    program = parse(raw)
    w = weights.to(dtype=torch.float64)  # exact conversion of the float32 weights
    counter = FlopCounter() if count_flops else nullcontext()
    threads = torch_threads(1) if w.W_E.device.type == "cpu" else nullcontext()
    with threads, torch.no_grad():
        started = time.perf_counter()
        with counter:
            final, unexplained, ran = _run(program, w)
        wall = time.perf_counter() - started
    ok, ok_pure = (t.cpu() for t in certified_sets(final.value))
    return KernelResult(certified=count_certified(ok, ok_pure), total=input_count(w.vocab, w.k),
                        flops=int(counter.total) if count_flops else 0, wall_s=wall, unexplained_dim=unexplained,
                        ok=ok, ok_pure=ok_pure, steps_run=ran)


__all__ = ["check_program", "parse", "load_program", "KernelResult"]

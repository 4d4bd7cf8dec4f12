"""Soundness fuzzing of the kernel: random well-formed programs with adversarial hints.

`random_program(rng, w)` draws a program over the rules of `rules.RULES`: the cubic
route or a gap route (any EQKE residual bound, either direct path, either slack mode,
either case check),
sometimes several combined by `choose_per_case`, with steps shuffled and unused steps
added. Hints are drawn to hurt: the search's own hints perturbed (gaps one too small,
average attention moved), random or huge or zero directions, negative or enormous
gaps, average attention far outside [0, 1], random per-case choices.

`fuzz(models, n, seed)` checks each program with the kernel and compares what it
certifies with the float32 forward on every input: an *unsound* program certifies an
input the model gets wrong, or claims more correct inputs than there are.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interpgym.proofs.certificates import certified_mask
from interpgym.proofs.inputs import tokens_at
from interpgym.proofs.lang.export import cubic_program, gap_program_steps, search_hints
from interpgym.proofs.lang.kernel import check_program
from interpgym.proofs.lang.program import LANGUAGE, ProgramError
from interpgym.proofs.subcubic import VARIANTS
from interpgym.subjects.maxk import MaxKWeights, correct_mask, last_logits

EQKE = ("exact", "svd", "max_diff", "mean+max_diff")
DIRECT = ("exact", "mean_query+max_diff")


@dataclass
class FuzzModel:
    """A model under test with its ground truth (float32 forward on every input)."""

    name: str
    weights: MaxKWeights
    correct: Tensor
    tokens: Tensor
    search: dict[str, Any]  # variant name -> search hints (cached: search is the slow part)

    @classmethod
    def of(cls, name: str, w: MaxKWeights) -> FuzzModel:
        tokens = tokens_at(w.vocab, w.k, 0, w.vocab**w.k)
        return cls(name, w, correct_mask(last_logits(w, tokens), tokens), tokens, {})

    def hints(self, variant_index: int) -> tuple:
        variant = VARIANTS[variant_index]
        if variant.name not in self.search:
            self.search[variant.name] = search_hints(self.weights, variant)
        return self.search[variant.name]


def _directions(rng: random.Random, model: FuzzModel, v: int) -> tuple[Tensor, Tensor]:
    kind = rng.choice(["search", "random", "huge", "zero", "tiny", "basis"])
    gen = torch.Generator().manual_seed(rng.randrange(1 << 30))
    if kind == "search":
        return tuple(d.cpu() for d in model.hints(rng.randrange(len(VARIANTS)))[0])  # type: ignore[return-value]
    if kind == "random":
        return torch.randn(v, generator=gen, dtype=torch.float64), torch.randn(v, generator=gen, dtype=torch.float64)
    if kind == "huge":
        return torch.randn(v, generator=gen, dtype=torch.float64) * 1e300, torch.full((v,), -1e300, dtype=torch.float64)
    if kind == "tiny":
        return torch.randn(v, generator=gen, dtype=torch.float64) * 1e-300, torch.randn(v, generator=gen, dtype=torch.float64)
    if kind == "basis":
        u = torch.zeros(v, dtype=torch.float64)
        u[rng.randrange(v)] = 1.0
        return u, u.flip(0)
    return torch.zeros(v, dtype=torch.float64), torch.zeros(v, dtype=torch.float64)


def _gaps_and_attention(rng: random.Random, model: FuzzModel, v: int, k: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(rng.randrange(1 << 30))
    _, gaps, mean_attn = model.hints(rng.randrange(len(VARIANTS)))
    gaps, mean_attn = gaps.clone().double(), mean_attn.clone()
    kind = rng.choice(["search", "smaller", "one", "random", "negative", "enormous"])
    if kind == "smaller":
        gaps = gaps - torch.randint(0, 3, gaps.shape, generator=gen)
    elif kind == "one":
        gaps = torch.ones_like(gaps)
    elif kind == "random":
        gaps = torch.randint(-3, v + 4, gaps.shape, generator=gen).double()
    elif kind == "negative":
        gaps = -gaps
    elif kind == "enormous":
        gaps = gaps * 1e15
    attn_kind = rng.choice(["search", "noise", "outside", "huge", "zero", "one"])
    if attn_kind == "noise":
        mean_attn = mean_attn + 0.2 * torch.randn(mean_attn.shape, generator=gen, dtype=torch.float64)
    elif attn_kind == "outside":
        mean_attn = torch.rand(mean_attn.shape, generator=gen, dtype=torch.float64) * 6 - 3
    elif attn_kind == "huge":
        mean_attn = torch.full_like(mean_attn, rng.choice([1e300, -1e300, 1e16]))
    elif attn_kind in ("zero", "one"):
        mean_attn = torch.full_like(mean_attn, 0.0 if attn_kind == "zero" else 1.0)
    return gaps, mean_attn


def _gap_steps(rng: random.Random, model: FuzzModel, prefix: str) -> list[dict[str, Any]]:
    v, k = model.weights.vocab, model.weights.k
    eqke, direct = rng.choice(EQKE), rng.choice(DIRECT)
    directions = _directions(rng, model, v) if eqke != "exact" else None
    gaps, mean_attn = _gaps_and_attention(rng, model, v, k)
    check_rule = rng.choice(["gap_cases", "gap_cases_valid"])
    steps = gap_program_steps(eqke, direct, directions, gaps, mean_attn, prefix=prefix, check_rule=check_rule)
    if rng.random() < 0.5:  # the tighter pairwise slack is also sound for a gap proof
        for step in steps:
            if step["rule"] == "float_slack":
                step["options"] = {"magnitudes": "pairwise"}
    return steps


def _cubic_steps(rng: random.Random, prefix: str) -> list[dict[str, Any]]:
    steps = cubic_program()["steps"]
    rename = {s["id"]: prefix + s["id"] for s in steps}
    out = []
    for s in steps:
        s = dict(s, id=rename[s["id"]])
        if "args" in s:
            s["args"] = {a: rename[r] for a, r in s["args"].items()}
        if s["rule"] == "float_slack":
            s["options"] = {"magnitudes": rng.choice(["pairwise", "coordinate"])}
        out.append(s)
    return out


def random_program(rng: random.Random, model: FuzzModel) -> dict[str, Any]:
    """One random well-formed program for `model` (module docstring)."""
    parts = rng.choice([1, 1, 1, 2, 3])
    steps: list[dict[str, Any]] = []
    certs = []
    for i in range(parts):
        prefix = f"p{i}_"
        steps += _cubic_steps(rng, prefix) if rng.random() < 0.3 else _gap_steps(rng, model, prefix)
        certs.append(prefix + "cert")
    final = certs[0]
    if parts > 1:
        v, k = model.weights.vocab, model.weights.k
        gen = torch.Generator().manual_seed(rng.randrange(1 << 30))
        choice = torch.randint(-1, parts + 1, (v, v, k), generator=gen).tolist()
        steps.append({"id": "chosen", "rule": "choose_per_case", "args": {"certificates": certs}, "hints": {"choice": choice}})
        final = "chosen"
    if rng.random() < 0.3:
        steps.append({"id": "unused", "rule": "attention_tables"})
    rng.shuffle(steps)
    return {"language": LANGUAGE, "steps": steps, "certificate": final}


@dataclass
class FuzzReport:
    programs: int
    accepted: int
    rejected: int
    unsound_inputs: int
    bounds_above_exact: int
    certified_total: int
    nonvacuous: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"programs": self.programs, "accepted": self.accepted, "rejected": self.rejected,
                "unsound_certified_inputs": self.unsound_inputs, "bounds_above_exact": self.bounds_above_exact,
                "certified_inputs_total": self.certified_total, "nonvacuous_programs": self.nonvacuous,
                "seconds": self.seconds, "programs_per_s": self.programs / self.seconds if self.seconds else 0.0}


def fuzz(models: list[FuzzModel], n: int, seed: int, advance=None) -> FuzzReport:
    """Check `n` random programs (round robin over `models`); count unsound results (should be 0)."""
    rng = random.Random(seed)
    accepted = rejected = unsound = above = certified_total = nonvacuous = 0
    start = time.perf_counter()
    for i in range(n):
        model = models[i % len(models)]
        program = random_program(rng, model)
        try:
            result = check_program(program, model.weights, count_flops=False)
        except ProgramError:
            rejected += 1
        else:
            accepted += 1
            covered = certified_mask(result.ok, result.ok_pure, model.tokens)
            unsound += int((covered & ~model.correct).sum())
            above += int(result.certified > int(model.correct.sum()) or int(covered.sum()) != result.certified)
            certified_total += result.certified
            nonvacuous += int(result.certified > 0)
        if advance is not None:
            advance(1)
    return FuzzReport(n, accepted, rejected, unsound, above, certified_total, nonvacuous, time.perf_counter() - start)


__all__ = ["FuzzModel", "random_program", "fuzz", "FuzzReport"]

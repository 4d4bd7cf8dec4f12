"""A proof program as data: parsing and the structural checks the kernel relies on.

A program is JSON (never code):

    {"language": "maxk-proof/1",
     "steps": [{"id": NAME, "rule": RULE, "args": {ARG: NAME | [NAME, ...]},
                "options": {OPTION: STRING}, "hints": {HINT: NUMBER | nested list of numbers}}, ...],
     "certificate": NAME}

`parse_program` checks everything that does not need the weights: the top-level
keys, the language tag, step ids (unique identifiers), that every rule exists, that
each step names exactly the arguments, options and hints its rule declares, that
options take one of their allowed values, that every hint is a finite number or a
rectangular nested list of finite numbers (NaN, inf, booleans, strings are rejected),
that references name steps of the program, that the reference graph has no cycle,
and the size limits. Shapes of hints against the model and the types of referenced
facts are checked by the kernel when it runs the step. Every failure raises
`ProgramError` (a `UserError`: one line, exit code 2) naming the rule and location.

Cost: linear in the size of the JSON; nothing here is charged as proof FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from interpgym.core.errors import UserError

LANGUAGE = "maxk-proof/1"
MAX_STEPS = 64
MAX_HINT_NUMBERS = 1 << 22  # 4 M numbers: v = 128, K = 8 gap tables fit easily
MAX_PROGRAM_BYTES = 64 << 20


class ProgramError(UserError):
    """A malformed or rejected proof program; the message (one line) names the rule and location."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class RuleSpec:
    """The signature of a rule: argument names -> fact types, options -> allowed values, hints."""

    args: dict[str, str]
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hints: tuple[str, ...] = ()
    list_args: tuple[str, ...] = ()  # arguments that take a non-empty list of references
    optional_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One parsed step. `hints` are float64 CPU tensors (shape checked later by the kernel)."""

    id: str
    rule: str
    args: dict[str, str | tuple[str, ...]]
    options: dict[str, str]
    hints: dict[str, Tensor]
    index: int

    def where(self) -> str:
        return f"step {self.index} {self.id!r} (rule {self.rule})"


@dataclass(frozen=True)
class Program:
    """A structurally valid program: steps in a dependency order, the certificate step's id."""

    steps: tuple[Step, ...]
    certificate: str

    def needed(self) -> list[Step]:
        """The steps the certificate depends on, dependencies first (others are never run)."""
        by_id = {s.id: s for s in self.steps}
        wanted: set[str] = set()
        stack = [self.certificate]
        while stack:
            name = stack.pop()
            if name in wanted:
                continue
            wanted.add(name)
            stack.extend(_references(by_id[name]))
        return [s for s in self.steps if s.id in wanted]


def _references(step: Step) -> list[str]:
    out: list[str] = []
    for value in step.args.values():
        out.extend([value] if isinstance(value, str) else value)
    return out


def _fail(where: str, message: str) -> ProgramError:
    return ProgramError(f"proof program rejected: {where}: {message}")


def _hint_tensor(value: Any, where: str) -> Tensor:
    """A finite number or rectangular nested list of finite numbers, as a float64 tensor."""
    count = 0

    def check(x: Any, depth: int) -> None:
        nonlocal count
        if depth > 4:
            raise _fail(where, "nested deeper than 4 levels")
        if isinstance(x, list):
            for item in x:
                check(item, depth + 1)
            return
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise _fail(where, f"expected numbers, found {type(x).__name__}")
        try:
            finite = math.isfinite(float(x))
        except OverflowError:  # an integer beyond float64's range
            finite = False
        if not finite:
            raise _fail(where, f"non-finite number {str(x)[:20]!r} (hints must be finite float64 values)")
        count += 1
        if count > MAX_HINT_NUMBERS:
            raise _fail(where, f"more than {MAX_HINT_NUMBERS:,} numbers")

    check(value, 0)
    try:
        return torch.tensor(value, dtype=torch.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _fail(where, f"not a rectangular array of numbers ({exc})") from exc


def _parse_step(raw: Any, index: int, rules: dict[str, RuleSpec]) -> Step:
    if not isinstance(raw, dict):
        raise _fail(f"step {index}", "must be an object with 'id' and 'rule'")
    unknown = sorted(set(raw) - {"id", "rule", "args", "options", "hints", "note"})
    if unknown:
        raise _fail(f"step {index}", f"unknown keys {unknown}")
    name, rule = raw.get("id"), raw.get("rule")
    if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
        raise _fail(f"step {index}", f"'id' must be an identifier of at most 64 characters, got {name!r}")
    if not isinstance(rule, str) or rule not in rules:
        raise _fail(f"step {index} {name!r}", f"unknown rule {rule!r}; rules: {', '.join(sorted(rules))}")
    spec = rules[rule]
    where = f"step {index} {name!r} (rule {rule})"
    args, options, hints = raw.get("args", {}), raw.get("options", {}), raw.get("hints", {})
    for label, value in (("args", args), ("options", options), ("hints", hints)):
        if not isinstance(value, dict):
            raise _fail(where, f"'{label}' must be an object")
    missing = [a for a in spec.args if a not in args and a not in spec.optional_args]
    extra = sorted(set(args) - set(spec.args))
    if missing or extra:
        raise _fail(where, f"arguments must be {sorted(spec.args)} (missing {missing}, unexpected {extra})")
    parsed_args: dict[str, str | tuple[str, ...]] = {}
    for arg, ref in args.items():
        if arg in spec.list_args:
            if not isinstance(ref, list) or not ref or not all(isinstance(r, str) for r in ref) or len(ref) > MAX_STEPS:
                raise _fail(f"{where}, argument {arg!r}", "must be a non-empty list of step ids")
            parsed_args[arg] = tuple(ref)
        elif isinstance(ref, str):
            parsed_args[arg] = ref
        else:
            raise _fail(f"{where}, argument {arg!r}", f"must be a step id (a string), got {ref!r}")
    if sorted(options) != sorted(spec.options):
        raise _fail(where, f"options must be {sorted(spec.options)}, got {sorted(options)}")
    for option, value in options.items():
        if value not in spec.options[option]:
            raise _fail(f"{where}, option {option!r}", f"{value!r} is not one of {list(spec.options[option])}")
    if sorted(hints) != sorted(spec.hints):
        raise _fail(where, f"hints must be {sorted(spec.hints)}, got {sorted(hints)}")
    parsed_hints = {h: _hint_tensor(v, f"{where}, hint {h!r}") for h, v in hints.items()}
    return Step(id=name, rule=rule, args=parsed_args, options=dict(options), hints=parsed_hints, index=index)


def _topological(steps: list[Step]) -> tuple[Step, ...]:
    """Steps ordered so that every reference comes first; `ProgramError` naming a cycle or unknown id."""
    by_id = {s.id: s for s in steps}
    for step in steps:
        for ref in _references(step):
            if ref not in by_id:
                raise _fail(step.where(), f"refers to {ref!r}, which no step defines")
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    order: list[Step] = []
    for root in steps:
        if state.get(root.id) == 2:
            continue
        path = [root.id]
        stack = [(root.id, iter(_references(root)))]
        state[root.id] = 1
        while stack:
            node, refs = stack[-1]
            ref = next(refs, None)
            if ref is None:
                stack.pop()
                path.pop()
                state[node] = 2
                order.append(by_id[node])
            elif state.get(ref) == 1:
                cycle = path[path.index(ref):] + [ref]
                raise _fail(by_id[node].where(), f"cycle {' -> '.join(cycle)}")
            elif state.get(ref) != 2:
                state[ref] = 1
                path.append(ref)
                stack.append((ref, iter(_references(by_id[ref]))))
    return tuple(order)


def parse_program(raw: Any, rules: dict[str, RuleSpec]) -> Program:
    """Check the structure of a decoded JSON program (module docstring); return it in dependency order."""
    if not isinstance(raw, dict):
        raise _fail("program", "must be a JSON object with 'language', 'steps' and 'certificate'")
    unknown = sorted(set(raw) - {"language", "steps", "certificate", "note"})
    if unknown:
        raise _fail("program", f"unknown top-level keys {unknown}")
    if raw.get("language") != LANGUAGE:
        raise _fail("program", f"'language' must be {LANGUAGE!r}, got {raw.get('language')!r}")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise _fail("program", "'steps' must be a non-empty list")
    if len(steps_raw) > MAX_STEPS:
        raise _fail("program", f"{len(steps_raw)} steps, more than the limit of {MAX_STEPS}")
    steps = [_parse_step(s, i, rules) for i, s in enumerate(steps_raw)]
    seen: set[str] = set()
    for step in steps:
        if step.id in seen:
            raise _fail(step.where(), f"duplicate step id {step.id!r}")
        seen.add(step.id)
    certificate = raw.get("certificate")
    if not isinstance(certificate, str) or certificate not in seen:
        raise _fail("program", f"'certificate' must name a step, got {certificate!r}")
    return Program(steps=_topological(steps), certificate=certificate)


__all__ = ["LANGUAGE", "MAX_STEPS", "MAX_PROGRAM_BYTES", "ProgramError", "RuleSpec", "Step", "Program", "parse_program"]

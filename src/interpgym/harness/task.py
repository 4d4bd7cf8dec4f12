"""The task spec: what an agent works on, and the trusted scorer that judges it.

A `Task` is versioned: scores are only comparable within one (id, version). It owns

* `instructions` (markdown, complete enough to work from alone) and a workspace
  template: `editable_files` (path -> starting text; the only files an agent may
  change) plus read-only `inputs` the task writes into `data/` (e.g. the train split);
* an optional `search_space` for parameter-only agents (`random`, `optuna`): name ->
  `{"type": "float"|"int"|"categorical", ...}` (see `validate_params`); the chosen
  values reach the solution as `params.json`;
* `score(artifact, split, seed)`: the trusted scorer. It runs in the harness process,
  sees only the artifact's safetensors tensors and JSON (never agent code, never a
  pickle), evaluates on `split` ("val" or "test", data the solution never saw), and
  returns a `Score` or raises `InvalidSolution`;
* budgets (trials, minutes, per-trial timeout and memory), direction (higher is
  better for every launch task: `max`), and the `starting` and `reference` baseline
  solutions that define normalised 0 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.core.hashing import config_hash
from interpgym.harness.records import Budgets

Split = Literal["val", "test"]
MAX_JSON_BYTES = 1 << 20  # default cap per artifact JSON file: parsed JSON takes up to ~25x its size in memory


class InvalidSolution(Exception):
    """The artifact broke the task's contract (missing file, wrong shape, NaN, over budget)."""


@dataclass
class Artifact:
    """What a solution produced, loaded safely: tensors from `*.safetensors`, data from `*.json`.

    Keys are file names without extension (`sae.safetensors` -> `tensors["sae"]`).
    """

    tensors: dict[str, dict[str, Tensor]]
    json: dict[str, Any]
    # The checked artifact directory (regular .safetensors/.json files only), for scorers
    # that hand it to a family's own safe loader (e.g. `interpgym.sae.storage.load_sae`).
    directory: Path | None = None

    def require_tensors(self, name: str, keys: list[str]) -> dict[str, Tensor]:
        """The tensors of `name.safetensors`, checked to hold `keys`, all finite (else `InvalidSolution`)."""
        if name not in self.tensors:
            raise InvalidSolution(f"artifact has no {name}.safetensors (found: {sorted(self.tensors)})")
        group = self.tensors[name]
        missing = [k for k in keys if k not in group]
        if missing:
            raise InvalidSolution(f"{name}.safetensors lacks tensors {missing}")
        for key in keys:
            t = group[key]
            if not t.is_floating_point() or not bool(t.isfinite().all()):
                raise InvalidSolution(f"{name}.safetensors: {key} is not a finite float tensor (NaN/inf?)")
        return group

    def require_json(self, name: str) -> Any:
        if name not in self.json:
            raise InvalidSolution(f"artifact has no {name}.json (found: {sorted(self.json)})")
        return self.json[name]


@dataclass
class Score:
    """The trusted scorer's verdict on one artifact for one split."""

    value: float
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """A score holds finite numbers only: an inf or NaN anywhere is the artifact's fault, recorded as invalid."""
        if not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise InvalidSolution(f"score is not finite ({self.value})")
        _require_finite(self.metrics, "metrics")


def _require_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidSolution(f"{where} is not finite ({value}): the artifact's numbers overflow")
    if isinstance(value, dict):
        for key, item in value.items():
            _require_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _require_finite(item, f"{where}[{i}]")


@dataclass(frozen=True)
class Constraint:
    """A rule on a trial's parameters known before running it (e.g. top-k's `k <= L0 budget`).

    `violation(params)` is > 0 when `params` break it (the bigger, the worse) and <= 0
    when they meet it; `description` says it to a user in one line. Proposals that break
    a declared constraint are recorded `invalid` without running, naming it; search
    agents use the declarations to sample only (or mostly) valid points.
    """

    name: str
    description: str
    violation: Callable[[dict[str, Any]], float]

    def check(self, params: dict[str, Any]) -> str | None:
        """None if `params` meet the constraint, else the one-line reason."""
        return None if self.violation(params) <= 0 else f"violates the task's constraint {self.name}: {self.description}"


@dataclass(frozen=True)
class Solution:
    """A baseline solution: editable-file overrides (None = the template) and parameters."""

    files: dict[str, str] | None = None
    params: dict[str, Any] | None = None


@dataclass
class Task:
    """A versioned task spec (see module docs). `prepare_inputs(dir)` writes the read-only inputs."""

    id: str
    version: str
    title: str
    instructions: str
    editable_files: dict[str, str]
    scorer: Callable[[Artifact, Split, int], Score]
    prepare_inputs: Callable[[Path], None]
    starting: Solution  # normalised score 0
    reference: Solution  # normalised score 1
    budgets: Budgets = Budgets()
    direction: Literal["max", "min"] = "max"
    search_space: dict[str, dict[str, Any]] | None = None
    default_params: dict[str, Any] | None = None
    entrypoint: str = "solution.py"
    max_json_bytes: int = MAX_JSON_BYTES  # per artifact JSON file (raise it for tasks whose artifact is a JSON program)
    # Optional: the task's own plots for the report, from its finished campaigns: (campaigns, out_dir) -> files.
    plots: Callable[[list[Any], Path], list[Path]] | None = None
    # Rules on the search-space parameters known before running (see `Constraint`).
    constraints: tuple[Constraint, ...] = ()
    # What the raw score measures, for plots and tables (e.g. "MCC").
    score_name: str = "score"

    def violated_constraint(self, params: dict[str, Any] | None) -> str | None:
        """The reason the first declared constraint `params` break gives, or None (also for no params)."""
        if params is None:
            return None
        resolved = {**(self.default_params or {}), **params}
        for constraint in self.constraints:
            reason = constraint.check(resolved)
            if reason:
                return reason
        return None

    def score(self, artifact: Artifact, split: Split, seed: int) -> Score:
        return self.scorer(artifact, split, seed)

    def better(self, a: float, b: float) -> bool:
        """True iff score `a` is strictly better than `b` in this task's direction."""
        return a > b if self.direction == "max" else a < b

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check `params` against the search space; return them (raise `InvalidSolution` if off-space)."""
        space = self.search_space or {}
        unknown = sorted(set(params) - set(space))
        if unknown:
            raise InvalidSolution(f"unknown parameters {unknown}; the search space has {sorted(space)}")
        for name, spec in space.items():
            if name not in params:
                raise InvalidSolution(f"parameter {name!r} missing")
            value = params[name]
            if spec["type"] == "categorical":
                if value not in spec["choices"]:
                    raise InvalidSolution(f"parameter {name}={value!r} not in {spec['choices']}")
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise InvalidSolution(f"parameter {name}={value!r} is not a finite number")
                if not spec["low"] <= value <= spec["high"]:
                    raise InvalidSolution(f"parameter {name}={value} outside [{spec['low']}, {spec['high']}]")
        return params

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def spec_hash(self) -> str:
        """Hash of everything declarative in the spec: cached baselines are rebuilt when any of it changes."""
        from dataclasses import asdict

        return config_hash({"id": self.id, "version": self.version, "instructions": self.instructions,
                            "editable_files": self.editable_files, "starting": asdict(self.starting),
                            "reference": asdict(self.reference), "search_space": self.search_space,
                            "budgets": self.budgets.as_dict(), "direction": self.direction})


def require_known(name: str, known: dict[str, Any], what: str) -> Any:
    """`known[name]`, or a `UserError` listing the valid names."""
    if name not in known:
        raise UserError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(known))}")
    return known[name]

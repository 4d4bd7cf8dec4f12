"""Shared by the proof-program tasks: the language guide in their instructions, and the trusted check.

`check_and_audit(program, w, key)` runs the kernel (`interpgym.proofs.lang`) on an
agent's program and audits the certified set per input against brute force (computed
once per model and cached in the process): the kernel is sound by construction, the
audit makes a kernel bug impossible to score (it raises `UnsoundProofError`, a bug,
never a score).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from interpgym.core.threads import torch_threads
from interpgym.harness.task import InvalidSolution
from interpgym.proofs.brute_force import brute_force
from interpgym.proofs.lang.kernel import check_program
from interpgym.proofs.lang.program import ProgramError
from interpgym.proofs.runner import audit
from interpgym.subjects.maxk import MaxKWeights

_CORRECT: dict[str, Tensor] = {}


def correct_inputs(w: MaxKWeights, key: str) -> Tensor:
    """Brute force's per-input verdicts on `w` (cached under `key`, one entry per model)."""
    if key not in _CORRECT:
        with torch_threads(1):
            _CORRECT[key] = brute_force(w).correct
    return _CORRECT[key]


def check_and_audit(program: Any, w: MaxKWeights, key: str) -> dict[str, Any]:
    """The kernel's verdict on `program` for `w` (`InvalidSolution` naming rule and step if rejected), audited."""
    try:
        with torch_threads(1):
            result = check_program(program, w)
    except ProgramError as exc:
        raise InvalidSolution(str(exc)) from exc
    audit(result.as_proof_result("program"), correct_inputs(w, key), w.vocab, w.k)
    return {"bound": result.bound, "flops": result.flops, "certified": result.certified, "total": result.total,
            "unexplained_dim": result.unexplained_dim, "wall_s": result.wall_s}


def language_guide() -> str:
    """The proof language, taught with two worked examples (markdown for task instructions)."""
    return """\
## The proof language (full reference: docs/proof_language.md)

A program is JSON: `{"language": "maxk-proof/1", "steps": [...], "certificate": ID}`.
Each step is `{"id": ID, "rule": RULE, "args": {NAME: ID}, "options": {...}, "hints": {...}}`.
`args` refer to other steps (any order; no cycles); each rule proves one *fact* and
accepts only facts of the types it needs. Hints are numbers the kernel only uses where
*any* value is sound (wrong hints cost you certified inputs, never soundness); every
number soundness depends on is recomputed from the weights. Rules:

| rule | args | options / hints | proves |
|---|---|---|---|
| `attention_tables` | | | EQKE, EQKP exactly (v^2 d) |
| `qk_factors` | | | factors of EQKE (L, W_QK, E) and EQKP (v d^2) |
| `ov_tables` | | | EVOU, PVOU (v^2 d) |
| `direct_table` | | | EU (v^2 d) |
| `eqke_exact` | factors | | EQKE exactly, residual 0 |
| `eqke_low_rank` | factors | residual: svd / max_diff / mean+max_diff; hints query_dir [v], key_dir [v] | rank-2 EQKE + per-query residual bound (any directions are sound) |
| `direct_split` | eu | | direct path = mean row + exact per-(q, m) worst case |
| `direct_mean_query` | factors | | direct path = mean query row + per-query bound (v d) |
| `float_slack` | ov, direct (optional) | magnitudes: pairwise / coordinate | float32 forward error + float64 room S |
| `pessimize_outputs` | eu, ov, slack | | cubic step 1: worst wrong output and worst position (v^3) |
| `cubic_cases` | attention, values | | cubic certificate: all (m, q, c, n), convexity for mixed non-max tokens (v^3 K) |
| `gap_cases` | eqke, ov, direct, slack | hints gaps [v, v, K] (int), mean_attn [v, K] | subcubic certificate: case (m, q, n) covers non-max tokens <= m - gaps[m,q,n] if the kernel's bound holds (v^2 K) |
| `gap_cases_valid` | as `gap_cases` | as `gap_cases` | the same certificate, evaluating only the cases with q <= m (about half the cost) |
| `choose_per_case` | certificates (list) | hint choice [v, v, K] (index) | per case, the sets of the chosen certificate |

**Example 1: the cubic proof** (no hints; sound but far over this task's budget):

```json
{"language": "maxk-proof/1", "certificate": "cert", "steps": [
  {"id": "qk", "rule": "attention_tables"},
  {"id": "ov", "rule": "ov_tables"},
  {"id": "eu", "rule": "direct_table"},
  {"id": "slack", "rule": "float_slack", "args": {"ov": "ov"}, "options": {"magnitudes": "pairwise"}},
  {"id": "values", "rule": "pessimize_outputs", "args": {"eu": "eu", "ov": "ov", "slack": "slack"}},
  {"id": "cert", "rule": "cubic_cases", "args": {"attention": "qk", "values": "values"}}]}
```

**Example 2: a subcubic proof with hints** (the reference's shape; lists shortened):

```json
{"language": "maxk-proof/1", "certificate": "cert", "steps": [
  {"id": "factors", "rule": "qk_factors"},
  {"id": "eqke", "rule": "eqke_low_rank", "args": {"factors": "factors"},
   "options": {"residual": "mean+max_diff"}, "hints": {"query_dir": [0.12, ...], "key_dir": [-0.03, ...]}},
  {"id": "ov", "rule": "ov_tables"},
  {"id": "eu", "rule": "direct_table"},
  {"id": "direct", "rule": "direct_split", "args": {"eu": "eu"}},
  {"id": "slack", "rule": "float_slack", "args": {"ov": "ov", "direct": "direct"}, "options": {"magnitudes": "coordinate"}},
  {"id": "cert", "rule": "gap_cases", "args": {"eqke": "eqke", "ov": "ov", "direct": "direct", "slack": "slack"},
   "hints": {"gaps": [[[1, 1, 1, 1], ...], ...], "mean_attn": [[0.0, 0.0, 0.0, 0.0], ...]}}]}
```

Hints are yours to search for (search is free; only the kernel's check is counted):
`interpgym.proofs.lang.export.search_hints(weights, variant)` gives the registered
search's directions, gaps and mean attention; `gap_program_steps(...)` builds the steps;
`interpgym.proofs.lang.kernel.check_program(program, weights)` runs the kernel locally
(`.bound`, `.flops`). Smaller gaps certify more inputs when the kernel accepts them;
`mean_attn` (A_bar per max token and copy count) trades the two attention endpoints.
"""


__all__ = ["check_and_audit", "correct_inputs", "language_guide"]

"""Registered strategies written as proof programs (`interpgym proofs export`).

`cubic_program()` needs no hints. `subcubic_program(w, variant)` runs the registered
variant's proof search on `w` (SVD directions, gaps, average attention; search is
free) and writes its verification as a program whose hints are the search's output.
Checked by the kernel, these programs certify exactly the inputs the registered
strategies certify (tests compare the per-input masks).
"""

from __future__ import annotations

from typing import Any

import torch

from interpgym.core.errors import UserError
from interpgym.proofs.lang.program import LANGUAGE
from interpgym.proofs.subcubic import VARIANTS, SubcubicVariant, verification_tables
from interpgym.proofs.subcubic_search import leading_directions, search_certificate
from interpgym.proofs.subcubic_tables import query_key_factors
from interpgym.subjects.maxk import MaxKWeights


def cubic_program() -> dict[str, Any]:
    """The cubic proof (`proofs/cubic.py`) as a program: exact tables, per-entry float32 error tables, convexity."""
    return {
        "language": LANGUAGE,
        "note": "the cubic proof: exact tables, outputs and positions pessimised with per-entry float32 error bounds, "
                "pure inputs whole + convexity",
        "steps": [
            {"id": "qk", "rule": "attention_tables"},
            {"id": "ov", "rule": "ov_tables"},
            {"id": "eu", "rule": "direct_table"},
            {"id": "errors", "rule": "float_error_tables", "args": {"attention": "qk", "ov": "ov", "eu": "eu"}},
            {"id": "cert", "rule": "cubic_cases_float32", "args": {"attention": "qk", "ov": "ov", "eu": "eu", "errors": "errors"}},
        ],
        "certificate": "cert",
    }


def gap_program_steps(eqke: str, direct: str, directions: tuple[torch.Tensor, torch.Tensor] | None,
                      gaps: torch.Tensor, mean_attn: torch.Tensor, prefix: str = "",
                      check_rule: str = "gap_cases") -> list[dict[str, Any]]:
    """The steps of a gap (subcubic) proof; the certificate step is `{prefix}cert`.

    `eqke` is `exact` or a residual bound (`svd`, `max_diff`, `mean+max_diff`) with
    `directions` (query, key); `direct` is `exact` or `mean_query+max_diff`; `check_rule`
    is `gap_cases` (every (m, q, n), as the registered strategies) or `gap_cases_valid`.
    """
    p = prefix
    steps: list[dict[str, Any]] = [{"id": f"{p}factors", "rule": "qk_factors"}]
    if eqke == "exact":
        steps.append({"id": f"{p}eqke", "rule": "eqke_exact", "args": {"factors": f"{p}factors"}})
    else:
        if directions is None:
            raise ValueError("a low-rank EQKE step needs directions")
        steps.append({"id": f"{p}eqke", "rule": "eqke_low_rank", "args": {"factors": f"{p}factors"},
                      "options": {"residual": eqke},
                      "hints": {"query_dir": directions[0].tolist(), "key_dir": directions[1].tolist()}})
    steps.append({"id": f"{p}ov", "rule": "ov_tables"})
    if direct == "exact":
        steps += [{"id": f"{p}eu", "rule": "direct_table"},
                  {"id": f"{p}direct", "rule": "direct_split", "args": {"eu": f"{p}eu"}}]
    else:
        steps.append({"id": f"{p}direct", "rule": "direct_mean_query", "args": {"factors": f"{p}factors"}})
    steps += [
        {"id": f"{p}slack", "rule": "float_slack", "args": {"ov": f"{p}ov", "direct": f"{p}direct"},
         "options": {"magnitudes": "coordinate"}},
        {"id": f"{p}cert", "rule": check_rule,
         "args": {"eqke": f"{p}eqke", "ov": f"{p}ov", "direct": f"{p}direct", "slack": f"{p}slack"},
         "hints": {"gaps": gaps.tolist(), "mean_attn": mean_attn.tolist()}},
    ]
    return steps


def search_hints(w: MaxKWeights, variant: SubcubicVariant) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The registered variant's proof search on `w`: (directions, gaps, mean_attn). Not costed."""
    w64 = w.to(dtype=torch.float64)
    with torch.no_grad():
        directions = leading_directions(query_key_factors(w64))
        tables = verification_tables(w64, variant, directions)
        gaps, mean_attn = search_certificate(tables, variant.attention)
    return directions, gaps.cpu(), mean_attn.cpu()


def subcubic_program(w: MaxKWeights, variant: SubcubicVariant) -> dict[str, Any]:
    """A registered subcubic variant as a program, its hints found by the variant's own search on `w`."""
    directions, gaps, mean_attn = search_hints(w, variant)
    return {"language": LANGUAGE, "note": f"{variant.name}, hints from its proof search",
            "steps": gap_program_steps(variant.eqke, variant.direct, tuple(d.cpu() for d in directions), gaps, mean_attn),
            "certificate": "cert"}


def exportable() -> list[str]:
    """Strategy names that have a program form (every registered one except brute force)."""
    return ["cubic", *(v.name for v in VARIANTS)]


def strategy_program(name: str, w: MaxKWeights) -> dict[str, Any]:
    """The program of registered strategy `name` on `w` (`UserError` if it has none)."""
    if name == "cubic":
        return cubic_program()
    for variant in VARIANTS:
        if variant.name == name:
            return subcubic_program(w, variant)
    raise UserError(f"strategy {name!r} has no program form; choose one of: {', '.join(exportable())}")


__all__ = ["cubic_program", "subcubic_program", "gap_program_steps", "search_hints", "strategy_program", "exportable"]

"""A proof written only in the language: the gap proof with a finer average-attention schedule.

The registered subcubic `mean+diff` variants choose the average attention A_bar[m, n]
from a 17-value grid (`subcubic_search.MEAN_ATTENTION_GRID`). The `gap_cases` rule
accepts *any* A_bar (every value is sound: the two-sided correction holds on both sides),
so this proof search tries 110 values per (max token, copy count) -- every 0.01 in [0, 1],
1 - 10^-e for e in 2..4 by quarters, and the registry's grid (so it never does worse
than the registered variant) -- and keeps, per (m, n), the value whose best
gaps certify the most inputs. The kernel's check (and its cost) is exactly that of the
`eqke=max_diff, direct=exact` gap program: only the hints differ. Search cost: one
`best_gaps` sweep per grid value (about a minute on the default model, free as search).
"""

from __future__ import annotations

from typing import Any

import torch

from interpgym.proofs.lang.export import gap_program_steps
from interpgym.proofs.lang.program import LANGUAGE
from interpgym.proofs.subcubic import SubcubicVariant, verification_tables
from interpgym.proofs.subcubic_search import MEAN_ATTENTION_GRID, leading_directions, search_certificate
from interpgym.proofs.subcubic_tables import query_key_factors
from interpgym.subjects.maxk import MaxKWeights

NAME = "program/fine-attention"
FINE_GRID = tuple(sorted({i / 100 for i in range(101)} | {1 - 10 ** (-e / 4) for e in range(8, 17)} | set(MEAN_ATTENTION_GRID)))


def fine_attention_program(w: MaxKWeights, eqke: str = "max_diff", grid: tuple[float, ...] = FINE_GRID) -> dict[str, Any]:
    """The gap program for `w` whose A_bar[m, n] is the best of `grid` (gaps: smallest certified)."""
    w64 = w.to(dtype=torch.float64)
    with torch.no_grad():
        directions = leading_directions(query_key_factors(w64))
        tables = verification_tables(w64, SubcubicVariant(eqke, "exact", "mean+diff"), directions)
        best_gap, best_mean = search_certificate(tables, "mean+diff", grid)
    dirs = None if eqke == "exact" else (directions[0].cpu(), directions[1].cpu())
    return {"language": LANGUAGE, "note": f"{NAME}: gap proof, eqke={eqke}, direct=exact, A_bar from a {len(grid)}-value grid",
            "steps": gap_program_steps(eqke, "exact", dirs, best_gap.cpu(), best_mean.cpu()), "certificate": "cert"}


__all__ = ["fine_attention_program", "FINE_GRID", "NAME"]

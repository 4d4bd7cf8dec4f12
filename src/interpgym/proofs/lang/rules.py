"""The rules of the max-of-K proof language: each a small lemma with a checked precondition.

Every rule takes facts (the outputs of earlier steps, each tagged with its type), the
model's weights, literal options and numeric hints, and returns one new fact. A fact's
type is its guarantee (see `FACT_TYPES`); a rule may only consume facts of the types its
signature names, and the kernel checks this before running it. Hints are untrusted:
each rule says how it sanitises them and why every sanitised value keeps the fact true.
The arithmetic is the existing, tested proof code (`tables`, `subcubic_tables`,
`subcubic_cases`, `cubic`, `roundoff`): the rules add the typing, the hint handling and
the preconditions. `docs/proof_language.md` states each rule's precondition, guarantee,
soundness argument (float rounding included) and cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from interpgym.proofs.cubic import (
    _certificate_log_space,
    _certificate_scaled,
    _validity_masks,
    certificate_from_values,
    float32_value_tables,
    pessimized_value_tables,
)
from interpgym.proofs.lang.program import ProgramError, RuleSpec, Step
from interpgym.proofs.pure_inputs import pure_float32_certified
from interpgym.proofs.roundoff import MAGNITUDES, margin_slack, value_logit_bound
from interpgym.proofs.roundoff_tables import error_tables
from interpgym.proofs.subcubic_cases import case_tables, certificate_tables, coverable, worst_logit_gap
from interpgym.proofs.subcubic_tables import (
    DIRECT_METHODS,
    AttentionTables,
    DirectTables,
    direct_tables,
    eqke_tables,
    max_over_others,
    query_key_factors,
)
from interpgym.proofs.tables import MaxKTables, attention_tables, direct_table, ov_tables
from interpgym.subjects.maxk import MaxKWeights

# fact type -> what a fact of that type guarantees (exact arithmetic unless stated)
FACT_TYPES = {
    "qk_tables": "(EQKE [v,v], EQKP [v,K]) exactly as in proofs/tables.py",
    "qk_factors": "(L = E + P[K-1], W_QK, E, EQKP) with EQKE = L W_QK E^T",
    "eqke_bound": "(approx [v,v], row_err [v], EQKP): |EQKE[q,a]-EQKE[q,b] - (approx[q,a]-approx[q,b])| <= row_err[q]",
    "ov_tables": "(EVOU [v,v], PVOU [K,v]) exactly",
    "eu_table": "EU [v,v] exactly",
    "direct_bound": "(mean_logits [v], query_err [v,v]): EU[q,y]-EU[q,m] <= mean[y]-mean[m]+query_err[q,m] for y != m",
    "slack": "S >= |float32 margin - exact margin| + float64 error of the tables it was derived for",
    "error_tables": "per-entry bounds on the float32 forward's errors (proofs/roundoff_tables.py) for the tables it was derived from",
    "value_bound": "U[m,q,t] >= max_{j!=m} (logit_j - logit_m contribution of key t) + direct + S (cubic step 1)",
    "certificate": "(ok [v,v,v,K], ok_pure [v,v]) in the sense of proofs/certificates.py, float32 forward included",
}


@dataclass
class Fact:
    """A proved fact: its type, its tensors, the facts it was derived from, its unexplained dimension."""

    type: str
    value: Any
    sources: dict[str, Fact] = field(default_factory=dict)
    unexplained: float = 0.0


Context = dict[str, Any]  # "weights": float64 MaxKWeights


def _hint(step: Step, name: str, shape: tuple[int, ...]) -> Tensor:
    value = step.hints[name]
    if tuple(value.shape) != shape:
        raise ProgramError(f"proof program rejected: {step.where()}, hint {name!r}: shape {list(value.shape)}, expected {list(shape)}")
    return value


def _direction(step: Step, name: str, w: MaxKWeights) -> Tensor:
    """A unit vector (or zero) from a direction hint: any vector keeps the split exact; unit norm
    keeps its float64 rounding at the size of the weights' own (L_r = (I - u u^T) L)."""
    u = _hint(step, name, (w.vocab,)).to(device=w.W_E.device)
    norm = u.norm()
    if float(norm) == 0.0 or abs(float(norm) - 1.0) <= 1e-9:
        return u  # already unit (search's singular vectors pass untouched) or zero
    return u / norm


# --- tables ---------------------------------------------------------------------------------


def rule_attention_tables(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    eqke, eqkp = attention_tables(ctx["weights"])
    w = ctx["weights"]
    return Fact("qk_tables", (eqke, eqkp), unexplained=float(w.vocab**2 + w.vocab * w.k))


def rule_qk_factors(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    w = ctx["weights"]
    return Fact("qk_factors", query_key_factors(w), unexplained=float(w.vocab * w.k))


def rule_ov_tables(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    w = ctx["weights"]
    return Fact("ov_tables", ov_tables(w), unexplained=float(w.vocab**2 + w.k * w.vocab))


def rule_direct_table(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    w = ctx["weights"]
    return Fact("eu_table", direct_table(w), unexplained=float(w.vocab**2))


# --- attention: EQKE with a residual bound -------------------------------------------------------


def rule_eqke_exact(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    w = ctx["weights"]
    return Fact("eqke_bound", eqke_tables(facts["factors"].value, "exact", None, None), unexplained=float(w.vocab**2))


def rule_eqke_low_rank(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    w = ctx["weights"]
    method = step.options["residual"]
    u, v = _direction(step, "query_dir", w), _direction(step, "key_dir", w)
    att = eqke_tables(facts["factors"].value, method, u, v)
    dim = 2 * w.vocab + 1 if method == "svd" else 3 * w.vocab
    return Fact("eqke_bound", att, unexplained=float(dim))


# --- direct path ---------------------------------------------------------------------------------


def rule_direct_split(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    """The exact direct path as mean row + per-(q, m) worst case (what `direct_tables(.., "exact")` computes)."""
    logits = facts["eu"].value
    mean_logits = logits.mean(dim=0)
    residual = logits - mean_logits
    return Fact("direct_bound", DirectTables(mean_logits=mean_logits, query_err=max_over_others(residual) - residual))


def rule_direct_mean_query(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    w = ctx["weights"]
    tables = direct_tables(w, facts["factors"].value.query, DIRECT_METHODS[1])
    return Fact("direct_bound", tables, unexplained=float(2 * w.vocab))


# --- float rounding ------------------------------------------------------------------------------


def _table_scale(ov: Fact, direct: Fact | None) -> float:
    """Largest magnitude of the tables a gap certificate evaluates (0: only logit-sized tables)."""
    if direct is None:
        return 0.0
    evou, pvou = ov.value
    d: DirectTables = direct.value
    return float(evou.abs().amax() + pvou.abs().amax() + d.mean_logits.abs().amax() + d.query_err.abs().amax())


def rule_float_slack(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    evou, pvou = facts["ov"].value
    direct = facts.get("direct")
    slack = margin_slack(ctx["weights"], value_logit_bound(evou, pvou), step.options["magnitudes"],
                         table_scale=_table_scale(facts["ov"], direct))
    return Fact("slack", slack)


# --- the cubic proof ---------------------------------------------------------------------------


def _require_same(step: Step, what: str, used: Fact, expected: Fact | None) -> None:
    if used is not expected:
        raise ProgramError(f"proof program rejected: {step.where()}: the slack must be derived (rule float_slack) "
                           f"from the same {what} fact this step uses")


def rule_pessimize_outputs(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    slack = facts["slack"]
    _require_same(step, "ov", facts["ov"], slack.sources.get("ov"))
    evou, pvou = facts["ov"].value
    eu = facts["eu"].value
    tables = MaxKTables(EQKE=eu, EQKP=pvou.T, EVOU=evou, PVOU=pvou, EU=eu)  # only EU, EVOU, PVOU are read
    return Fact("value_bound", pessimized_value_tables(tables, slack.value))


def rule_cubic_cases(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    eqke, eqkp = facts["attention"].value
    U = facts["values"].value
    vocab, k = eqkp.shape
    tables = MaxKTables(EQKE=eqke, EQKP=eqkp, EVOU=U[0], PVOU=eqkp.T, EU=eqke)  # only EQKE, EQKP are read
    scaled = _certificate_scaled(tables, U)
    ok, ok_pure = scaled if scaled is not None else _certificate_log_space(tables, U)
    below, query_ok = _validity_masks(vocab, U.device)
    ok = ok & below[:, None, :, None] & query_ok[:, :, None, None]
    ok[:, :, :, k - 1] = False
    return Fact("certificate", ("sets", ok, ok_pure & query_ok))


def rule_float_error_tables(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    eqke, eqkp = facts["attention"].value
    evou, pvou = facts["ov"].value
    tables = MaxKTables(EQKE=eqke, EQKP=eqkp, EVOU=evou, PVOU=pvou, EU=facts["eu"].value)
    return Fact("error_tables", (tables, error_tables(ctx["weights"], tables)))


def rule_cubic_cases_float32(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    errors = facts["errors"]
    for what in ("attention", "ov", "eu"):
        if facts[what] is not errors.sources.get(what):
            raise ProgramError(f"proof program rejected: {step.where()}: the error tables must be derived (rule "
                               f"float_error_tables) from the same {what} fact this step uses")
    tables, bounds = errors.value
    ok, ok_pure = certificate_from_values(tables, *float32_value_tables(tables, bounds))
    return Fact("certificate", ("sets", ok, ok_pure | pure_float32_certified(tables, bounds)))


# --- the gap (subcubic) proof ----------------------------------------------------------------------


def _gap_certificate(step: Step, facts: dict[str, Fact], ctx: Context, valid_only: bool) -> Fact:
    w = ctx["weights"]
    slack = facts["slack"]
    _require_same(step, "ov", facts["ov"], slack.sources.get("ov"))
    _require_same(step, "direct", facts["direct"], slack.sources.get("direct"))
    att: AttentionTables = facts["eqke"].value
    evou, pvou = facts["ov"].value
    device = evou.device
    v, k = w.vocab, w.k
    # any integer gap is sound (g < 1 certifies nothing, g > m covers no non-max token); any A_bar is sound
    gaps = _hint(step, "gaps", (v, v, k)).to(device).round().clamp(0, v + 1).long()
    mean_attn = _hint(step, "mean_attn", (v, k)).to(device).clamp(0.0, 1.0)
    tables = case_tables(att, evou, pvou, facts["direct"].value, slack.value)
    if not valid_only:
        worst = worst_logit_gap(tables, gaps, mean_attn)
        certified = coverable(v, k, gaps) & (worst < -tables.slack) & worst.isfinite()
        return Fact("certificate", ("gaps", certified, gaps))
    # the same check on the v (v + 1) / 2 pairs q <= m only (cases with q > m do not exist)
    m, q = torch.tril_indices(v, v, device=device)
    cases = (m[:, None], q[:, None], torch.arange(k, device=device)[None, :])
    packed = gaps[cases]  # [pairs, K]
    worst = worst_logit_gap(tables, packed, mean_attn, cases)
    certified = torch.zeros((v, v, k), dtype=torch.bool, device=device)
    certified[cases] = coverable(v, k, packed, cases) & (worst < -tables.slack) & worst.isfinite()
    return Fact("certificate", ("gaps", certified, gaps))


def rule_gap_cases(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    return _gap_certificate(step, facts, ctx, valid_only=False)


def rule_gap_cases_valid(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    return _gap_certificate(step, facts, ctx, valid_only=True)


# --- combining certificates -----------------------------------------------------------------------


def rule_choose_per_case(step: Step, facts: dict[str, Fact], ctx: Context) -> Fact:
    """Per case (m, q, n), the sets G of the certificate the hint picks (any pick is sound)."""
    w = ctx["weights"]
    parts = facts["certificates"].value  # list of certificate facts
    choice = _hint(step, "choice", (w.vocab, w.vocab, w.k)).round().clamp(0, len(parts) - 1).long()
    return Fact("certificate", ("choice", choice, [p.value for p in parts]))


def certified_sets(value: tuple) -> tuple[Tensor, Tensor]:
    """(ok, ok_pure) of a certificate fact's value (`certificates` semantics).

    Bookkeeping, not charged (as for every registered strategy): a certificate is proved
    by the rule that made it; this only lists the sets it describes.
    """
    kind = value[0]
    if kind == "sets":
        return value[1], value[2]
    if kind == "gaps":
        return certificate_tables(value[1], value[2])
    choice, parts = value[1], value[2]
    sets = [certified_sets(p) for p in parts]
    ok = torch.stack([s[0] for s in sets])  # [C, m, q, c, n]
    pure = torch.stack([s[1] for s in sets])  # [C, m, q]
    pick = choice.to(ok.device)
    chosen = ok.gather(0, pick[None, :, :, None, :].expand(1, *ok.shape[1:]))[0]
    return chosen, pure.gather(0, pick[None, :, :, -1])[0]


@dataclass(frozen=True)
class Rule:
    spec: RuleSpec
    output: str
    apply: Callable[[Step, dict[str, Fact], Context], Fact]


RULES: dict[str, Rule] = {
    "attention_tables": Rule(RuleSpec(args={}), "qk_tables", rule_attention_tables),
    "qk_factors": Rule(RuleSpec(args={}), "qk_factors", rule_qk_factors),
    "ov_tables": Rule(RuleSpec(args={}), "ov_tables", rule_ov_tables),
    "direct_table": Rule(RuleSpec(args={}), "eu_table", rule_direct_table),
    "eqke_exact": Rule(RuleSpec(args={"factors": "qk_factors"}), "eqke_bound", rule_eqke_exact),
    "eqke_low_rank": Rule(RuleSpec(args={"factors": "qk_factors"},
                                   options={"residual": ("svd", "max_diff", "mean+max_diff")},
                                   hints=("query_dir", "key_dir")), "eqke_bound", rule_eqke_low_rank),
    "direct_split": Rule(RuleSpec(args={"eu": "eu_table"}), "direct_bound", rule_direct_split),
    "direct_mean_query": Rule(RuleSpec(args={"factors": "qk_factors"}), "direct_bound", rule_direct_mean_query),
    "float_slack": Rule(RuleSpec(args={"ov": "ov_tables", "direct": "direct_bound"}, options={"magnitudes": MAGNITUDES},
                                 optional_args=("direct",)), "slack", rule_float_slack),
    "pessimize_outputs": Rule(RuleSpec(args={"eu": "eu_table", "ov": "ov_tables", "slack": "slack"}),
                              "value_bound", rule_pessimize_outputs),
    "cubic_cases": Rule(RuleSpec(args={"attention": "qk_tables", "values": "value_bound"}), "certificate", rule_cubic_cases),
    "float_error_tables": Rule(RuleSpec(args={"attention": "qk_tables", "ov": "ov_tables", "eu": "eu_table"}), "error_tables",
                               rule_float_error_tables),
    "cubic_cases_float32": Rule(RuleSpec(args={"attention": "qk_tables", "ov": "ov_tables", "eu": "eu_table",
                                               "errors": "error_tables"}), "certificate", rule_cubic_cases_float32),
    "gap_cases": Rule(RuleSpec(args={"eqke": "eqke_bound", "ov": "ov_tables", "direct": "direct_bound", "slack": "slack"},
                               hints=("gaps", "mean_attn")), "certificate", rule_gap_cases),
    "gap_cases_valid": Rule(RuleSpec(args={"eqke": "eqke_bound", "ov": "ov_tables", "direct": "direct_bound",
                                           "slack": "slack"}, hints=("gaps", "mean_attn")), "certificate",
                            rule_gap_cases_valid),
    "choose_per_case": Rule(RuleSpec(args={"certificates": "certificate"}, hints=("choice",), list_args=("certificates",)),
                            "certificate", rule_choose_per_case),
}

RULE_SPECS: dict[str, RuleSpec] = {name: rule.spec for name, rule in RULES.items()}

__all__ = ["RULES", "RULE_SPECS", "FACT_TYPES", "Fact", "Rule", "certified_sets"]

"""Sweep helpers: Pareto frontier, sparsity settings, architecture parsing."""

from __future__ import annotations

import pytest

from interpgym.core.errors import UserError
from interpgym.sae import ARCHITECTURES
from interpgym.sae.sweep import parse_archs, sweep_settings


def test_sweep_settings() -> None:
    assert [s["k"] for s in sweep_settings("topk", 5, 5)] == [2, 3, 5, 8, 12]
    assert [s["k"] for s in sweep_settings("batchtopk", 5, 3)] == [2, 5, 12]
    coeffs = [s["sparsity_coeff"] for s in sweep_settings("relu", 5, 5)]
    default = ARCHITECTURES["relu"].default_sparsity_coeff
    assert coeffs == pytest.approx([default * m for m in (0.25, 0.5, 1.0, 2.0, 4.0)])


def test_parse_archs() -> None:
    assert parse_archs("all") == sorted(ARCHITECTURES)
    assert parse_archs(" topk , gated") == ["topk", "gated"]
    with pytest.raises(UserError, match="unknown SAE architecture"):
        parse_archs("topk,nope")
    with pytest.raises(UserError):
        parse_archs(" , ")

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


def test_sweep_plot_range_ignores_degenerate_points_and_shows_the_true_l0(tmp_path):
    from interpgym.sae.sweep import plot_sweep, sweep_x_range

    runs = [{"arch": "relu", "metrics": {"l0": l0, "fvu": fvu, "mcc": 0.5}}
            for l0, fvu in ((2.0, 0.3), (8.0, 0.1), (0.0, 1.0), (900.0, 1.2))]
    low, high = sweep_x_range(runs, true_l0=5.0)
    assert low == pytest.approx(2.0 / 1.5) and high == pytest.approx(8.0 * 1.5)  # not 900, not 0
    assert sweep_x_range(runs, true_l0=20.0)[1] == pytest.approx(30.0)  # the true L0 is always in view
    assert sweep_x_range(runs[2:], None) is None
    result = {"subject": {"name": "toy"}, "runs": runs, "frontiers": {"relu": [0, 1]}, "true_mean_l0": 5.0}
    plot_sweep(result, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0

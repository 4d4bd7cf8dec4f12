"""The one-per-job helpers in `core`: Pareto fronts, the 'all or a list' parser, output paths, seeds."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interpgym.core.errors import UserError
from interpgym.core.jsonio import write_json_atomic
from interpgym.core.optional import import_feature, is_own_import_error
from interpgym.core.outputs import atomic_output, check_output_path
from interpgym.core.pareto import pareto_front
from interpgym.core.seeding import derived_seed
from interpgym.core.selection import parse_selection


def _brute_force_front(points: list[tuple[float, float]]) -> list[int]:
    def dominates(j: int, i: int) -> bool:
        (aj, bj), (ai, bi) = points[j], points[i]
        return aj <= ai and bj <= bi and (aj < ai or bj < bi)

    front = [i for i in range(len(points)) if not any(dominates(j, i) for j in range(len(points)) if j != i)]
    return sorted(front, key=lambda i: (points[i][0], i))


def test_pareto_front_by_hand() -> None:
    points = [(5.0, 0.2), (3.0, 0.3), (4.0, 0.35), (8.0, 0.1), (8.0, 0.15), (2.0, 0.5)]
    assert pareto_front(points) == [5, 1, 0, 3]  # (4, .35) is dominated by (3, .3); (8, .15) by (8, .1)
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0, 1]  # identical points do not dominate each other


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25))
def test_pareto_front_matches_the_definition(raw: list[tuple[int, int]]) -> None:
    points = [(float(a), float(b)) for a, b in raw]
    assert pareto_front(points) == _brute_force_front(points)


def test_parse_selection() -> None:
    known = ["b", "a", "c"]
    assert parse_selection(" all ", known, flag="--x", what="thing") == known
    assert parse_selection(" c , a,c", known, flag="--x", what="thing") == ["c", "a"]
    with pytest.raises(UserError, match="unknown thing 'z'"):
        parse_selection("a,z", known, flag="--x", what="thing")
    with pytest.raises(UserError, match="--x is empty"):
        parse_selection(" , ", known, flag="--x", what="thing")


def test_derived_seed_keeps_the_historic_arithmetic() -> None:
    assert derived_seed(3, 5) == 3 * 1_000_003 + 5
    seeds = {derived_seed(s, e) for s, e in itertools.product(range(20), range(50))}
    assert len(seeds) == 20 * 50


def test_check_output_path_refuses_each_kind_of_bad_path(tmp_path: Path, read_only_dir: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(UserError, match="is a directory"):
        check_output_path(tmp_path, "--json")
    with pytest.raises(UserError, match="is a file"):
        check_output_path(a_file / "out.json", "--json")
    with pytest.raises(UserError, match="is a file"):
        check_output_path(a_file, "--out", directory=True)
    with pytest.raises(UserError, match="cannot write"):
        check_output_path(read_only_dir / "out.json", "--json")
    with pytest.raises(UserError, match="cannot write"):
        check_output_path(read_only_dir / "new" / "deeper" / "out.json", "--json")
    check_output_path(None, "--json")
    check_output_path(tmp_path / "new" / "out.json", "--json")
    check_output_path(a_file, "--json")  # an existing file is replaced atomically later
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "read-only"]  # the probe leaves nothing


def test_outputs_get_umask_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "a.json", {"x": 1})
        with atomic_output(tmp_path / "b.png", suffix=".png") as tmp:
            tmp.write_bytes(b"png")
        for written in (path, tmp_path / "b.png"):
            assert stat.S_IMODE(written.stat().st_mode) == 0o644
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.png"]
    finally:
        os.umask(previous)


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "c.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_import_feature_names_a_missing_package_and_surfaces_our_own_bugs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "needs_missing_pkg.py").write_text("import surely_not_installed_pkg_xyz\n")
    (tmp_path / "broken_own.py").write_text("from interpgym.core import no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="needs the Python package 'surely_not_installed_pkg_xyz'"):
        import_feature("needs_missing_pkg", "the test feature")
    with pytest.raises(ImportError) as info:
        import_feature("broken_own", "the test feature")
    assert not isinstance(info.value, UserError) and is_own_import_error(info.value)

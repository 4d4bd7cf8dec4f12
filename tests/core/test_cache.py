from __future__ import annotations

from pathlib import Path

import pytest

from interpgym.core.cache import get_or_build, verify_entry


def _builder(calls: list[int], payload: bytes = b"hello"):
    def build(tmp: Path) -> None:
        calls.append(1)
        (tmp / "data.bin").write_bytes(payload)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x.json").write_text("{}")

    return build


def test_builds_once_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path))
    calls: list[int] = []
    first = get_or_build("unit", {"a": 1}, _builder(calls))
    second = get_or_build("unit", {"a": 1}, _builder(calls))
    assert first == second and len(calls) == 1
    assert (first / "data.bin").read_bytes() == b"hello"
    other = get_or_build("unit", {"a": 2}, _builder(calls))
    assert other != first and len(calls) == 2


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete", "extra", "manifest"])
def test_corrupt_entry_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path))
    calls: list[int] = []
    entry = get_or_build("unit", {"a": 1}, _builder(calls))
    if damage == "truncate":
        (entry / "data.bin").write_bytes(b"he")
    elif damage == "edit":
        (entry / "data.bin").write_bytes(b"HELLO")  # same size, other content
    elif damage == "delete":
        (entry / "sub" / "x.json").unlink()
    elif damage == "extra":
        (entry / "stray.bin").write_bytes(b"?")
    else:
        (entry / "MANIFEST.json").write_text("{not json")
    assert not verify_entry(entry)
    again = get_or_build("unit", {"a": 1}, _builder(calls))
    assert len(calls) == 2 and verify_entry(again)
    assert (again / "data.bin").read_bytes() == b"hello"


def test_failed_build_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path))

    def broken(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        get_or_build("unit", {"a": 3}, broken)
    kind_dir = tmp_path / "cache" / "unit"
    assert [p.name for p in kind_dir.iterdir() if not p.name.endswith(".lock")] == []

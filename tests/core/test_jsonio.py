from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest

from interpgym.core.jsonio import write_json_atomic


def test_writes_strict_json_with_usual_permissions(tmp_path: Path) -> None:
    out = write_json_atomic(tmp_path / "sub" / "a.json", {"x": 1.5, "bad": math.nan, "rows": [math.inf, 2]})
    assert json.loads(out.read_text()) == {"x": 1.5, "bad": None, "rows": [None, 2]}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_failure_leaves_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]

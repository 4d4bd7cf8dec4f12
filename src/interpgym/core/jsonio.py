"""Writing JSON results safely: all-or-nothing, stable keys, no NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from interpgym.core.outputs import atomic_output


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write `data` as indented JSON to `path` atomically (temp file + rename).

    Non-finite floats become `null` so the file is strict JSON. A reader never sees a
    half-written file, and a failure leaves any previous file untouched.
    """
    path = Path(path)
    text = json.dumps(_clean(data), indent=2, allow_nan=False) + "\n"  # fails before any file is touched
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return path

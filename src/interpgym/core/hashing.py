"""Config hashing: a stable content hash of a JSON-able config (dataclass or dict)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import torch


def to_jsonable(config: Any) -> Any:
    """Convert a dataclass / mapping / sequence of plain values into JSON-able data."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, dict):
        return {str(k): to_jsonable(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [to_jsonable(v) for v in config]
    if isinstance(config, (str, int, float, bool)) or config is None:
        return config
    raise TypeError(f"config value of type {type(config).__name__} is not hashable as JSON")


def canonical_json(config: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace) of a config."""
    return json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: Any, length: int = 16) -> str:
    """Hex sha256 prefix of the canonical JSON of `config`. Same config, same hash, any machine."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:length]


def tensors_digest(tensors: dict[str, torch.Tensor], config: Any = None) -> str:
    """Hex sha256 of named tensors (names, dtypes, shapes and bytes, in name order) and an optional config.

    Keys caches of results computed from weights (same weights and config, same digest).
    Cost: one read of every tensor (a CPU copy of each, if it lives elsewhere).
    """
    digest = hashlib.sha256(canonical_json(config).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

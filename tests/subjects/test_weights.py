"""Every toy transformer's weight set refuses a missing tensor, a wrong shape and NaN with one line naming it."""

from __future__ import annotations

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.subjects.maxk import MaxKWeights
from interpgym.subjects.maxk_heads import MaxKHeadsWeights
from interpgym.subjects.modadd import ModAddWeights

WEIGHT_SETS = {
    "maxk": lambda g: MaxKWeights.random(6, 3, 8, 4, g),
    "maxk_heads": lambda g: MaxKHeadsWeights.random(6, 3, 8, 4, 2, g),
    "modadd": lambda g: ModAddWeights.random(7, 8, 2, 4, 16, g),
}


@pytest.mark.parametrize("kind", sorted(WEIGHT_SETS))
def test_weight_sets_refuse_missing_misshapen_and_non_finite_tensors(kind: str) -> None:
    weights = WEIGHT_SETS[kind](torch.Generator().manual_seed(0))
    cls = type(weights)
    tensors = weights.as_dict()
    assert cls.from_dict(dict(tensors)).as_dict().keys() == tensors.keys()
    with pytest.raises(UserError, match=r"w\.safetensors: missing tensors \['W_U'\]"):
        cls.from_dict({n: t for n, t in tensors.items() if n != "W_U"}, source="w.safetensors")
    with pytest.raises(UserError, match="W_pos has shape"):
        cls.from_dict(tensors | {"W_pos": tensors["W_pos"][:, :-1]})
    with pytest.raises(UserError, match="W_E contains NaN or inf"):
        cls.from_dict(tensors | {"W_E": tensors["W_E"].clone().fill_(float("nan"))})

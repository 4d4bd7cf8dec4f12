"""Small shared fixtures for the SAE tests: a tiny toy subject (trains in well under a second)."""

from __future__ import annotations

import pytest

from interpgym.subjects.toy_superposition import ToyConfig, ToySubject


@pytest.fixture(scope="session")
def tiny_toy() -> ToySubject:
    return ToySubject(ToyConfig(n_features=48, d_in=16, mean_l0=3.0, n_train=8192, n_val=1024, n_test=2048, seed=1))

"""SAE architectures, one small class each, registered by name (see `registry`)."""

from interpgym.sae.architectures import batchtopk, gated, jumprelu, matryoshka, relu, topk  # noqa: F401  (registers)
from interpgym.sae.architectures.base import SparseAutoencoder, StepContext, TrainOutput
from interpgym.sae.architectures.registry import ARCHITECTURES, architecture, build_sae, register

__all__ = ["ARCHITECTURES", "SparseAutoencoder", "StepContext", "TrainOutput", "architecture", "build_sae", "register"]

"""What the SAE tasks share: loading an agent's SAE artifact safely and encoding a split with it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interpgym.core.errors import UserError
from interpgym.harness.task import Artifact, Constraint, InvalidSolution
from interpgym.sae.architectures import SparseAutoencoder
from interpgym.sae.storage import load_sae

CHUNK = 4096
L0_TOLERANCE = 1e-6  # counts are exact; this only absorbs the float64 mean's rounding


@dataclass
class EncodedSplit:
    """An SAE's latents on a split, with the sparsity facts every SAE scorer checks."""

    latents: Float[Tensor, "n d_sae"]
    mean_l0: float
    alive: Tensor  # bool [d_sae]: fires at least once on the split


def load_checked_sae(artifact: Artifact, d_in: int, max_width: int) -> SparseAutoencoder:
    """The artifact's SAE via interpgym's own loader (JSON + safetensors only), shape-checked.

    The claimed shape in `cfg.json` is checked before the loader builds anything: an
    artifact cannot make the scorer allocate a width it does not allow.
    """
    claimed = artifact.json.get("cfg")
    if not isinstance(claimed, dict):
        raise InvalidSolution("the artifact has no cfg.json object (write it with interpgym.sae.storage.save_sae)")
    try:
        claimed_d_in, claimed_width = int(claimed["d_in"]), int(claimed["d_sae"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidSolution(f"cfg.json lacks integer d_in/d_sae ({exc})") from exc
    if claimed_d_in != d_in:
        raise InvalidSolution(f"the SAE reads d_in={claimed_d_in}, the activations have {d_in}")
    if claimed_width > max_width:
        raise InvalidSolution(f"width {claimed_width} exceeds the task's maximum {max_width}")
    if claimed_width < 1:
        raise InvalidSolution(f"width {claimed_width} must be at least 1")
    try:
        sae = load_sae(artifact.directory).sae
    except UserError as exc:
        raise InvalidSolution(f"not a loadable SAE directory: {exc}") from exc
    if sae.d_in != d_in:
        raise InvalidSolution(f"the SAE reads d_in={sae.d_in}, the activations have {d_in}")
    if sae.d_sae > max_width:
        raise InvalidSolution(f"width {sae.d_sae} exceeds the task's maximum {max_width}")
    return sae.eval()


@torch.no_grad()
def encode_within_budget(sae: SparseAutoencoder, acts: Float[Tensor, "n d"], l0_budget: float, split: str) -> EncodedSplit:
    """Encode `acts` (in chunks) and check finiteness and mean L0 <= `l0_budget` (else `InvalidSolution`)."""
    latents = torch.cat([sae.encode(chunk) for chunk in acts.split(CHUNK)])
    if not bool(torch.isfinite(latents).all()):
        raise InvalidSolution("the SAE produces NaN or infinite latents")
    fires = latents != 0
    mean_l0 = float(fires.sum(1, dtype=torch.float64).mean())
    if mean_l0 > l0_budget + L0_TOLERANCE:
        raise InvalidSolution(f"mean L0 {mean_l0:.3f} on {split} exceeds the budget {l0_budget:g}")
    alive = fires.any(0)
    if not bool(alive.any()):
        raise InvalidSolution("no latent fires on the split")
    return EncodedSplit(latents=latents, mean_l0=mean_l0, alive=alive)


@torch.no_grad()
def decode(sae: SparseAutoencoder, latents: Float[Tensor, "n s"]) -> Float[Tensor, "n d"]:
    return torch.cat([sae.decode(chunk) for chunk in latents.split(CHUNK)])


# The parameterised solution both SAE tasks start from: any registered architecture,
# trained by interpgym's trainer, saved in the format the scorers load.
SOLUTION = """\
\"\"\"SAE task solution: train an SAE on the train activations and save it as the artifact.\"\"\"
import json
import os

from safetensors.torch import load_file

from interpgym.sae.config import SAEConfig, TrainConfig
from interpgym.sae.storage import save_sae
from interpgym.sae.trainer import train_sae

params = json.load(open("params.json"))
acts = load_file("data/train.safetensors")["activations"]
sae_cfg = SAEConfig(
    arch=params["arch"],
    d_in=acts.shape[1],
    d_sae=params["width"],
    k=params["k"] if params["arch"] in ("topk", "batchtopk", "matryoshka") else None,
    sparsity_coeff=params["sparsity_coeff"] if params["arch"] in ("relu", "jumprelu", "gated") else None,
)
train_cfg = TrainConfig(steps=params["steps"], batch_size=params["batch_size"], lr=params["lr"],
                        seed=int(os.environ.get("INTERPGYM_SEED", "0")))
result = train_sae(acts, sae_cfg, train_cfg)
save_sae(os.environ["INTERPGYM_ARTIFACT_DIR"], result.sae, result.metadata(), overwrite=True)
"""


def sae_search_space(width: tuple[int, int], max_k: int, max_steps: int = 1500,
                     archs: tuple[str, ...] = ("topk", "batchtopk", "relu", "jumprelu")) -> dict[str, dict]:
    """The parameter space of `SOLUTION` for parameter-only agents (`sparsity_coeff` only
    when a penalty architecture is among `archs`)."""
    space = {
        "arch": {"type": "categorical", "choices": list(archs)},
        "width": {"type": "int", "low": width[0], "high": width[1], "log": True},
        "k": {"type": "int", "low": 1, "high": max_k},
        "sparsity_coeff": {"type": "float", "low": 1e-3, "high": 30.0, "log": True},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "steps": {"type": "int", "low": 100, "high": max_steps, "log": True},
        "batch_size": {"type": "categorical", "choices": [256, 512, 1024]},
    }
    if not set(archs) - set(K_ARCHS):
        del space["sparsity_coeff"]
    return space


K_ARCHS = ("topk", "batchtopk", "matryoshka")  # architectures whose mean L0 is k by construction


def k_within_l0_budget(l0_budget: float) -> Constraint:
    """The constraint `k <= l0_budget` for the architectures whose mean L0 is k (`K_ARCHS`):
    a larger k is over the sparsity budget before training even starts; batchtopk, whose
    held-out L0 fluctuates around k, needs k <= l0_budget - 1. (ReLU-style SAEs' L0 is
    known only after training: those are judged by the scorer.)"""

    def violation(params: dict) -> float:
        if params.get("arch") == "batchtopk":  # its inference threshold gives L0 = k only on average
            return float(params["k"]) - (l0_budget - 1)
        return float(params["k"]) - l0_budget if params.get("arch") in K_ARCHS else -1.0

    return Constraint(name="k <= L0 budget",
                      description=f"topk/matryoshka SAEs fire k latents per input, so k must be <= the mean-L0 "
                                  f"budget {l0_budget:g}; batchtopk's held-out L0 only averages k (it can exceed k: "
                                  f"docs/harness_scale.md), so k <= {l0_budget - 1:g}", violation=violation)

"""Thread control: pin intra-op threads for reproducible (and, for tiny models, faster) CPU work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `torch.set_num_threads(n)`, restoring the previous value after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cpu_threads(n: int, device: torch.device | str) -> contextlib.AbstractContextManager[None]:
    """`torch_threads(n)` when the work runs on a CPU `device` and n > 0; otherwise change nothing.

    The one place that decides whether to pin: GPU work does not use intra-op CPU threads,
    and n = 0 means "torch's default".
    """
    if torch.device(device).type == "cpu" and n > 0:
        return torch_threads(n)
    return contextlib.nullcontext()

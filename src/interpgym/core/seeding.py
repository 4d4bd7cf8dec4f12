"""Seeding. Everything random in interpgym takes an explicit seed or generator."""

from __future__ import annotations

import functools

import numpy as np
import torch

# Multiplier that separates the streams derived from neighbouring seeds (a prime).
_STREAM_STRIDE = 1_000_003
_MT_WORDS, _MT_STATE_OFFSET = 624, 24  # torch's CPU generator state: 24-byte header, then 624 uint64 words


@functools.cache
def _check_torch_state_layout() -> None:
    """Fail loudly if torch's CPU generator state is not the layout `generator` writes wide seeds into."""
    state = torch.Generator().manual_seed(5).get_state().numpy()
    header = np.frombuffer(state[:24].tobytes(), dtype="<u8")
    first_word = np.frombuffer(state[_MT_STATE_OFFSET:_MT_STATE_OFFSET + 8].tobytes(), dtype="<u8")[0]
    if state.size != 5056 or header[0] != 5 or header[1] != (1 | 1 << 32) or first_word != 5:
        raise RuntimeError("torch's CPU generator state layout changed; wide (>64-bit) seeds are unsupported")


def _wide_mt_state(seed: int) -> torch.Tensor:
    """A full mt19937 state (19968 bits) expanded from all bits of `seed` by numpy's SeedSequence (256-bit pool)."""
    _check_torch_state_layout()
    words = np.random.SeedSequence(seed, pool_size=8).generate_state(_MT_WORDS, np.uint32).astype("<u8")
    state = torch.Generator().manual_seed(seed & (2**64 - 1)).get_state().numpy().copy()
    state[_MT_STATE_OFFSET:_MT_STATE_OFFSET + 8 * _MT_WORDS] = np.frombuffer(words.tobytes(), dtype=np.uint8)
    state[8:24] = np.frombuffer(np.array([1, 1, 0, 0], dtype="<i4").tobytes(), dtype=np.uint8)  # left, seeded, next
    return torch.from_numpy(state)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on `device` seeded with `seed` (no global state touched).

    Seeds in [0, 2**64) behave exactly like `manual_seed`. Wider seeds (private seeds
    derived from the harness secret have 256 bits) set the whole mt19937 state from every
    bit of the seed, so the stream cannot be found by searching a 64-bit space; they are
    CPU-only.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int (got {seed!r})")
    if seed < 2**64:
        return torch.Generator(device=device).manual_seed(seed)
    if torch.device(device).type != "cpu":
        raise ValueError("seeds wider than 64 bits are supported on CPU generators only")
    gen = torch.Generator()
    gen.set_state(_wide_mt_state(seed))
    return gen


def numpy_random_state(seed: int) -> int | np.random.RandomState:
    """What to pass as scikit-learn's `random_state` for `seed`: the int itself below 2**32 (unchanged
    behaviour), else a RandomState whose MT19937 state comes from every bit of `seed`."""
    if seed < 2**32:
        return seed
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence(seed, pool_size=8)))


def derived_seed(seed: int, stream: int) -> int:
    """The seed of sub-stream `stream` (an epoch, a split) of a run seeded with `seed`.

    `seed * 1_000_003 + stream`: distinct for every (seed, stream) with
    0 <= stream < 1_000_003, and a pure function, so the same run gets the same numbers.
    """
    return seed * _STREAM_STRIDE + stream

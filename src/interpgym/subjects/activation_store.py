"""On-disk arrays for activation stores: written chunk by chunk, read back memory-mapped.

A store is a cache entry (`interpgym.core.cache.get_or_build`): its `.npy` files are
written inside the builder's temporary directory and published by one atomic rename,
with sizes and sha256 in the entry's manifest, so a partial or corrupted store is
detected and rebuilt. Reading maps the file copy-on-write: nothing is loaded until
touched, and writes through the returned tensor never reach the disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import Tensor


class ChunkedArrayWriter:
    """Fills a preallocated `.npy` file of shape (rows, *tail) in row order, one chunk at a time.

    Memory use is one chunk; `close()` checks that exactly `rows` rows were written.
    """

    def __init__(self, path: Path, rows: int, tail: tuple[int, ...], dtype: np.dtype | str) -> None:
        self.path = path
        self.rows = rows
        self._array = open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(rows, *tail))
        self._filled = 0

    def append(self, chunk: Tensor | np.ndarray) -> None:
        """Write the next `len(chunk)` rows."""
        values = chunk.detach().cpu().numpy() if isinstance(chunk, Tensor) else np.asarray(chunk)
        end = self._filled + len(values)
        if end > self.rows:
            raise ValueError(f"{self.path.name}: {end} rows written into an array of {self.rows}")
        self._array[self._filled : end] = values
        self._filled = end

    def close(self) -> None:
        """Flush to disk; raise if fewer rows than promised were written."""
        if self._filled != self.rows:
            raise ValueError(f"{self.path.name}: {self._filled} of {self.rows} rows written")
        self._array.flush()
        del self._array


def write_array(path: Path, values: Tensor | np.ndarray) -> None:
    """Write a whole array as `.npy` (for small per-store arrays)."""
    values = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    np.save(path, values, allow_pickle=False)


def read_array(path: Path) -> Tensor:
    """A `.npy` file as a CPU tensor backed by a copy-on-write memory map (no pickle, lazy)."""
    return torch.from_numpy(np.load(path, mmap_mode="c", allow_pickle=False))

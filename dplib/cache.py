"""One memory-mapped array computed once and read many times (by every epoch, and by reruns):
decoded training pairs (Benchmark 2) and a loss network's target features (Benchmark 4).

    cache = ArrayCache(path, shape=(N, 3, 288, 288), dtype=np.uint8, fill=lambda start, stop: ...)
    cache.array[i]                           # a read-only np.memmap

fill(start, stop) returns the rows start..stop as an array; rows are filled `batch` at a
time into a temporary file that is renamed into place only when complete, so a run killed
while filling computes the cache again, and a cache of the wrong size is never read.
"""

import math
from pathlib import Path

import numpy as np
from .progress import tqdm


class ArrayCache:
    def __init__(self, path, shape, dtype, fill, batch=256, description="cache", progress=True):
        path = Path(path)
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        expected = math.prod(self.shape) * self.dtype.itemsize
        if not path.is_file() or path.stat().st_size != expected:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".tmp")
            array = np.memmap(temporary, dtype=self.dtype, mode="w+", shape=self.shape)
            for start in tqdm(range(0, self.shape[0], batch), desc=description, leave=False, disable=not progress):
                stop = min(start + batch, self.shape[0])
                array[start:stop] = fill(start, stop)
            array.flush()
            del array
            temporary.replace(path)
        self.path = path
        self.array = np.memmap(path, dtype=self.dtype, mode="r", shape=self.shape)

    def __len__(self):
        return self.shape[0]

    def remove(self):
        """Delete the file (a run that is complete needs it no more); the array is closed first."""
        self.array = None
        self.path.unlink(missing_ok=True)


def size_gb(shape, dtype):
    return math.prod(shape) * np.dtype(dtype).itemsize / 1e9

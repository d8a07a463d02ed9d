"""Keep freed memory in the process: a settlement allocates the same large arrays again and again.

glibc hands blocks above its mmap threshold back to the kernel when they are freed and
trims the heap's top above its trim threshold, so the next array of the same size is
faulted in page by page again (zeroed by the kernel). A partition task allocates
hundreds of arrays of a few MB: under Dask, whose nanny starts workers with
``MALLOC_TRIM_THRESHOLD_=65536``, a third of a task's CPU went to those page faults
(docs/ARCHITECTURE.md, "Rooms"). Raising both thresholds keeps the
freed blocks for reuse; the peak memory stays the partition's (measured: 629 → 657 MB
for the region-year's largest partition).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

#: mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: blocks up to this size come from the heap and are reused (glibc's largest dynamic mmap threshold on 64-bit)
MMAP_THRESHOLD = 32 << 20
#: the heap's free top is given back above this
TRIM_THRESHOLD = 1 << 30


@cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds in this process (once); False where the C library has no ``mallopt``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): their allocators behave differently; nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))

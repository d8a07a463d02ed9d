"""The allocator tuning a partition worker applies (ersattning/allocator.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# Allocates and frees arrays of a few MB, as a settlement does, and counts the page faults of the second round.
SCRIPT = """
import sys, resource
import numpy as np
from ersattning.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
total = 0
for _ in range(20):
    a, b = np.ones(2 << 20), np.ones(1 << 20)
    del a, b
    before = faults()
    c, d = np.ones(2 << 20), np.ones(3 << 19)
    total += faults() - before
    del c, d
print(total)
"""


def _faults(mode: str) -> int:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}  # what Dask's nanny starts its workers with
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_freed_arrays_are_reused_instead_of_faulted_in_again() -> None:
    untuned, tuned = _faults("default"), _faults("keep")
    # 20 rounds of 24 MB: untuned, glibc gives the blocks back and faults them in again (~20,000 faults in all,
    # measured); tuned, the freed blocks are reused (~500 faults in all, the first round's)
    assert untuned > 5_000
    assert tuned * 5 < untuned, (tuned, untuned)

"""What the compare and report benchmarks share: timing, and the 12-month region they run on."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ersattning import projection
from ersattning.store import Store, open_store
from ersattning.synth import RegionSpec, synthesize


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def region_store(store_url: str | None, workdir: str, recipients: int) -> tuple[str, Store]:
    """The store to measure on: the given one, or a synthetic 12-month region kept in ``workdir`` (written once); projection warmed."""
    url = store_url or f"sqlite:///{Path(workdir) / f'region-{recipients}.db'}"
    Path(workdir).mkdir(parents=True, exist_ok=True)
    store = open_store(url)
    if store.position() == 0:
        t = time.perf_counter()
        synthesize(store, RegionSpec(recipients=recipients, months=12, start="2024-01", seed=1))
        store.checkpoint()
        print(f"wrote the region in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    projection.update(store)
    print(f"projection up to date in {time.perf_counter() - t:.1f} s (position {store.position():,})", flush=True)
    return url, store

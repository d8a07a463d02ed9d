"""Reading the notification log for the projection: in this process, or in ranges on every core.

The single-process read decodes page after page (:func:`read_decoded`). A
rebuild of a big store (the first load without a cache, or ``rebuild=True``)
splits the log into ranges of notification ids; worker processes each open the
store by its URL, read and decode their range and write its visit events as the
cache's per-event part files (Parquet, named by the range: the cache keeps them
anyway, for as-of loads), returning only the part names and the few entity
events. The parent reads the parts back in notification order and folds them
once, as the single process folds its pages, so the projection is the same
(tests/test_parallel_rebuild.py; docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ersattning.files import make_private_dir, write_atomic
from ersattning.projection.decode import ProjectionError, VisitEvents, decode_entities, decode_visits, unknown_topics
from ersattning.store import Store, open_store
from ersattning.workers import main_not_reimported

#: below this many events one process is faster than starting workers (measured: benchmarks/bench_store.py)
PARALLEL_MIN_EVENTS = 500_000
PAGE_SIZE = 250_000
#: how part files are written (lz4 besides): plain encodings, no statistics (2M rows' parts: 0.7 s of CPU against
#: 1.9 s with dictionaries, read as fast, ~40 % bigger on disk; measured for the import's feed, docs/ARCHITECTURE.md)
PART_OPTIONS: dict[str, bool] = {"use_dictionary": False, "write_statistics": False}


def write_part(table: pa.Table, path: Path) -> None:
    """One part file. Columns already dictionary-coded (an import's feed) are written as such, with one
    dictionary per column rather than one per chunk, so the writer takes the codes as they are: 2.3× faster
    than as plain text and half the size (600,000 rows 0.136 s → 0.076 s, 38 → 21 MB), read back coded."""
    options: dict[str, Any] = dict(PART_OPTIONS)
    coded = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    if coded:
        table, options["use_dictionary"] = table.unify_dictionaries(), coded
    pq.write_table(table, path, compression="lz4", **options)


def read_decoded(store: Store, after: int, page_size: int = PAGE_SIZE, stop: int | None = None) -> tuple[VisitEvents, list[pd.DataFrame], int]:
    """The notifications after ``after`` (up to ``stop``) decoded; the last id read (``after`` when none)."""
    visits, entities = VisitEvents(), []
    position = after
    for page in store.read_pages(after, page_size, stop):
        unknown = unknown_topics(page)
        if unknown:
            raise ProjectionError(f"the store holds events this version cannot read: {', '.join(sorted(unknown))}")
        visits.extend(decode_visits(page))
        e = decode_entities(page)
        if e is not None:
            entities.append(e)
        position = int(page.notification_id[-1])
    return visits, entities, position


def workers_for(store: Store, events: int) -> int:
    """How many processes rebuild ``events`` events of ``store``: all cores for a big store kept outside this
    process (one for a memory store, a store without a cache directory, or a small one)."""
    if store.location.scheme == "memory" or store.projection_dir() is None or events < PARALLEL_MIN_EVENTS:
        return 1
    return os.cpu_count() or 1


def part_name(first: int, last: int, kind: int) -> str:
    """The cache's file of one visit event kind for notifications ``first`` … ``last``."""
    return f"part-{first:015d}-{last:015d}-{kind}.parquet"


def read_parallel(
    store: Store, parts: Path, position: int, workers: int, *, ranges: int | None = None, executor: Executor | None = None
) -> tuple[VisitEvents, list[pd.DataFrame], list[str]]:
    """Notifications 1 … ``position`` read and decoded by ``workers`` processes in ``ranges`` ranges (twice the
    workers by default, so that a slow range does not leave a core idle); the visit events' part files are left
    in ``parts`` (their names come last). The result is in notification order, as :func:`read_decoded` gives it."""
    make_private_dir(parts)
    bounds = np.unique(np.linspace(0, position, (ranges or 2 * workers) + 1).round().astype(np.int64))
    pool = executor or ProcessPoolExecutor(workers, mp_context=worker_context())
    try:
        with main_not_reimported():  # the workers start as the ranges are submitted
            futures = [pool.submit(decode_range, store.location.url, int(a), int(b), str(parts)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        results = [f.result() for f in futures]
    except BrokenProcessPool:
        # workers that could not start or were killed: this process reads it all, as for a small store
        visits, entities, _ = read_decoded(store, 0, stop=position)
        shutil.rmtree(parts)  # the workers' parts that were written, and the new ones for all of it
        make_private_dir(parts)
        for kind, table in visits.kinds.items():
            write_atomic(parts / part_name(1, position, kind), partial(write_part, table))
        return visits, entities, [part_name(1, position, kind) for kind in visits.kinds]
    finally:
        if executor is None:
            pool.shutdown(cancel_futures=True)
    visits, entities = VisitEvents(), []
    for names, range_entities in results:
        visits.extend(VisitEvents({kind: pq.read_table(parts / name) for kind, name in names.items()}))
        entities.extend(range_entities)
    return visits, entities, [name for names, _ in results for name in names.values()]


def decode_range(url: str, after: int, stop: int, parts: str) -> tuple[dict[int, str], list[pd.DataFrame]]:
    """In a worker: notifications ``after`` < id <= ``stop`` of the store at ``url``; the visit events go to part
    files in ``parts`` (their names by kind), the entity events come back."""
    store = open_store(url, create=False)
    try:
        visits, entities, _ = read_decoded(store, after, stop=stop)
    finally:
        store.close()
    names = {kind: part_name(after + 1, stop, kind) for kind in visits.kinds}
    for kind, table in visits.kinds.items():
        write_atomic(Path(parts) / names[kind], partial(write_part, table))
    return names, entities


def worker_context() -> BaseContext:
    """Fresh workers (no copy of the caller's threads and connections): a fork server that has this module
    imported already, where there is one; else spawned interpreters."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")

"""The import's events into the projection: each committed batch folded into the cache beside the import.

The writer tells each committed batch's first notification id (its rows' ids
follow in insert order). A visits import's batch is not decoded: the importer
still holds the columns it encoded (``EventBatch.sources``), and
:func:`~ersattning.projection.decode.batch_visits` turns them into the tables
``decode_visits`` would read from the store (tested equal, batch by batch), at a
quarter of the decoder's CPU. Any other batch is decoded from its states. A
thread folds the batches ``FOLD_EVENTS`` at a time and writes their part files;
``cache.RangeFold`` folds the ranges in notification order with any other
writer's events between them read from the store, and saves with the position.
A kill before that save leaves the old cache, whose next load folds the gap from
the store (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ersattning.projection.cache import DecodedRange, RangeFold, cache_for
from ersattning.projection.decode import (
    VISIT_CLASSES,
    ProjectionError,
    VisitEvents,
    batch_visits,
    decode_entities,
    decode_visits,
    unknown_topics,
)
from ersattning.store import RawPage, Store
from ersattning.store.bulk import EventBatch

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]  # EventBatch.in_order()
Kept = Columns | EventBatch  # a batch as the feed keeps it: its rows in insert order, or its source columns
#: committed batches are folded this many events at a time: each fold step copies the state and indexes it,
#: so 2M events folded batch by batch took 2.6 s of CPU, in 500k-event groups 1.24 s and at once 1.08 s
#: (measured); memory holds at most about this many plus a batch besides the fold
FOLD_EVENTS = 500_000


class _Unknown(Exception):
    """A batch holds events the projection does not know: the feed stops."""


def decode_batch(columns: Columns, first: int) -> DecodedRange:
    """A committed batch (``EventBatch.in_order()``) whose first row got notification id ``first``, decoded
    as the same rows read from the store would be."""
    ids, versions, topics, states = columns
    n = len(states)
    page = RawPage(notification_id=np.arange(first, first + n, dtype=np.int64), originator_id=ids, originator_version=versions, topic=topics, state=states)
    if unknown_topics(page):
        raise _Unknown
    return DecodedRange(first, first + n - 1, decode_visits(page), decode_entities(page))


def _rows(kept: Kept) -> int:
    return sum(map(len, kept.originator_id)) if isinstance(kept, EventBatch) else len(kept[0])


def _range(kept: Kept, first: int) -> DecodedRange:
    """A batch this process kept, as the store's log would give it."""
    if isinstance(kept, EventBatch):
        visits = batch_visits(kept, first)
        if visits is None:
            raise _Unknown
        return DecodedRange(first, first + _rows(kept) - 1, visits, None)
    return decode_batch(kept, first)


def _joined(ranges: list[DecodedRange]) -> DecodedRange:
    """Consecutive ranges of visit events as one."""
    visits = VisitEvents()
    for r in ranges:
        visits.extend(r.visits)
    return DecodedRange(ranges[0].first, ranges[-1].last, visits, None)


class ImportFeed:
    """Follows a bulk writer: :meth:`submitted` before each batch is handed over, :meth:`committed` with the
    writer's ``first_ids`` after, :meth:`finish` once the writer is closed, :meth:`close` if the import fails.

    A batch that fails is never folded; a batch whose ids are unknown (a backend that cannot tell) or that the
    projection cannot fold stops the feed, and the next load folds the import from the store as before. At most
    one job waits for the thread, so memory holds the fold and a few batches' columns, not the import.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fold = RangeFold(store.store_id, cache_for(store))
        self._waiting: deque[Kept] = deque()
        self._kept: list[tuple[Kept, int]] = []  # committed batches not yet handed to the thread
        self._folding: deque[Future[None]] = deque()
        self._seen = 0
        self._pool: ThreadPoolExecutor | None = None
        self.following = True

    def submitted(self, batch: EventBatch) -> None:
        if not self.following:
            return
        # a visits import's batch keeps its source columns (its states live in memory the next batch reuses)
        visits_only = all(cls in VISIT_CLASSES for cls, _ in batch.sources)
        self._waiting.append(batch.sourced() if visits_only else batch.in_order())

    def committed(self, first_ids: Sequence[int | None]) -> None:
        new, self._seen = first_ids[self._seen :], len(first_ids)
        for first in new:
            if not self.following:
                return
            kept = self._waiting.popleft()
            if first is None:
                self._stop()
                return
            self._kept.append((kept, first))
            if sum(_rows(k) for k, _ in self._kept) >= FOLD_EVENTS:
                self._submit(self._fold_kept, self._kept)
                self._kept = []

    def _submit(self, job: Callable[..., None], *args: Any) -> None:
        if not self.following:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ersattning-feed")
        self._folding.append(self._pool.submit(job, *args))
        while len(self._folding) > 1 and self.following:
            self._wait(self._folding.popleft())

    def _fold_kept(self, kept: list[tuple[Kept, int]]) -> None:
        """Fold the kept batches, consecutive ones of visit events at once."""
        group: list[DecodedRange] = []
        for columns, first in kept:
            r = _range(columns, first)
            if group and (r.entities is not None or r.first != group[-1].last + 1):
                self._fold.add(_joined(group))
                group = []
            if r.entities is None:
                group.append(r)
            else:
                self._fold.add(r)
        if group:
            self._fold.add(_joined(group))

    def _wait(self, folding: Future[None]) -> None:
        try:
            folding.result()
        except (_Unknown, ProjectionError):
            self._stop()

    def _stop(self) -> None:
        self.following = False
        self._waiting.clear()
        self._kept = []
        self.close()

    def finish(self) -> None:
        """Save the fold of the committed batches in the projection cache (nothing when the feed stopped)."""
        try:
            if self._kept and self.following:
                self._submit(self._fold_kept, self._kept)
                self._kept = []
            while self._folding and self.following:
                self._wait(self._folding.popleft())
            if self.following:
                self._fold.save(self.store)
        except ProjectionError:
            pass  # the store holds what the projection cannot fold: the next load says so, as it always has
        finally:
            self.close()

    def close(self) -> None:
        """Stop the thread (after the batch it is on); nothing it folded is saved unless :meth:`finish` was."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self._folding.clear()

"""The import's events into the projection: each committed batch decoded in memory and folded as it comes.

The importer already holds every batch it hands to the store's writer; the
writer tells each committed batch's first notification id (its rows' ids follow
in insert order). Each batch becomes an in-memory page of the log and is decoded
by the same ``decode_visits``/``decode_entities`` a rebuild uses, so the saved
fold equals a rebuild by construction. The batches are decoded and folded into
the loaded cache on a thread beside the import (``cache.RangeFold``, which also
writes their part files); at the end of the import the fold is saved with any
other writer's events between the batches read from the store. A kill before
that save leaves the old cache, whose next load folds the gap from the store
(see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ersattning.projection.cache import DecodedRange, RangeFold, cache_for
from ersattning.projection.decode import ProjectionError, decode_entities, decode_visits, unknown_topics
from ersattning.store import RawPage, Store
from ersattning.store.bulk import EventBatch

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]  # EventBatch.in_order()


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


class ImportFeed:
    """Follows a bulk writer: :meth:`submitted` before each batch is handed over, :meth:`committed` with the
    writer's ``first_ids`` after, :meth:`finish` once the writer is closed, :meth:`close` if the import fails.

    A batch that fails is never folded; a batch whose ids are unknown (a backend that cannot tell) or that
    the projection cannot fold stops the feed, and the next load folds the import from the store as before.
    At most one batch waits for the thread (Arrow's JSON parser lets go of the interpreter lock), so memory
    holds the fold and a few batches, not the import.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fold = RangeFold(store.store_id, cache_for(store))
        self._waiting: deque[Columns] = deque()
        self._folding: deque[Future[None]] = deque()
        self._seen = 0
        self._pool: ThreadPoolExecutor | None = None
        self.following = True

    def submitted(self, batch: EventBatch) -> None:
        if self.following:
            self._waiting.append(batch.in_order())

    def committed(self, first_ids: Sequence[int | None]) -> None:
        new, self._seen = first_ids[self._seen :], len(first_ids)
        for first in new:
            if not self.following:
                return
            columns = self._waiting.popleft()
            if first is None:
                self._stop()
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="ersattning-feed")
            self._folding.append(self._pool.submit(self._fold_batch, columns, first))
            while len(self._folding) > 1 and self.following:
                self._wait(self._folding.popleft())

    def _fold_batch(self, columns: Columns, first: int) -> None:
        self._fold.add(decode_batch(columns, first))

    def _wait(self, folding: Future[None]) -> None:
        try:
            folding.result()
        except (_Unknown, ProjectionError):
            self._stop()

    def _stop(self) -> None:
        self.following = False
        self._waiting.clear()
        self.close()

    def finish(self) -> None:
        """Save the fold of the committed batches in the projection cache (nothing when the feed stopped)."""
        try:
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

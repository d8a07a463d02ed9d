"""The import's events into the projection: each committed batch decoded in memory, folded at the end.

The importer already holds every batch it hands to the store's writer; the
writer tells each committed batch's first notification id (its rows' ids follow
in insert order). Each batch becomes an in-memory page of the log and is decoded
by the same ``decode_visits``/``decode_entities`` a rebuild uses, so the saved
fold equals a rebuild by construction. At the end of the import the decoded
batches are folded into the cache with any other writer's events between them
(``cache.fold_ranges``); a kill before that save leaves the old cache, whose
next load folds the gap from the store (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ersattning.projection.cache import DecodedRange, fold_ranges
from ersattning.projection.decode import ProjectionError, decode_entities, decode_visits, unknown_topics
from ersattning.store import RawPage, Store
from ersattning.store.bulk import EventBatch

Columns = tuple[list[str], list[int], list[str], list[bytes]]


def decode_batch(columns: Columns, first: int) -> DecodedRange | None:
    """A committed batch (``EventBatch.columns()``, in insert order) whose first row got notification id
    ``first``, decoded; None when it holds events the projection does not know."""
    ids, versions, topics, states = columns
    n = len(states)
    page = RawPage(
        notification_id=np.arange(first, first + n, dtype=np.int64),
        originator_id=np.array(ids, dtype="S32"),
        originator_version=np.array(versions, dtype=np.int64),
        topic=np.array(topics, dtype=object),
        state=states,
    )
    if unknown_topics(page):
        return None
    return DecodedRange(first, first + n - 1, decode_visits(page), decode_entities(page))


class ImportFeed:
    """Follows a bulk writer: :meth:`submitted` before each batch is handed over, :meth:`committed` with the
    writer's ``first_ids`` after, :meth:`finish` once the writer is closed (:meth:`close` in any case).

    A batch that fails is never decoded into the cache; a batch whose ids are unknown (a backend that cannot
    tell) stops the feed, and the next load folds the import from the store as before. Batches are decoded on
    a thread, beside the import's own work (Arrow's JSON parser lets go of the interpreter lock); at most two
    wait for it, so memory stays at a few batches.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: deque[Columns] = deque()
        self._decoding: list[Future[DecodedRange | None]] = []
        self._ranges: list[DecodedRange] = []
        self._seen = 0
        self._pool: ThreadPoolExecutor | None = None
        self.following = True

    def submitted(self, batch: EventBatch) -> None:
        if self.following:
            self._waiting.append(batch.columns())

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
            self._decoding.append(self._pool.submit(decode_batch, columns, first))
            while len(self._decoding) > 2:
                self._collect(self._decoding.pop(0))

    def _collect(self, decoding: Future[DecodedRange | None]) -> None:
        decoded = decoding.result()
        if decoded is None:
            self._stop()
        elif self.following:
            self._ranges.append(decoded)

    def _stop(self) -> None:
        self.following = False
        self._waiting.clear()
        self._ranges.clear()
        for decoding in self._decoding:
            decoding.cancel()
        self._decoding.clear()

    def finish(self) -> None:
        """Fold the committed batches into the projection cache and save it (nothing when the feed stopped)."""
        try:
            while self._decoding and self.following:
                self._collect(self._decoding.pop(0))
            if not self.following or not self._ranges:
                return
            ranges, self._ranges = self._ranges, []
            try:
                fold_ranges(self.store, ranges)
            except ProjectionError:
                pass  # the store holds what the projection cannot fold: the next load says so, as it always has
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the decoding thread (an import that failed leaves its decoded batches unused)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

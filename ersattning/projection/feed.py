"""The import's events into the projection: each committed batch decoded and folded into the cache.

The writer tells each committed batch's first notification id (its rows' ids
follow in insert order). Each batch becomes a page of the log and is decoded by
the same ``decode_visits`` a rebuild uses, so the saved fold equals a rebuild by
construction. Where the store's writer is a child process (SQLite), the child
decodes each batch it has committed, still in the shared memory it wrote it
from, and writes its part files (:func:`write_committed`, the writer's
``after_commit`` hook): the importer's own core, the import's bottleneck, only
parses and encodes, and a thread reads the parts back and folds them into the
loaded cache. Elsewhere (PostgreSQL, memory, the writer thread) the
importer keeps each batch and decodes and folds it on a thread beside the import.
Either way ``cache.RangeFold`` folds the ranges in notification order with any
other writer's events between them read from the store, and saves with the
position; a kill before that save leaves the old cache, whose next load folds
the gap from the store (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ersattning.projection.cache import DecodedRange, ProjectionCache, RangeFold, cache_for, update
from ersattning.projection.decode import (
    ENTITY_EVENTS,
    ProjectionError,
    VisitEvents,
    decode_entities,
    decode_visits,
    unknown_topics,
)
from ersattning.store import RawPage, Store
from ersattning.store.bulk import EventBatch
from ersattning.store.encoding import compact_topic, event_schema
from ersattning.store.sqlite_writer import CommittedBatch
from ersattning.store.writer import BulkWriter

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]  # EventBatch.in_order()
HOOK = f"{__name__}:write_committed"
#: the writer's batches are read back and folded this many events at a time: each fold step copies the state
#: and indexes it, so 2M events folded batch by batch took 2.6 s of CPU, in 500k-event groups 1.24 s and
#: at once 1.08 s (measured); memory holds at most about this many plus a batch besides the fold
FOLD_EVENTS = 500_000
_ENTITY_TOPICS = frozenset(t for c in ENTITY_EVENTS for t in (event_schema(c).topic, compact_topic(c)) if t is not None)


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


def write_committed(batch: CommittedBatch, argument: str) -> str:
    """In the store's writer process (its ``after_commit`` hook): decode a committed batch and write its part
    files into the cache named by ``argument`` (``{"dir": …, "position": …}``), unless that cache was saved
    since the import began (its parts may be gone; the import then folds from the store). The answer:
    ``LAST:NAME,NAME`` (the batch's last notification id and its part files), or ``LAST:-`` when not written
    (events the projection does not know, entity events, a cache that moved): the importer then reads the
    batch from the store at its save."""
    where = json.loads(argument)
    last = batch.first + batch.n - 1
    if _ENTITY_TOPICS.intersection(batch.topics):
        return f"{last}:-"  # not from a visits import: entity events are few, read from the store at the save
    topics = np.array(batch.topics, dtype=object)
    page = RawPage(
        notification_id=np.arange(batch.first, last + 1, dtype=np.int64),
        originator_id=np.frombuffer(batch.ids, dtype="S32"),
        originator_version=np.frombuffer(batch.versions, dtype=np.int64),
        topic=topics[np.frombuffer(batch.codes, dtype=np.uint8)],
        state=batch.states,  # type: ignore[arg-type]  # views of the shared memory: the decoder joins them
    )
    if unknown_topics(page):
        return f"{last}:-"
    visits = decode_visits(page)
    cache = ProjectionCache(Path(where["dir"]))
    with cache.lock():
        if cache.meta_position() != where["position"]:
            return f"{last}:-"
        names = cache.write_parts(batch.first, last, visits)
    return f"{last}:{','.join(names)}"


def _parsed(answer: str) -> tuple[int, list[str] | None]:
    """The writer's answer: the batch's last notification id (0 when it does not say) and its part files
    (None when it wrote none)."""
    last, colon, names = answer.partition(":")
    if not colon or not last.isdigit():
        return 0, None
    return int(last), None if names == "-" else [name for name in names.split(",") if name]


def _written_range(parts: Path, first: int | None, answer: str) -> DecodedRange | None:
    """The batch the writer answered for, read back from its part files (None: read it from the store)."""
    last, names = _parsed(answer)
    if first is None or names is None:
        return None
    kinds = {int(name.rsplit("-", 1)[1].split(".")[0]): name for name in names}
    try:
        visits = VisitEvents({kind: pq.read_table(parts / name) for kind, name in kinds.items()})
    except (OSError, pa.ArrowException):  # removed meanwhile (another process's load cleaned them): the store has it
        return None
    return DecodedRange(first, last, visits, None, names)


def _joined(ranges: list[DecodedRange]) -> DecodedRange:
    """Consecutive ranges as one."""
    visits = VisitEvents()
    for r in ranges:
        visits.extend(r.visits)
    return DecodedRange(ranges[0].first, ranges[-1].last, visits, None, [name for r in ranges for name in r.parts or []])


def _span(first: int | None, answer: str) -> int:
    """How many events the writer's answer covers with part files."""
    last, names = _parsed(answer)
    return last - first + 1 if first is not None and names is not None else 0


class ImportFeed:
    """Follows a bulk writer: :meth:`submitted` before each batch is handed over, :meth:`committed` with the
    writer's ``first_ids`` after, :meth:`finish` once the writer is closed, :meth:`close` if the import fails.

    A writer in a child process (``writer.runs_hooks``) decodes the batches it committed and writes their part
    files itself (:func:`write_committed`); a thread here reads them back and folds them, ``FOLD_EVENTS`` at a
    time. Otherwise the thread decodes and folds each batch
    this process kept. A batch that fails is never folded; one the writer could not decode is read from the
    store at the save; a batch whose ids are unknown (a backend that cannot tell) or that the projection cannot
    fold stops the feed, and the next load folds the import from the store as before. At most one job waits
    for the thread, so memory holds the fold and a few batches, not the import.
    """

    def __init__(self, store: Store, writer: BulkWriter | None = None) -> None:
        self.store = store
        self._fold = RangeFold(store.store_id, cache_for(store))
        self._waiting: deque[Columns] = deque()
        self._folding: deque[Future[None]] = deque()
        self._seen = 0
        self._pool: ThreadPoolExecutor | None = None
        self.following = True
        self._writer = writer
        self._asked = False
        self._start: int | None = None  # the saved cache's position when the writer began to write parts
        self._answered: list[tuple[int | None, str]] = []  # the writer's answers not yet handed to the thread
        self.in_writer = False  # the writer's process decodes the batches

    def submitted(self, batch: EventBatch) -> None:
        if not self._asked:
            self._asked = True
            self.in_writer = self._ask_writer()
        if self.following and not self.in_writer:
            self._waiting.append(batch.in_order())

    def _ask_writer(self) -> bool:
        cache = self._fold.cache
        if self._writer is None or not self._writer.runs_hooks or cache.dir is None or cache.read_only:
            return False
        with cache.lock():
            if not cache.holds(self.store.store_id):
                cache.clear()  # another store's or schema's files: gone before the writer's parts come
            self._start = cache.meta_position()
        return self._writer.after_commit(HOOK, json.dumps({"dir": str(cache.dir), "position": self._start}))

    def committed(self, first_ids: Sequence[int | None]) -> None:
        new, self._seen = first_ids[self._seen :], len(first_ids)
        if self.in_writer:
            assert self._writer is not None
            self._answered += zip(new, self._writer.answers[len(first_ids) - len(new) : len(first_ids)], strict=True)
            if sum(_span(first, answer) for first, answer in self._answered) >= FOLD_EVENTS:
                self._submit(self._fold_written, self._answered)
                self._answered = []
            return
        for first in new:
            if not self.following:
                return
            columns = self._waiting.popleft()
            if first is None:
                self._stop()
                return
            self._submit(self._fold_batch, columns, first)

    def _submit(self, job: Callable[..., None], *args: Any) -> None:
        if not self.following:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ersattning-feed")
        self._folding.append(self._pool.submit(job, *args))
        while len(self._folding) > 1 and self.following:
            self._wait(self._folding.popleft())

    def _fold_batch(self, columns: Columns, first: int) -> None:
        self._fold.add(decode_batch(columns, first))

    def _fold_written(self, answered: list[tuple[int | None, str]]) -> None:
        """Read back the part files of the batches the writer answered for and fold them, consecutive ones at once."""
        self._fold.begin()  # before any part is read: a cache that does not load is cleared, parts and all
        group: list[DecodedRange] = []
        for first, answer in answered:
            self._fold.through = max(self._fold.through, _parsed(answer)[0])
            r = _written_range(self._fold.cache.parts_dir(), first, answer)
            if group and (r is None or r.first != group[-1].last + 1):
                self._fold.add(_joined(group))
                group = []
            if r is not None:
                group.append(r)
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
        self.close()

    def finish(self) -> None:
        """Save the fold of the committed batches in the projection cache (nothing when the feed stopped)."""
        try:
            if self.in_writer and self.following:
                self._submit(self._fold_written, self._answered)
                self._answered = []
            while self._folding and self.following:
                self._wait(self._folding.popleft())
            if self.following:
                self._save()
        except ProjectionError:
            pass  # the store holds what the projection cannot fold: the next load says so, as it always has
        finally:
            self.close()

    def _save(self) -> None:
        cache = self._fold.cache
        with cache.lock():  # nobody saves between this check and the save
            if self.in_writer and cache.meta_position() != self._start:
                # another process saved meanwhile: the writer's parts may be gone, and it stopped writing them
                self._fold.held, self._fold.cached = [], None
                update(self.store)
                return
            self._fold.save(self.store)

    def close(self) -> None:
        """Stop the thread (after the batch it is on); nothing it folded is saved unless :meth:`finish` was."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self._folding.clear()

"""Bulk append: many events of one class encoded at once, without a Python call per event.

The library turns each event object into its stored state one at a time. For
large synthetic regions and imports the compact states of a whole column batch
are written at once (:mod:`ersattning.store.compact`): fixed-width fields with
numpy, strings and tuples encoded once per distinct value and joined in C. The
states are variable-length, so each part of a batch carries them as one byte
buffer and its offsets (:class:`States`; never a numpy ``S`` array, which would
drop trailing NUL bytes).

The result decodes with the library's own mapper into exactly the event the
aggregate's command method would have produced (tested in test_bulk.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from ersattning.store.compact import ColumnEncoder
from ersattning.store.encoding import ORIGINATOR_TOPIC, compact_topic, event_schema
from ersattning.uuids import uuid_hex


@dataclass
class States:
    """The stored states of one part of a batch: one byte buffer and ``n + 1`` offsets into it."""

    buffer: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return self.tolist()[i]
        if i < 0:
            i += len(self)
        return self.buffer[int(self.offsets[i]) : int(self.offsets[i + 1])].tobytes()

    def tolist(self) -> list[bytes]:
        data = self.buffer.tobytes()
        off = self.offsets.tolist()
        return [data[a:b] for a, b in zip(off[:-1], off[1:], strict=True)]

    @property
    def nbytes(self) -> int:
        return int(self.offsets[-1])


class EventEncoder:
    """Encodes columns of one event class into compact stored states (under its compact topic)."""

    def __init__(self, event_class: type) -> None:
        schema = event_schema(event_class)
        topic = compact_topic(event_class)
        if topic is None:
            raise TypeError(f"{event_class.__qualname__} has no compact topic (ersattning.store.encoding.COMPACT_CODES)")
        self.event_class = event_class
        self.topic = topic
        self.fields = schema.fields
        self.class_version = schema.class_version
        self._columns = ColumnEncoder(event_class)

    def encode(self, n: int, columns: Mapping[str, Any], arena: Arena | None = None) -> States:
        """The stored states of ``n`` events (in ``arena``'s memory when given).

        ``columns`` holds one array per event field; ``timestamp`` defaults to
        ``recorded_at`` (as the command methods do). Datetimes are UTC
        ``datetime64``; dates ``datetime64[D]`` (NaT for None).
        """
        data, offsets = self._columns.encode(n, self.fields_of(columns))
        if arena is None:
            return States(np.frombuffer(data, dtype=np.uint8), offsets)
        buffer = arena.take(len(data))
        buffer[:] = np.frombuffer(data, dtype=np.uint8)
        return States(buffer, offsets)

    def fields_of(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """``columns`` as one column per stored field: ``timestamp`` defaults to ``recorded_at``; a column that
        is not a field, or a field without a column, is an error."""
        cols = dict(columns)
        cols.setdefault("timestamp", cols.get("recorded_at"))
        cols.pop(ORIGINATOR_TOPIC, None)
        expected = {f.name for f in self.fields} - {ORIGINATOR_TOPIC}
        unknown = set(cols) - expected
        if unknown:
            raise ValueError(f"{self.event_class.__qualname__}: unknown columns {sorted(unknown)}")
        for name in expected:
            if cols.get(name) is None:
                raise ValueError(f"{self.event_class.__qualname__}: missing column {name!r}")
        return cols


class Arena:
    """Reusable memory for the encoded states of one batch at a time.

    A fresh 150 MB array costs more in page faults than filling it (measured
    ~0.4 s against ~8 ms on this kind of virtual machine), so a loop that hands
    each batch on before encoding the next (the import) encodes into the same
    memory again: :meth:`reset` before each batch; states taken earlier must be
    dead by then. A batch bigger than the buffer takes fresh memory for what
    does not fit, and the next batch gets a buffer of that size.
    """

    def __init__(self) -> None:
        self._buf = np.empty(0, dtype=np.uint8)
        self._used = 0
        self._wanted = 0  # bytes the current batch has asked for in all

    def reset(self) -> None:
        if self._wanted > len(self._buf):
            self._buf = np.empty(self._wanted + self._wanted // 8, dtype=np.uint8)
        self._used = self._wanted = 0

    def take(self, nbytes: int) -> np.ndarray:
        self._wanted += nbytes
        if self._used + nbytes > len(self._buf):
            if self._used:  # earlier rows of this batch live in the buffer: fresh memory for these
                return np.empty(nbytes, dtype=np.uint8)
            self._buf = np.empty(nbytes + nbytes // 4, dtype=np.uint8)  # room for this batch's smaller classes too
        out = self._buf[self._used : self._used + nbytes]
        self._used += nbytes
        return out


def random_uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` version-4 style UUIDs (n × 16 bytes) drawn from a seeded generator."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


@dataclass
class EventBatch:
    """Stored events ready for one append transaction, as columns."""

    originator_id: list[np.ndarray]  # S32 hex
    version: list[np.ndarray]
    topic: list[str]  # one per part: each ``add`` is one event class
    state: list[States]  # per part, the encoded states
    encode_seconds: float = 0.0  # time spent encoding, for benchmarks
    #: per part, its event class and the columns it was encoded from (kept by reference, not copied): the
    #: import's projection feed folds them without decoding the states (``projection.decode.batch_visits``)
    sources: list[tuple[type, Mapping[str, Any]]] = field(default_factory=list, repr=False, compare=False)
    _order: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls) -> EventBatch:
        return cls([], [], [], [])

    def add(self, encoder: EventEncoder, originator_id: np.ndarray, version: np.ndarray | int, columns: Mapping[str, Any], arena: Arena | None = None) -> None:
        n = len(originator_id)
        if n == 0:
            return
        self.originator_id.append(np.asarray(originator_id, dtype="S32"))
        self.version.append(np.broadcast_to(np.asarray(version, dtype=np.int64), (n,)))
        self.topic.append(encoder.topic)
        fields = encoder.fields_of(columns)
        self.sources.append((encoder.event_class, fields))
        self._order = None
        started = time.perf_counter()
        self.state.append(encoder.encode(n, fields, arena))
        self.encode_seconds += time.perf_counter() - started

    def __len__(self) -> int:
        return sum(len(s) for s in self.state)

    def sourced(self) -> EventBatch:
        """The batch without its encoded states (which live in the arena, reused by the next batch): its ids,
        versions, insert order and the columns it was encoded from, for :func:`projection.decode.batch_visits`."""
        ids_versions_order = self.ids_versions_order()
        return EventBatch(self.originator_id, self.version, self.topic, [], sources=self.sources, _order=ids_versions_order)

    def ids_versions_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All rows' ids (S32) and versions, parts one after another, and the order to insert them in.

        Rows go in ordered by (aggregate id, version): the primary-key index
        then grows by appends instead of random inserts (~25 % faster), and
        each aggregate's events keep their version order in the log. Worked
        out once per batch (the writer and the import's projection feed both ask).
        """
        if self._order is None:
            self._order = self._ids_versions_order()
        return self._order

    def _ids_versions_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids = np.ascontiguousarray(np.concatenate(self.originator_id))
        versions = np.ascontiguousarray(np.concatenate(self.version))
        # hex ids sort as their bytes do: four big-endian 64-bit words per id; the first word
        # almost always decides, the others are looked at only when two different ids share it
        words = ids.view(">u8").reshape(-1, 4)
        order = np.lexsort((versions, words[:, 0]))
        first = words[order, 0]
        tie = np.flatnonzero(first[1:] == first[:-1])
        if len(tie):
            # rows sharing a first word (a few in 200,000 by chance, or one aggregate's versions): each such run
            # sorted again by the whole id and version, in its place (the runs keep their first-word order)
            in_run = np.zeros(len(order), dtype=bool)
            in_run[tie] = in_run[tie + 1] = True
            at = np.flatnonzero(in_run)
            rows = order[at]
            order[at] = rows[np.lexsort((versions[rows], words[rows, 3], words[rows, 2], words[rows, 1], words[rows, 0]))]
        return ids, versions, order.astype(np.int64)

    def in_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]:
        """Every row in insert order: ids (S32), versions (int64), topics (object) as arrays, states as bytes."""
        if not self.state:
            return np.empty(0, dtype="S32"), np.empty(0, dtype=np.int64), np.empty(0, dtype=object), []
        ids, versions, order = self.ids_versions_order()
        topics = np.repeat(np.array(self.topic, dtype=object), [len(s) for s in self.state])
        # each part's states become bytes, then the list is put in order (moving pointers, not the states)
        states = [x for part in self.state for x in part.tolist()]
        return ids[order], versions[order], topics[order], [states[i] for i in order.tolist()]

    def columns(self) -> tuple[list[str], list[int], list[str], list[bytes]]:
        """Python lists for the database driver (ids as text, states as bytes), in insert order."""
        ids, versions, topics, states = self.in_order()
        return ids.astype("U32").tolist(), versions.tolist(), topics.tolist(), states


_ENCODERS: dict[type, EventEncoder] = {}


def encoder_for(event_class: type) -> EventEncoder:
    enc = _ENCODERS.get(event_class)
    if enc is None:
        enc = _ENCODERS[event_class] = EventEncoder(event_class)
    return enc


def append_batch(store: Any, batch: EventBatch) -> int:
    """Append a batch in one transaction; returns the number of events."""
    ids, versions, topics, states = batch.columns()
    store.append(ids, versions, topics, states)
    return len(states)


__all__ = ["Arena", "EventBatch", "EventEncoder", "States", "append_batch", "encoder_for", "random_uuids", "uuid_hex"]

"""``ersattning store migrate``: rewrite a store's legacy JSON events compactly (docs/events.md, "Stored encoding").

Old stores are read as they are; migrating only makes them smaller and their
rebuild faster. An SQLite store is copied into ``PATH.migrating`` row by row,
keeping every notification id (rowid), the meta table and so the store id, with
the legacy events re-encoded as a new event would be written; the copy then
replaces the store in one ``os.replace``. A kill at any moment leaves the old
store intact and usable; a leftover ``.migrating`` file is removed by the next
run. Events are re-encoded a class at a time (decoded into columns and encoded
again, the code the projection and the bulk encoder use) where that is exact,
else one at a time through the library's mapper. Nothing else may write to the
store meanwhile: the store's write lock is held while copying, and the
migration gives up if the store changed before the swap.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import numpy as np
import pyarrow as pa
from eventsourcing.persistence import StoredEvent

from ersattning.store.application import CompactMapper
from ersattning.store.base import Store, StoreError
from ersattning.store.compact import decode_json_columns, encode_columns, encoder_columns, layout
from ersattning.store.encoding import CLASS_VERSION, COMPACT_TOPICS, compact_topic, event_schema
from ersattning.store.sqlite import create_private

#: The long topics whose events get a compact state, and their classes.
_CLASSES = {event_schema(c).topic: c for c in COMPACT_TOPICS}
LEGACY_TOPICS = frozenset(_CLASSES)
#: A time with a fraction of a second in a JSON state (or, rarely, text that looks like one: then one at a time).
_FRACTION = re.compile(rb"\d:\d\d\.\d")
ROWS_PER_STEP = 50_000
SUFFIX = ".migrating"


@dataclass
class MigrationReport:
    events: int  # all events in the store
    migrated: int  # legacy events rewritten
    seconds: float
    bytes_before: int
    bytes_after: int


def migrate(store: Store, progress: Callable[[int, int], None] | None = None) -> MigrationReport:
    """Rewrite the legacy events of ``store`` compactly; closes ``store`` (reopen it afterwards).

    SQLite: a copy swapped in (see the module's docstring). PostgreSQL: one transaction under the
    library's table lock (the space the old rows took is given back by the server's ``VACUUM FULL``)."""
    mapper = store.app.mapper
    assert isinstance(mapper, CompactMapper)
    path = getattr(store, "path", None)
    if path is None:
        rewrite_events = getattr(store, "rewrite_events", None)  # PostgreSQL: one transaction
        if rewrite_events is None:
            raise StoreError(f"store migrate works on SQLite and PostgreSQL stores, not on {store.location.display_url}")
        started = time.perf_counter()
        total = sum(store.events_by_topic().values())
        migrated = rewrite_events(LEGACY_TOPICS, lambda t, s, i, v: _reencode(t, s, i, v, mapper, set(LEGACY_TOPICS)))
        store.close()
        return MigrationReport(total, migrated, time.perf_counter() - started, 0, 0)
    store.checkpoint()
    store.close()
    return _migrate_sqlite(Path(path), mapper, progress)


def _remove_leftover(tmp: Path) -> None:
    for p in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
        p.unlink(missing_ok=True)


def _migrate_sqlite(path: Path, mapper: CompactMapper, progress: Callable[[int, int], None] | None) -> MigrationReport:
    started = time.perf_counter()
    tmp = path.with_name(path.name + SUFFIX)
    _remove_leftover(tmp)
    bytes_before = path.stat().st_size
    src = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        topics = [str(t) for (t,) in src.execute("SELECT DISTINCT topic FROM stored_events")]
        legacy = sorted(set(topics) & LEGACY_TOPICS)
        total = int(src.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
        if not legacy:
            return MigrationReport(total, 0, time.perf_counter() - started, bytes_before, bytes_before)
        src.execute("BEGIN IMMEDIATE")  # no other writer while copying
        migrated = _copy(src, tmp, mapper, legacy, total, progress)
        last = src.execute("SELECT COUNT(*), MAX(rowid) FROM stored_events").fetchone()
        src.execute("COMMIT")
        src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if src.execute("SELECT COUNT(*), MAX(rowid) FROM stored_events").fetchone() != last:
            raise StoreError(f"{path} was written during the migration; nothing was changed: run `ersattning store migrate` again when nothing else uses it")
    except BaseException:
        src.close()
        _remove_leftover(tmp)
        raise
    src.close()
    # the old store's write-ahead log is empty (checkpointed): it must not be applied to the new file
    for s in ("-wal", "-shm"):
        side = path.with_name(path.name + s)
        if side.exists() and s == "-wal" and side.stat().st_size:
            _remove_leftover(tmp)
            raise StoreError(f"{path} is in use by another process; nothing was changed: run `ersattning store migrate` again when nothing else uses it")
        side.unlink(missing_ok=True)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return MigrationReport(total, migrated, time.perf_counter() - started, bytes_before, path.stat().st_size)


def _copy(src: sqlite3.Connection, tmp: Path, mapper: CompactMapper, legacy: list[str], total: int, progress: Callable[[int, int], None] | None) -> int:
    """The whole store into ``tmp``: its schema, every table, the events with the legacy ones re-encoded."""
    page_size = int(src.execute("PRAGMA page_size").fetchone()[0])
    create_private(tmp)  # the store's events: owner-only, as the store it replaces (docs/personal-data.md)
    dst = sqlite3.connect(tmp, isolation_level=None)
    try:
        dst.execute(f"PRAGMA page_size={page_size}")
        dst.execute("PRAGMA journal_mode=OFF")  # a crash leaves a file that is thrown away
        dst.execute("PRAGMA synchronous=OFF")
        dst.execute("PRAGMA cache_size=-262144")
        schema = src.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC").fetchall()
        dst.execute("BEGIN")
        for kind, _, sql in schema:
            if kind == "table":
                dst.execute(sql)
        for kind, name, _ in schema:
            if kind == "table" and name != "stored_events":  # the meta table (the store id), the library's others
                rows = src.execute(f'SELECT * FROM "{name}"').fetchall()
                if rows:
                    dst.executemany(f'INSERT INTO "{name}" VALUES ({",".join("?" * len(rows[0]))})', rows)
        legacy_set = set(legacy)
        migrated = done = 0
        after = -1
        while True:
            rows = src.execute(
                "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, ROWS_PER_STEP)
            ).fetchall()
            if not rows:
                break
            topics = [r[3] for r in rows]
            states = [r[4] for r in rows]
            migrated += _reencode(topics, states, [r[1] for r in rows], [r[2] for r in rows], mapper, legacy_set)
            out = [(r[0], r[1], r[2], t, st) for r, t, st in zip(rows, topics, states, strict=True)]
            dst.executemany("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) VALUES (?,?,?,?,?)", out)
            after = rows[-1][0]
            done += len(rows)
            if progress is not None:
                progress(done, total)
        for kind, _, sql in schema:
            if kind == "index":
                dst.execute(sql)
        dst.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=WAL")  # the store's mode (kept in the file)
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        dst.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return migrated


def _reencode(topics: list[str], states: list[bytes], ids: list[str], versions: list[int], mapper: CompactMapper, legacy: set[str]) -> int:
    """Replace the legacy events among ``topics``/``states`` by their compact topic and state; how many.

    Per class at once (the JSON parsed by Arrow, encoded by numpy) where that is exact: whole-second
    times (nothing like ``:SS.f`` in the state) and the current class version. The others (microseconds,
    an old class version to upcast) one at a time through the library's mapper.
    """
    at = np.array([t in legacy for t in topics], dtype=bool)
    if not at.any():
        return 0
    rows = np.flatnonzero(at)
    by_topic: dict[str, list[int]] = {}
    for i in rows.tolist():
        by_topic.setdefault(topics[i], []).append(i)
    for topic, idx in by_topic.items():
        cls = _CLASSES[topic]
        origin = event_schema(cls).originator_topic  # its dots are no fraction: left out of the look
        known = f'"originator_topic":"{origin}"'.encode() if origin else b"\0"
        fraction = [b"." in states[i].replace(known, b"") and _FRACTION.search(states[i]) is not None for i in idx]
        whole = [i for i, f in zip(idx, fraction, strict=True) if not f]
        slow = [i for i, f in zip(idx, fraction, strict=True) if f]
        if whole:
            table = decode_json_columns(cls, [states[i] for i in whole])
            current = np.asarray(table.column(CLASS_VERSION).to_numpy()) == layout(cls).class_version
            fast = [i for i, ok in zip(whole, current.tolist(), strict=True) if ok]
            slow += [i for i, ok in zip(whole, current.tolist(), strict=True) if not ok]
            if fast:
                table = table.filter(pa.array(current))
                buffer, offsets = encode_columns(cls, len(fast), encoder_columns(cls, table))
                ends = offsets.tolist()
                compact = compact_topic(cls)
                assert compact is not None
                for k, i in enumerate(fast):
                    topics[i], states[i] = compact, buffer[ends[k] : ends[k + 1]]
        for i in slow:
            new = mapper.to_stored_event(mapper.to_domain_event(StoredEvent(UUID(hex=ids[i]), versions[i], topics[i], states[i])))
            topics[i], states[i] = new.topic, new.state
    return len(rows)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

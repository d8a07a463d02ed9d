"""Opening a store by URL, and the two fast paths the library does not give us.

A store is an ``eventsourcing`` application recorder selected by URL:

- ``sqlite:///PATH`` — an SQLite file (relative paths are relative to the
  working directory; ``sqlite:////abs/path`` for an absolute one);
- ``memory://`` — the library's in-memory recorder, for tests;
- ``postgresql://user:password@host:port/dbname`` — the library's PostgreSQL
  recorder (needs ``psycopg``: ``pip install 'ersattning[postgres]'``).

Bulk appends write stored events in one transaction per batch into the
library's own table, so every event stays readable by the library (repository,
notification log) and the primary key (aggregate id, version) still refuses a
second writer of the same version: optimistic concurrency is kept.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import numpy as np
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent

from ersattning.store.application import ServiceHistory

if TYPE_CHECKING:
    from ersattning.store.writer import BulkWriter
from ersattning.store.sqlite_writer import BULK_PRAGMAS, CHECKPOINT_SQL, insert_rows

DEFAULT_STORE_URL = "sqlite:///ersattning.db"
STORE_ENV = "ERSATTNING_STORE"
SCHEMA_VERSION = "1"
SQLITE_MAGIC = b"SQLite format 3\x00"
META_TABLE = "ersattning_meta"


class StoreError(Exception):
    """A problem with a store that the user can fix; shown as one line."""


class AppendConflict(StoreError):
    """A batch collided with events already stored; nothing of it was written."""


@dataclass(frozen=True)
class StoreLocation:
    url: str
    scheme: str
    path: Path | None = None
    postgres: dict[str, str] | None = None

    @property
    def cache_dir(self) -> Path | None:
        """Where the columnar projection is cached, beside an SQLite store."""
        if self.path is None:
            return None
        return self.path.with_name(self.path.name + ".projection")


def resolve_store_url(url: str | None) -> str:
    return url or os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def parse_store_url(url: str) -> StoreLocation:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc:
            raise StoreError(f"store URL {url!r}: use sqlite:///relative/path or sqlite:////absolute/path")
        raw = unquote(parts.path)
        if not raw.startswith("/") or raw == "/":
            raise StoreError(f"store URL {url!r}: expected sqlite:///PATH")
        return StoreLocation(url=url, scheme="sqlite", path=Path(raw[1:]))
    if scheme == "memory":
        return StoreLocation(url=url, scheme="memory")
    if scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreError(f"store URL {url!r}: expected postgresql://user:password@host:port/dbname")
        return StoreLocation(
            url=url,
            scheme="postgresql",
            postgres={
                "POSTGRES_DBNAME": dbname,
                "POSTGRES_HOST": parts.hostname or "localhost",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or ""),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
            },
        )
    shown = scheme or "(none)"
    raise StoreError(
        f"unknown store URL scheme {shown!r} in {url!r}: expected sqlite:///PATH, memory:// or postgresql://…"
    )


def _check_sqlite_file(path: Path, *, create: bool) -> None:
    """Refuse anything that is not an ersattning store before the library touches it."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not an ersattning store")
    if path.exists():
        try:
            with path.open("rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as e:
            raise StoreError(f"cannot read store {path}: {e.strerror}") from None
        if head == b"":
            return  # an empty file is a new store
        if head != SQLITE_MAGIC:
            raise StoreError(f"{path} is not an ersattning store (not an SQLite database)")
        try:
            # read-write when we may: a bulk import killed mid-batch leaves a rollback journal that
            # the first reader must roll back, which a read-only connection cannot do
            mode = "rw" if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK) else "ro"
            con = sqlite3.connect(f"file:{path}?mode={mode}", uri=True)
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                con.close()
        except sqlite3.Error as e:
            raise StoreError(f"{path} is not an ersattning store ({e})") from None
        if tables and META_TABLE not in tables:
            raise StoreError(
                f"{path} is an SQLite database but not an ersattning store (tables: {', '.join(sorted(tables))})"
            )
        return
    if not create:
        raise StoreError(f"no store at {path}: create one with `ersattning synth` or `ersattning import`")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise StoreError(f"cannot create store {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise StoreError(f"cannot create store {path}: directory {parent} is not writable")


BUSY_WAIT_S = 30.0


def _wait_for_bulk_writer(path: Path, seconds: float | None = None) -> None:
    """Wait until no import holds the store in bulk mode, and leave it in WAL mode.

    An import that has the store to itself writes through a rollback journal
    (see :mod:`ersattning.store.sqlite_writer`); the library opens a store only in
    WAL mode, which needs a moment between two of the import's transactions.
    Opening the store there puts it back in WAL mode, and the import goes on
    beside this reader. Waits up to ``seconds`` (default :data:`BUSY_WAIT_S`).
    """
    if not path.exists() or path.stat().st_size == 0 or not os.access(path, os.W_OK):
        return
    deadline = time.monotonic() + (BUSY_WAIT_S if seconds is None else seconds)
    while True:
        con = sqlite3.connect(path, timeout=1.0, isolation_level=None)
        try:
            if str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise StoreError(f"cannot open store {path}: {e}") from None
            if time.monotonic() > deadline:
                raise StoreError(f"the store {path} is busy: an import is writing it and has it to itself; try again when it has finished") from None
        finally:
            con.close()
        time.sleep(0.2)


def _initialise_sqlite(path: Path) -> None:
    """Create a new store file with 16 KiB pages before the library opens it.

    Stored events are ~400 bytes; larger pages make bulk appends and WAL
    checkpoints markedly faster (measured: ~130k → ~190k rows/s), and the
    page size can only be chosen before the first table exists.
    """
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA page_size=16384")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    finally:
        con.close()


@dataclass
class RawPage:
    """A page of the notification log, as columns."""

    notification_id: np.ndarray  # int64, increasing (not necessarily contiguous)
    originator_id: np.ndarray  # S32: aggregate id as lower-case hex
    originator_version: np.ndarray  # int64
    topic: np.ndarray  # object: str
    state: list[bytes]

    def __len__(self) -> int:
        return len(self.notification_id)


class Store:
    """An opened store: the library application plus bulk append and columnar reads."""

    def __init__(self, location: StoreLocation, app: ServiceHistory) -> None:
        self.location = location
        self.app = app
        self.recorder = app.recorder
        self._datastore = getattr(app.factory, "datastore", None)
        self.is_sqlite = location.scheme in ("sqlite",)
        self._memory_meta: dict[str, str] = {}
        # The projection's cache of this store (ersattning.projection.cache.cache_for): it belongs to
        # the store object, so two stores never share one and it goes when the store does.
        self.projection_cache: Any = None
        self.store_id = self._ensure_meta()

    # -- identity ---------------------------------------------------------------

    def _ensure_meta(self) -> str:
        if self.location.scheme == "memory":
            return f"memory-{uuid.uuid4()}"
        with self._datastore.transaction(commit=True) as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            c.execute(f"SELECT value FROM {META_TABLE} WHERE key='store_id'")
            row = c.fetchone()
            if row is not None:
                return str(row[0])
            store_id = str(uuid.uuid4())
            now = datetime.now(UTC).isoformat()
            mark = "?" if self.is_sqlite else "%s"
            c.executemany(
                f"INSERT INTO {META_TABLE} VALUES ({mark}, {mark})",
                [("store_id", store_id), ("schema", SCHEMA_VERSION), ("created_at", now)],
            )
            return store_id

    def get_meta(self, key: str) -> str | None:
        if self.location.scheme == "memory":
            return self._memory_meta.get(key)
        mark = "?" if self.is_sqlite else "%s"
        with self._datastore.transaction(commit=False) as c:
            c.execute(f"SELECT value FROM {META_TABLE} WHERE key={mark}", (key,))
            row = c.fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        if self.location.scheme == "memory":
            self._memory_meta[key] = value
            return
        mark = "?" if self.is_sqlite else "%s"
        with self._datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {META_TABLE} WHERE key={mark}", (key,))
            c.execute(f"INSERT INTO {META_TABLE} VALUES ({mark}, {mark})", (key, value))

    # -- reading ----------------------------------------------------------------

    def position(self) -> int:
        """Highest notification id in the store (0 when empty)."""
        return int(self.recorder.max_notification_id() or 0)

    def events_by_topic(self) -> dict[str, int]:
        if self.is_sqlite:
            with self._datastore.transaction(commit=False) as c:
                c.execute("SELECT topic, COUNT(*) FROM stored_events GROUP BY topic")
                return {str(r[0]): int(r[1]) for r in c.fetchall()}
        counts: dict[str, int] = {}
        for page in self.read_pages(0):
            for topic in page.topic:
                counts[topic] = counts.get(topic, 0) + 1
        return counts

    def contains(self, originator_id: UUID, version: int) -> bool:
        events = self.recorder.select_events(originator_id, gt=version - 1, lte=version)
        return bool(events)

    def read_pages(self, after: int, page_size: int = 250_000, stop: int | None = None) -> Iterator[RawPage]:
        """Notifications with id > ``after`` (and <= ``stop``), in order, as column pages.

        Ids are compared, never counted: PostgreSQL's ids have gaps.
        """
        read = self._read_sqlite if self.is_sqlite else self._read_generic
        # Fetch the next page in a thread while the caller decodes this one:
        # the database driver and Arrow's parser both release the GIL.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(read, after, page_size, stop)
            while True:
                page = pending.result()
                if not len(page):
                    return
                after = int(page.notification_id[-1])
                more = len(page) == page_size
                if more:
                    pending = pool.submit(read, after, page_size, stop)
                yield page
                if not more:
                    return

    def _read_sqlite(self, after: int, limit: int, stop: int | None) -> RawPage:
        sql = "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events WHERE rowid > ?"
        params: list[int] = [after]
        if stop is not None:
            sql += " AND rowid <= ?"
            params.append(stop)
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        with self._datastore.get_connection(commit=False) as conn:
            cur = conn._sqlite_conn.cursor()  # plain tuples, no sqlite3.Row per row
            cur.row_factory = None
            rows = cur.execute(sql, params).fetchall()
        if not rows:
            return _empty_page()
        nid, oid, ver, topic, state = zip(*rows, strict=True)
        return RawPage(
            notification_id=np.fromiter(nid, dtype=np.int64, count=len(nid)),
            originator_id=np.array(oid, dtype="S32"),
            originator_version=np.fromiter(ver, dtype=np.int64, count=len(ver)),
            topic=np.array(topic, dtype=object),
            state=list(state),
        )

    def _read_generic(self, after: int, limit: int, stop: int | None) -> RawPage:
        notes = self.recorder.select_notifications(after, limit, stop=stop, inclusive_of_start=False)
        if not notes:
            return _empty_page()
        return RawPage(
            notification_id=np.array([n.id for n in notes], dtype=np.int64),
            originator_id=np.array([_hex(n.originator_id) for n in notes], dtype="S32"),
            originator_version=np.array([n.originator_version for n in notes], dtype=np.int64),
            topic=np.array([n.topic for n in notes], dtype=object),
            state=[bytes(n.state) for n in notes],
        )

    # -- writing ----------------------------------------------------------------

    def append(self, originator_ids: Sequence[str], versions: Sequence[int], topics: Sequence[str], states: Sequence[bytes]) -> None:
        """Append stored events in one transaction: all of them or none.

        ``originator_ids`` are lower-case hex UUIDs (the library's own form).
        """
        n = len(states)
        if not (len(originator_ids) == len(versions) == len(topics) == n):
            raise ValueError("append: columns differ in length")
        if n == 0:
            return
        try:
            if self.is_sqlite:
                self._append_sqlite(originator_ids, versions, topics, states)
            else:
                stored = [
                    StoredEvent(originator_id=UUID(hex=i), originator_version=int(v), topic=t, state=s)
                    for i, v, t, s in zip(originator_ids, versions, topics, states, strict=True)
                ]
                self.recorder.insert_events(stored)
        except IntegrityError as e:
            raise AppendConflict(
                "append rejected: an event with the same aggregate id and version is already stored "
                f"(another writer got there first, or this batch was appended before); nothing of this batch was written ({e})"
            ) from None

    def _append_sqlite(self, ids: Sequence[str], versions: Sequence[int], topics: Sequence[str], states: Sequence[bytes]) -> None:
        with self._datastore.get_connection(commit=True) as conn:
            setup = conn.cursor()
            for pragma in BULK_PRAGMAS:
                setup.execute(pragma)
            with conn.transaction(commit=True) as c:
                insert_rows(c, zip(ids, versions, topics, states, strict=True))

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the database file after bulk work."""
        if self.is_sqlite:
            with self._datastore.get_connection(commit=True) as conn:
                conn.cursor().execute(CHECKPOINT_SQL)

    def release_connections(self) -> None:
        """Close this process's idle connections to an SQLite store (the library opens new ones when
        needed), so that a bulk writer can have the file to itself (see :mod:`ersattning.store.sqlite_writer`)."""
        pool = getattr(self._datastore, "pool", None) if self.is_sqlite else None
        idle = getattr(pool, "_pool", None)
        if pool is None or idle is None:
            return
        with pool._put_condition:
            while idle:
                idle.popleft().close()

    def bulk_writer(self) -> BulkWriter:
        """A writer that appends batches one after another while the caller prepares the next."""
        from ersattning.store.writer import BulkWriter

        return BulkWriter(self)

    def close(self) -> None:
        self.app.close()


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else UUID(str(originator_id)).hex


def _empty_page() -> RawPage:
    return RawPage(
        notification_id=np.empty(0, np.int64),
        originator_id=np.empty(0, "S32"),
        originator_version=np.empty(0, np.int64),
        topic=np.empty(0, object),
        state=[],
    )


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open (and with ``create`` make) the store at ``url``; errors are StoreError."""
    location = parse_store_url(resolve_store_url(url))
    env: dict[str, Any] = {}
    if location.scheme == "sqlite":
        assert location.path is not None
        _check_sqlite_file(location.path, create=create)
        _wait_for_bulk_writer(location.path)
        if not location.path.exists() or location.path.stat().st_size == 0:
            try:
                _initialise_sqlite(location.path)
            except sqlite3.Error as e:
                raise StoreError(f"cannot create store {location.path}: {e}") from None
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(location.path),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    elif location.scheme == "memory":
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError("PostgreSQL stores need psycopg: pip install 'ersattning[postgres]'") from None
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **(location.postgres or {})}
    try:
        app = ServiceHistory(env=env)
        return Store(location, app)
    except (PersistenceError, sqlite3.Error, OSError) as e:
        raise StoreError(f"cannot open store {location.url}: {e}") from None

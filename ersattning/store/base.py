"""The store interface: opening a store by URL, and what every backend shares.

A store is an ``eventsourcing`` application recorder selected by URL:

- ``sqlite:///PATH`` — an SQLite file (relative paths are relative to the
  working directory; ``sqlite:////abs/path`` for an absolute one);
- ``memory://`` — the library's in-memory recorder, for tests;
- ``postgresql://user:password@host:port/dbname`` — a database a team shares, in
  the library's PostgreSQL tables (needs ``psycopg``: ``pip install 'ersattning[postgres]'``;
  what the URL leaves out comes from libpq's ``PG*`` variables and ``~/.pgpass``).

Each scheme names a backend module (:data:`BACKENDS`), as the library's
``PERSISTENCE_MODULE`` names a persistence module: ``ersattning.store.sqlite``,
``ersattning.store.memory``, ``ersattning.store.postgres``. A backend is a
:class:`Store` subclass; this module holds only what is the same for all of them
(see docs/ARCHITECTURE.md).

Bulk appends write stored events in one transaction per batch into the
library's own table, so every event stays readable by the library (repository,
notification log) and the primary key (aggregate id, version) still refuses a
second writer of the same version: optimistic concurrency is kept.
"""

from __future__ import annotations

import importlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import SplitResult, urlsplit
from uuid import UUID

import numpy as np
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent

from ersattning.store.application import ServiceHistory
from ersattning.store.encoding import by_long_topic
from ersattning.store.writer import BulkWriter, ThreadBulkWriter

DEFAULT_STORE_URL = "sqlite:///ersattning.db"
STORE_ENV = "ERSATTNING_STORE"
CACHE_ENV = "ERSATTNING_CACHE_DIR"
SCHEMA_VERSION = "1"
META_TABLE = "ersattning_meta"
#: the meta key a synthetic region (``ersattning synth``) is recorded under: its spec's fingerprint
SYNTH_META_KEY = "synth_spec"
META_TABLE_SQL = f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

#: URL scheme → the module of its backend, whose ``BACKEND`` is a :class:`Store` subclass.
BACKENDS: dict[str, str] = {
    "sqlite": "ersattning.store.sqlite",
    "memory": "ersattning.store.memory",
    "postgresql": "ersattning.store.postgres",
    "postgres": "ersattning.store.postgres",
}


class StoreError(Exception):
    """A problem with a store that the user can fix; shown as one line."""


class AppendConflict(StoreError):
    """A batch collided with events already stored; nothing of it was written."""


_SECRET_QUERY = re.compile(r"(?i)(password=)[^&]*")


def redact_url(url: str) -> str:
    """The URL as it may be shown: a password (after ``user:`` or as ``password=``) becomes ``***``.

    Store URLs reach messages, manifests and reports; the password never does (docs/personal-data.md).
    The rest of the URL is kept exactly as written.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        netloc, tail = rest[:cut], rest[cut:]
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
        url = f"{scheme}{sep}{netloc}{tail}"
    return _SECRET_QUERY.sub(r"\1***", url)


@dataclass(frozen=True)
class StoreLocation:
    url: str = field(repr=False)  # as given, with any password: for connecting only, never for showing
    scheme: str
    path: Path | None = None
    postgres: dict[str, str] | None = field(default=None, repr=False)
    #: a store a team shares on a server: commands never fill it with a demo region of their own
    shared: bool = False

    @property
    def display_url(self) -> str:
        """The URL with its password redacted: what messages, manifests and reports show."""
        return redact_url(self.url)

    @property
    def cache_dir(self) -> Path | None:
        """Where the columnar projection is cached, beside a store kept in a file."""
        if self.path is None:
            return None
        return self.path.with_name(self.path.name + ".projection")


def _without_secret(message: str, location: StoreLocation) -> str:
    """A driver's message with the store's password taken out, should the driver have quoted it."""
    password = (location.postgres or {}).get("POSTGRES_PASSWORD")
    return message.replace(password, "***") if password else message


def cache_root() -> Path:
    """Where projection caches of stores kept on a server go: ``$ERSATTNING_CACHE_DIR``, else the
    user's cache directory (``$XDG_CACHE_HOME/ersattning``, by default ``~/.cache/ersattning``).

    The cache is derived data, rebuilt from the store when missing; each user keeps their own,
    one directory per store id (see the README's "A shared store for a team").
    """
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ersattning"


def resolve_store_url(url: str | None) -> str:
    return url or os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def _backend(scheme: str) -> type[Store]:
    backend: type[Store] = importlib.import_module(BACKENDS[scheme]).BACKEND
    return backend


def parse_store_url(url: str) -> StoreLocation:
    """The location a URL names; its backend checks the rest of the URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in BACKENDS:
        shown = scheme or "(none)"
        raise StoreError(
            f"unknown store URL scheme {shown!r} in {redact_url(url)!r}: expected sqlite:///PATH, memory:// or postgresql://…"
        )
    return _backend(scheme).parse_location(url, parts)


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open (and with ``create`` make) the store at ``url``; errors are StoreError."""
    location = parse_store_url(resolve_store_url(url))
    return _backend(location.scheme).open(location, create=create)


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
    """An opened store: the library application plus bulk append and columnar reads.

    A backend gives :meth:`parse_location`, :meth:`open` and the store's meta data; it
    may replace the generic reading (:meth:`_read_page`, :meth:`events_by_topic`)
    and writing (:meth:`_insert`, :meth:`bulk_writer`) with faster ones of its own.
    """

    #: the library's persistence module for this backend
    persistence_module: ClassVar[str]

    def __init__(self, location: StoreLocation, app: ServiceHistory) -> None:
        self.location = location
        self.app = app
        self.recorder = app.recorder
        # The projection's cache of this store (ersattning.projection.cache.cache_for): it belongs to
        # the store object, so two stores never share one and it goes when the store does.
        self.projection_cache: Any = None
        self.store_id = self._ensure_meta()

    # -- the backend's part ---------------------------------------------------------

    @classmethod
    def parse_location(cls, url: str, parts: SplitResult) -> StoreLocation:
        """The location of a URL of this backend's scheme, or a StoreError saying what is wrong with it."""
        raise NotImplementedError

    @classmethod
    def open(cls, location: StoreLocation, *, create: bool) -> Store:
        """Open the store at ``location`` with the library's application over this backend's recorder."""
        return cls._start(location, {})

    @classmethod
    def _start(cls, location: StoreLocation, env: dict[str, str], *errors: type[Exception]) -> Store:
        """The application and the store; the library's (and ``errors``) failures become StoreError."""
        caught: tuple[type[Exception], ...] = (PersistenceError, OSError, *errors)
        try:
            return cls(location, ServiceHistory(env={"PERSISTENCE_MODULE": cls.persistence_module, **env}))
        except caught as e:
            raise StoreError(f"cannot open store {location.display_url}: {_without_secret(str(e), location)}") from None

    def _ensure_meta(self) -> str:
        """The store's id, made and recorded (with its schema version) when the store is new."""
        raise NotImplementedError

    def get_meta(self, key: str) -> str | None:
        raise NotImplementedError

    def set_meta(self, key: str, value: str) -> None:
        raise NotImplementedError

    def projection_dir(self) -> Path | None:
        """Where the projection of this store is cached (None: in memory only)."""
        return self.location.cache_dir

    # -- reading ----------------------------------------------------------------

    def position(self) -> int:
        """Highest notification id in the store (0 when empty)."""
        return int(self.recorder.max_notification_id() or 0)

    def events_by_topic(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for page in self.read_pages(0):
            for topic in page.topic:
                counts[topic] = counts.get(topic, 0) + 1
        return by_long_topic(counts)  # compact and legacy together

    def contains(self, originator_id: UUID, version: int) -> bool:
        events = self.recorder.select_events(originator_id, gt=version - 1, lte=version)
        return bool(events)

    def read_pages(self, after: int, page_size: int = 250_000, stop: int | None = None) -> Iterator[RawPage]:
        """Notifications with id > ``after`` (and <= ``stop``), in order, as column pages.

        Ids are compared, never counted: PostgreSQL's ids have gaps.
        """
        # Fetch the next page in a thread while the caller decodes this one:
        # the database driver and Arrow's parser both release the GIL.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._read_page, after, page_size, stop)
            while True:
                page = pending.result()
                if not len(page):
                    return
                after = int(page.notification_id[-1])
                more = len(page) == page_size
                if more:
                    pending = pool.submit(self._read_page, after, page_size, stop)
                yield page
                if not more:
                    return

    def _read_page(self, after: int, limit: int, stop: int | None) -> RawPage:
        """One page through the library's notification log."""
        notes = self.recorder.select_notifications(after, limit, stop=stop, inclusive_of_start=False)
        if not notes:
            return empty_page()
        return RawPage(
            notification_id=np.array([n.id for n in notes], dtype=np.int64),
            originator_id=np.array([_hex(n.originator_id) for n in notes], dtype="S32"),
            originator_version=np.array([n.originator_version for n in notes], dtype=np.int64),
            topic=np.array([n.topic for n in notes], dtype=object),
            state=[bytes(n.state) for n in notes],
        )

    # -- writing ----------------------------------------------------------------

    def append(self, originator_ids: Sequence[str], versions: Sequence[int], topics: Sequence[str], states: Sequence[bytes]) -> int | None:
        """Append stored events in one transaction: all of them or none.

        ``originator_ids`` are lower-case hex UUIDs (the library's own form).
        Returns the first row's notification id when the backend knows that the
        rows' ids follow one another in order (else None).
        """
        n = len(states)
        if not (len(originator_ids) == len(versions) == len(topics) == n):
            raise ValueError("append: columns differ in length")
        if n == 0:
            return None
        try:
            return self._insert(originator_ids, versions, topics, states)
        except IntegrityError as e:
            raise AppendConflict(
                "append rejected: an event with the same aggregate id and version is already stored "
                f"(another writer got there first, or this batch was appended before); nothing of this batch was written ({e})"
            ) from None

    def _insert(self, ids: Sequence[str], versions: Sequence[int], topics: Sequence[str], states: Sequence[bytes]) -> int | None:
        """Insert stored events in one transaction through the library's recorder; the first
        notification id when the recorder's ids for them are contiguous."""
        stored = [
            StoredEvent(originator_id=UUID(hex=i), originator_version=int(v), topic=t, state=s)
            for i, v, t, s in zip(ids, versions, topics, states, strict=True)
        ]
        return contiguous_first(self.recorder.insert_events(stored))

    def checkpoint(self) -> None:
        """Fold what bulk work left aside back into the store (nothing to do for most backends)."""

    def release_connections(self) -> None:
        """Close this process's idle connections, so that a bulk writer can have the store to itself."""

    def bulk_writer(self) -> BulkWriter:
        """A writer that appends batches one after another while the caller prepares the next."""
        return ThreadBulkWriter(self)

    def close(self) -> None:
        self.app.close()


class SQLStore(Store):
    """A store in an SQL database: its meta data in a table beside the library's."""

    #: the driver's parameter mark
    param: ClassVar[str]

    @property
    def datastore(self) -> Any:
        """The library's datastore (connections and transactions) of this store's recorder."""
        return self.app.factory.datastore  # type: ignore[attr-defined]  # the SQL factories have one; the base class does not say so

    def _ensure_meta(self) -> str:
        with self.datastore.transaction(commit=True) as c:
            c.execute(META_TABLE_SQL)
            c.execute(f"SELECT value FROM {META_TABLE} WHERE key='store_id'")
            row = c.fetchone()
            if row is not None:
                return str(row[0])
            store_id = str(uuid.uuid4())
            now = datetime.now(UTC).isoformat()
            mark = self.param
            c.executemany(
                f"INSERT INTO {META_TABLE} VALUES ({mark}, {mark})",
                [("store_id", store_id), ("schema", SCHEMA_VERSION), ("created_at", now)],
            )
            return store_id

    def get_meta(self, key: str) -> str | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT value FROM {META_TABLE} WHERE key={self.param}", (key,))
            row = c.fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        mark = self.param
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {META_TABLE} WHERE key={mark}", (key,))
            c.execute(f"INSERT INTO {META_TABLE} VALUES ({mark}, {mark})", (key, value))


def contiguous_first(notification_ids: Sequence[int] | None) -> int | None:
    """The first of ids that follow one another (1, 2, 3 …), else None."""
    if not notification_ids:
        return None
    first = int(notification_ids[0])
    return first if int(notification_ids[-1]) - first == len(notification_ids) - 1 else None


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else UUID(str(originator_id)).hex


def empty_page() -> RawPage:
    return RawPage(
        notification_id=np.empty(0, np.int64),
        originator_id=np.empty(0, "S32"),
        originator_version=np.empty(0, np.int64),
        topic=np.empty(0, object),
        state=[],
    )

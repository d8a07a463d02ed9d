"""The PostgreSQL backend: one shared store for a team, in the library's own tables.

Events live in the library's table (``public.servicehistory_events``), read and
written by the library's recorder too; this module adds what a shared store
needs (see docs/ARCHITECTURE.md and the README's "A shared store for a team"):

- opening checks the server first, with a short timeout, and says why it cannot
  connect (no server, authentication, no database); the password is never shown;
  ``~/.pgpass`` and ``PG*`` variables work for what the URL leaves out;
- read-only opens (``create=False``) never create tables, so a role with only
  ``SELECT`` can read; a new store is made under an advisory lock, so two
  importers starting on an empty database make it once;
- appends are a binary ``COPY`` inside the transaction that holds the library's
  table lock: notification ids commit in order (a reader that has seen id N has
  seen every id below it), the primary key refuses a second (aggregate, version),
  and no statement carries a large parameter;
- reads are pages of plain columns (binary rows, no library object per event)
  and counts by event type are a ``GROUP BY`` on the server;
- the projection's cache is on local disk under the cache directory, by store id
  (:func:`ersattning.store.base.cache_root`).

Ids have gaps (a rolled-back transaction uses up its ids), which reading by id copes with.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, unquote

import numpy as np
from eventsourcing.persistence import IntegrityError, PersistenceError

from ersattning.store.application import ServiceHistory
from ersattning.store.base import (
    META_TABLE,
    SCHEMA_VERSION,
    RawPage,
    SQLStore,
    Store,
    StoreError,
    StoreLocation,
    _without_secret,
    cache_root,
    empty_page,
    redact_url,
)
from ersattning.store.encoding import by_long_topic
from ersattning.uuids import uuid_hex

if TYPE_CHECKING:
    import psycopg

SCHEMA = "public"
#: the library's table for this application's events (its name follows the application's)
EVENTS_TABLE = f"{ServiceHistory.name.lower()}_events"
#: an advisory lock key that serialises making a store (any constant shared by all ersattning processes)
CREATE_LOCK = 0x65727361  # "ersa"
#: the binary COPY format's header (signature, flags, header extension length) and trailer
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
#: each row's fixed part, in the order of the COPY's columns: field count, uuid, version, state's length
_ROW_HEAD = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", "u1", (16,)), ("version_len", ">i4"), ("version", ">i8"), ("state_len", ">i4")])
COPY_ROWS = 20_000  # rows per piece of the COPY stream (~8 MB)


class PostgresStore(SQLStore):
    """A store in a PostgreSQL database."""

    persistence_module = "ersattning.store.postgres_factory:ServiceHistoryFactory"
    param = "%s"

    @classmethod
    def parse_location(cls, url: str, parts: SplitResult) -> StoreLocation:
        postgres = {
            # what the URL leaves out (host, port, user, password) libpq takes from PG* variables and ~/.pgpass
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
            "POSTGRES_HOST": parts.hostname or "",
            "POSTGRES_PORT": _port(url, parts),
            "POSTGRES_USER": unquote(parts.username or ""),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
        }
        postgres.update(libpq_query(url, parts.query))
        if not postgres["POSTGRES_DBNAME"]:
            raise StoreError(f"store URL {redact_url(url)!r}: expected postgresql://user:password@host:port/dbname")
        return StoreLocation(url=url, scheme="postgresql", shared=True, postgres=postgres)

    @classmethod
    def open(cls, location: StoreLocation, *, create: bool) -> Store:
        try:
            import psycopg
        except ImportError:
            raise StoreError("PostgreSQL stores need psycopg: pip install 'ersattning[postgres]'") from None
        from ersattning.store.postgres_factory import CONNECT_TIMEOUT_S, connection_kwargs

        parts = dict(location.postgres or {})
        try:
            with psycopg.connect(**connection_kwargs(parts), autocommit=True) as conn:
                if create:
                    conn.execute("SELECT pg_advisory_lock(%s)", (CREATE_LOCK,))
                row = conn.execute("SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{EVENTS_TABLE}", f"{SCHEMA}.{META_TABLE}")).fetchone()
                has_events, has_meta = bool(row and row[0]), bool(row and row[1])
                if not create and not (has_events and has_meta):
                    what = "no store" if not has_events else "not an ersattning store (no ersattning_meta table)"
                    raise StoreError(f"{what} in {location.display_url}: create one with `ersattning synth` or `ersattning import`")
                if create and not has_meta:
                    _create_meta(conn)
                env = {
                    **parts,
                    "POSTGRES_SCHEMA": SCHEMA,
                    "CREATE_TABLE": "yes" if create and not has_events else "no",
                    "POSTGRES_POOL_SIZE": "2",
                    "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S),  # how long the pool waits for a connection
                }
                return cls._start(location, env, psycopg.Error)
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot connect to store {location.display_url}: {_one_line(e, location)}") from None
        except psycopg.Error as e:
            raise StoreError(f"cannot open store {location.display_url}: {_one_line(e, location)}") from None

    # -- meta data --------------------------------------------------------------------

    def _ensure_meta(self) -> str:
        store_id = self.get_meta("store_id")
        if store_id is None:
            raise StoreError(f"{self.location.display_url} is not an ersattning store (it has no store id)")
        return store_id

    def get_meta(self, key: str) -> str | None:
        with self._cursor() as c:
            row = c.execute(f"SELECT value FROM {SCHEMA}.{META_TABLE} WHERE key=%s", (key,)).fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Insert the key, or replace its value (only then is ``UPDATE`` needed: writers append)."""
        with self._cursor(commit=True) as c:
            c.execute(f"INSERT INTO {SCHEMA}.{META_TABLE} VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value))
            if c.rowcount == 0:
                c.execute(f"UPDATE {SCHEMA}.{META_TABLE} SET value = %s WHERE key = %s", (value, key))

    @contextlib.contextmanager
    def _cursor(self, *, commit: bool = False, binary: bool = False) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        """A cursor of plain tuples in a transaction on one of the library's connections."""
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=not commit):
            yield conn.cursor(row_factory=tuple_row, binary=binary)

    # -- reading ----------------------------------------------------------------

    def events_by_topic(self) -> dict[str, int]:
        with self._cursor() as c:
            rows = c.execute(f"SELECT topic, COUNT(*) FROM {SCHEMA}.{EVENTS_TABLE} GROUP BY topic").fetchall()
            return by_long_topic({str(r[0]): int(r[1]) for r in rows})  # compact and legacy together

    def _read_page(self, after: int, limit: int, stop: int | None) -> RawPage:
        """One page in two statements of one snapshot, with no Python object per event but its state.

        First the fixed-width columns as arrays in the server's binary format, one row per topic
        (numpy reads them; the topics are counted, not sent per event), then the states.
        """
        from psycopg.rows import scalar_row, tuple_row

        bound = " AND notification_id <= %s" if stop is not None else ""
        page_sql = (
            "SELECT topic, array_send(array_agg(notification_id)), array_send(array_agg(originator_id)), "
            "array_send(array_agg(originator_version)) FROM (SELECT notification_id, originator_id, originator_version, topic "
            f"FROM {SCHEMA}.{EVENTS_TABLE} WHERE notification_id > %s{bound} ORDER BY notification_id LIMIT %s) page GROUP BY topic"
        )
        states_sql = f"SELECT state FROM {SCHEMA}.{EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id"
        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=True):
            c = conn.cursor(row_factory=tuple_row, binary=True)
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            groups = c.execute(page_sql, [after, *([stop] if stop is not None else []), limit]).fetchall()
            if not groups:
                return empty_page()
            per_topic = [_binary_array(g[1], ">i8") for g in groups]
            nid = np.concatenate(per_topic).astype(np.int64)
            order = np.argsort(nid, kind="stable")
            nid = nid[order]
            states = conn.cursor(row_factory=scalar_row, binary=True).execute(states_sql, (after, int(nid[-1]))).fetchall()
        if len(states) != len(nid):
            raise StoreError(f"the store {self.location.display_url} changed while it was read (events {after + 1}–{int(nid[-1])})")
        counts = [len(ids) for ids in per_topic]
        topics = np.array([g[0] for g in groups], dtype=object)
        return RawPage(
            notification_id=nid,
            originator_id=uuid_hex(np.concatenate([_binary_array(g[2], "u1", (16,)) for g in groups])[order]),
            originator_version=np.concatenate([_binary_array(g[3], ">i8") for g in groups]).astype(np.int64)[order],
            topic=np.repeat(topics, counts)[order],
            state=states,
        )

    def projection_dir(self) -> Path:
        """The projection's cache on this machine, by store id: the database is shared, the cache is each user's own."""
        return cache_root() / self.store_id

    # -- writing ----------------------------------------------------------------

    def _insert(self, ids: Sequence[str], versions: Sequence[int], topics: Sequence[str], states: Sequence[bytes]) -> int | None:
        """One transaction: the library's table lock, then the rows by binary COPY (see the module's docstring).

        Returns the first row's notification id: under the exclusive lock no other session inserts, and the
        COPY draws the ids from the sequence in row order, so they follow one another unless the sequence
        skipped (then None, and the import's projection feed lets the next load fold the batch)."""
        from psycopg.rows import tuple_row

        table = f"{SCHEMA}.{EVENTS_TABLE}"
        try:
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor(row_factory=tuple_row) as c:
                for statement in self.recorder.lock_table_statements:  # type: ignore[attr-defined]  # the PostgreSQL recorder has them
                    c.execute(statement)
                c.execute(f"NOTIFY {self.recorder.channel_name}")  # type: ignore[attr-defined]  # as the library's insert does, for its subscribers
                before = c.execute(f"SELECT COALESCE(MAX(notification_id), 0) FROM {table}").fetchone()
                with c.copy(f"COPY {table} (originator_id, originator_version, state, topic) FROM STDIN (FORMAT BINARY)") as copy:
                    for piece in copy_chunks(ids, versions, topics, states):
                        copy.write(piece)
                span = c.execute(f"SELECT MIN(notification_id), MAX(notification_id) FROM {table} WHERE notification_id > %s", (before[0] if before else 0,)).fetchone()
        except IntegrityError:
            raise  # Store.append says what a conflict means
        except PersistenceError as e:
            raise StoreError(f"cannot write to the store {self.location.display_url}: {_one_line(e, self.location)}") from None
        if span is None or span[0] is None or int(span[1]) - int(span[0]) + 1 != len(states):
            return None
        return int(span[0])

    def rewrite_events(self, topics: Collection[str], rewrite: Callable[[list[str], list[bytes], list[str], list[int]], int], page: int = 50_000) -> int:
        """``store migrate``: in one transaction under the library's table lock, each event stored under one of
        ``topics`` gets the topic and state ``rewrite`` puts in its lists (topics, states, ids as hex, versions;
        it returns how many it changed). Notification ids stay; a failure changes nothing."""
        from psycopg.rows import tuple_row

        changed = 0
        try:
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor(row_factory=tuple_row, binary=True) as c:
                for statement in self.recorder.lock_table_statements:  # type: ignore[attr-defined]  # the PostgreSQL recorder has them
                    c.execute(statement)
                c.execute("CREATE TEMPORARY TABLE ersattning_migrate (notification_id bigint PRIMARY KEY, topic text, state bytea) ON COMMIT DROP")
                after = 0
                while True:
                    rows = c.execute(
                        f"SELECT notification_id, originator_id, originator_version, topic, state FROM {SCHEMA}.{EVENTS_TABLE} "
                        "WHERE notification_id > %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s",
                        (after, list(topics), page),
                    ).fetchall()
                    if not rows:
                        break
                    new_topics, states = [str(r[3]) for r in rows], [bytes(r[4]) for r in rows]
                    changed += rewrite(new_topics, states, [r[1].hex for r in rows], [int(r[2]) for r in rows])
                    with c.copy("COPY ersattning_migrate (notification_id, topic, state) FROM STDIN") as copy:
                        for r, t, st in zip(rows, new_topics, states, strict=True):
                            copy.write_row((r[0], t, st))
                    after = int(rows[-1][0])
                c.execute(
                    f"UPDATE {SCHEMA}.{EVENTS_TABLE} e SET topic = m.topic, state = m.state FROM ersattning_migrate m "
                    "WHERE e.notification_id = m.notification_id"
                )
        except PersistenceError as e:
            raise StoreError(f"cannot migrate the store {self.location.display_url}: {_one_line(e, self.location)}") from None
        return changed


def copy_data(ids: Sequence[str], versions: Sequence[int], topics: Sequence[str], states: Sequence[bytes]) -> bytes:
    """Rows in PostgreSQL's binary COPY format: (uuid, bigint, bytea, text) each (see :func:`copy_chunks`)."""
    return b"".join(copy_chunks(ids, versions, topics, states))


def copy_chunks(ids: Sequence[str], versions: Sequence[int], topics: Sequence[str], states: Sequence[bytes], rows: int = COPY_ROWS) -> Iterator[bytes]:
    """The binary COPY stream in pieces of ``rows`` rows, made while the server takes in the one before.

    The fixed part of every row is one numpy record; each piece's rows are then joined with
    their states and topics in one ``bytes.join`` (no driver call per row).
    """
    tails = {t: len(b := t.encode()).to_bytes(4, "big") + b for t in set(topics)}
    width = _ROW_HEAD.itemsize
    yield COPY_HEADER
    for lo in range(0, len(states), rows):
        hi = min(lo + rows, len(states))
        n = hi - lo
        head = np.zeros(n, dtype=_ROW_HEAD)
        head["fields"] = 4
        head["id_len"] = 16
        head["id"] = np.frombuffer(bytes.fromhex("".join(ids[lo:hi])), dtype=np.uint8).reshape(n, 16)
        head["version_len"] = 8
        head["version"] = np.asarray(versions[lo:hi], dtype=np.int64)
        head["state_len"] = np.fromiter(map(len, states[lo:hi]), dtype=np.int64, count=n)
        heads = head.tobytes()
        parts: list[bytes] = [b""] * (3 * n)
        parts[0::3] = [heads[k : k + width] for k in range(0, n * width, width)]
        parts[1::3] = states[lo:hi]
        parts[2::3] = [tails[t] for t in topics[lo:hi]]
        yield b"".join(parts)
    yield COPY_TRAILER


def _binary_array(data: bytes, dtype: str, shape: tuple[int, ...] = ()) -> np.ndarray:
    """The values of a one-dimensional array without nulls in PostgreSQL's binary format (``array_send``):
    a 20-byte header, then each value after its 4-byte length."""
    element = np.dtype([("length", ">i4"), ("value", dtype, shape)])
    return np.frombuffer(data, dtype=element, offset=20)["value"]


def _create_meta(conn: psycopg.Connection[Any]) -> None:
    """The meta table and the store's id (under the caller's advisory lock; a second maker changes nothing)."""
    with conn.transaction():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        now = datetime.now(UTC).isoformat()
        for key, value in (("store_id", str(uuid.uuid4())), ("schema", SCHEMA_VERSION), ("created_at", now)):
            conn.execute(f"INSERT INTO {SCHEMA}.{META_TABLE} VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value))


def _one_line(error: Exception, location: StoreLocation) -> str:
    """The driver's message on one line, without the password."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return _without_secret(text, location) or type(error).__name__



#: libpq's connection keywords a URL's query may set (the PostgreSQL manual, "Parameter Key Words"), as libpq
#: takes them from a connection URI; the five of the URL's own parts among them override those parts
LIBPQ_KEYWORDS = frozenset(
    """host hostaddr port dbname user password passfile require_auth channel_binding connect_timeout client_encoding
    options application_name fallback_application_name keepalives keepalives_idle keepalives_interval keepalives_count
    tcp_user_timeout gssencmode sslmode requiressl sslcompression sslcert sslkey sslpassword sslcertmode sslrootcert
    sslcrl sslcrldir sslsni sslnegotiation requirepeer ssl_min_protocol_version ssl_max_protocol_version krbsrvname
    gsslib gssdelegation service target_session_attrs load_balance_hosts""".split()
)
#: the URL's parts among libpq's keywords, by the library's names for them
_URL_PART = {"dbname": "POSTGRES_DBNAME", "host": "POSTGRES_HOST", "port": "POSTGRES_PORT", "user": "POSTGRES_USER", "password": "POSTGRES_PASSWORD"}
#: the other keywords a URL's query gives, as JSON, beside the URL's parts (postgres_factory.connection_kwargs)
LIBPQ_PARAMS = "ERSATTNING_LIBPQ_PARAMS"


def _port(url: str, parts: SplitResult) -> str:
    """The URL's port as text ("" when none); a malformed one is a StoreError saying so."""
    try:
        port = parts.port
    except ValueError:
        host = parts.netloc.rpartition("@")[2]
        written = host.rpartition("]")[2].partition(":")[2] if host.startswith("[") else host.partition(":")[2]
        raise StoreError(f"store URL {redact_url(url)!r}: the port {written!r} is not a number from 0 to 65535 (e.g. postgresql://host:5432/dbname)") from None
    return str(port) if port is not None else ""


def libpq_query(url: str, query: str) -> dict[str, str]:
    """A URL's query parameters as libpq uses them: its own parts (``?host=/var/run/postgresql``) by the library's
    names, the other keywords as JSON under :data:`LIBPQ_PARAMS`; ``ssl=true`` is ``sslmode=require`` (libpq's
    compatibility with JDBC URLs). A key libpq does not know, or one given twice, is a StoreError."""
    out: dict[str, str] = {}
    extra: dict[str, str] = {}
    seen: set[str] = set()
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError:
        raise StoreError(f"store URL {redact_url(url)!r}: its query is not KEY=VALUE&KEY=VALUE") from None
    for key, value in pairs:
        if key == "ssl" and value == "true":
            key, value = "sslmode", "require"
        if key not in LIBPQ_KEYWORDS:
            raise StoreError(
                f"store URL {redact_url(url)!r}: unknown connection parameter {key!r}; "
                "libpq's keywords are accepted (e.g. sslmode, sslrootcert, connect_timeout, application_name, options, target_session_attrs)"
            )
        if key in seen:
            raise StoreError(f"store URL {redact_url(url)!r}: the connection parameter {key!r} is given twice")
        seen.add(key)
        if key == "port" and value and not (value.isdigit() and int(value) <= 65535):
            raise StoreError(f"store URL {redact_url(url)!r}: the port {value!r} is not a number from 0 to 65535")
        if key in _URL_PART:
            out[_URL_PART[key]] = value
        else:
            extra[key] = value
    if extra:
        out[LIBPQ_PARAMS] = json.dumps(extra, sort_keys=True)
    return out


BACKEND: type[Store] = PostgresStore

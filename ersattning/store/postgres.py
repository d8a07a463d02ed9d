"""The PostgreSQL backend: the library's PostgreSQL recorder (needs ``psycopg``).

Reads and appends go through the library's recorder (notification log pages,
``insert_events``); the meta data is a table beside the library's. Its ids have
gaps, which reading by id copes with (see :meth:`ersattning.store.base.Store.read_pages`).
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote

from ersattning.store.base import SQLStore, Store, StoreError, StoreLocation, redact_url


class PostgresStore(SQLStore):
    """A store in a PostgreSQL database."""

    persistence_module = "eventsourcing.postgres"
    param = "%s"

    @classmethod
    def parse_location(cls, url: str, parts: SplitResult) -> StoreLocation:
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreError(f"store URL {redact_url(url)!r}: expected postgresql://user:password@host:port/dbname")
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

    @classmethod
    def open(cls, location: StoreLocation, *, create: bool) -> Store:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError("PostgreSQL stores need psycopg: pip install 'ersattning[postgres]'") from None
        return cls._start(location, dict(location.postgres or {}))


BACKEND: type[Store] = PostgresStore

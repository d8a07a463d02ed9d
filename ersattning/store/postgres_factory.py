"""The library's PostgreSQL factory, connecting as ``psql`` would.

The library passes every part of the URL to the driver, an empty password
included, which stops libpq from looking in ``PGPASSWORD`` or ``~/.pgpass``
(and ``PGHOST``, ``PGUSER``…). This factory gives the driver only the parts the
URL has, plus a short connect timeout, before the library opens a connection
(see the README's "A shared store for a team"). Kept apart from
:mod:`ersattning.store.postgres` because it needs ``psycopg`` at import.
"""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg.rows import dict_row

from ersattning.store.postgres import LIBPQ_PARAMS

#: seconds to wait for a server before saying why it cannot be reached
CONNECT_TIMEOUT_S = 5
#: the URL's parts as the library's environment names them, and as libpq does
URL_PARTS = {
    "POSTGRES_DBNAME": "dbname",
    "POSTGRES_HOST": "host",
    "POSTGRES_PORT": "port",
    "POSTGRES_USER": "user",
    "POSTGRES_PASSWORD": "password",
}


def connection_kwargs(parts: dict[str, str]) -> dict[str, Any]:
    """libpq's keywords for the parts a URL gives (empty ones left to libpq's defaults and environment), then the
    keywords of its query (postgres.libpq_query), which override the short timeout and the application's name."""
    kwargs: dict[str, Any] = {URL_PARTS[k]: v for k, v in parts.items() if k in URL_PARTS and v}
    query = json.loads(parts.get(LIBPQ_PARAMS) or "{}")
    return {**kwargs, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "ersattning", **query}


class ServiceHistoryFactory(PostgresFactory):
    """The library's factory with the driver's keywords taken from the URL alone."""

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        parts = {k: self.env.get(k) or "" for k in (*URL_PARTS, LIBPQ_PARAMS)}
        # the pool has not connected yet (it opens on first use): set what it will connect with
        self.datastore.pool.kwargs = {**connection_kwargs(parts), "row_factory": dict_row}

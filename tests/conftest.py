"""Stores for tests: SQLite files, and PostgreSQL databases on a server when one is given.

PostgreSQL tests need a server where the test role may create databases:
``ERSATTNING_TEST_POSTGRES=postgresql://user@host:port/db``. Without it they are
skipped, saying so; with ``ERSATTNING_TEST_POSTGRES_REQUIRED=1`` (as ``.ci/run``
sets) a missing or unreachable server fails them instead. Each test gets a new,
empty database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from ersattning.store import Store, open_store

POSTGRES_ENV = "ERSATTNING_TEST_POSTGRES"
REQUIRED_ENV = "ERSATTNING_TEST_POSTGRES_REQUIRED"
#: the backends whose stores outlive the process, for tests parametrised over backends
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Projection caches of server stores go to a temporary directory, not the user's ~/.cache."""
    old = os.environ.get("ERSATTNING_CACHE_DIR")
    os.environ["ERSATTNING_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("ERSATTNING_CACHE_DIR", None)
    else:
        os.environ["ERSATTNING_CACHE_DIR"] = old


class PostgresServer:
    """A server where tests make (and drop) databases of their own."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.psycopg = psycopg
        self.made: list[str] = []
        with psycopg.connect(url, connect_timeout=5):
            pass

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{dbname}"))

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        name = f"ersattning_test_{uuid.uuid4().hex[:12]}"
        with self.psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        self.made.append(name)
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with self.psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.made.remove(name)

    def execute(self, sql: str) -> None:
        with self.psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"PostgreSQL tests are required here ({REQUIRED_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[PostgresServer | str]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        yield f"no server given: set {POSTGRES_ENV}=postgresql://user@host:port/db (a role that may create databases)"
        return
    try:
        server = PostgresServer(url)
    except ImportError:
        yield "psycopg is not installed: pip install '.[postgres]'"
        return
    except Exception as e:  # noqa: BLE001 - whatever stops a connection is the reason to show
        yield f"cannot connect to {POSTGRES_ENV}: {' '.join(str(e).split())}"
        return
    yield server
    for name in list(server.made):
        server.drop(server.url_for(name))


@pytest.fixture(scope="session")
def postgres_server(_postgres_server: PostgresServer | str) -> PostgresServer:
    """The test server, or the test skipped (failed where required) saying why there is none."""
    if isinstance(_postgres_server, str):
        _unavailable(_postgres_server)
    assert isinstance(_postgres_server, PostgresServer)
    return _postgres_server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards)."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new store, once per backend that persists."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def module_store_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """For module-scoped fixtures: a new store's URL for a backend, cleaned up with the module."""
    made: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('store') / 's.db'}"
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.new_database()
        made.append(url)
        return url

    yield make
    if made:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        for url in made:
            server.drop(url)


# -- how many tests ran against PostgreSQL (shown at the end of a run; .ci/run's log says it) ---------

_postgres_passed: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres_server" in getattr(item, "fixturenames", ()) or "postgresql" in params.values():
            item.add_marker(pytest.mark.postgres)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against a PostgreSQL server (skipped without one)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _postgres_passed.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(f"PostgreSQL: {len(_postgres_passed)} tests passed against a server")

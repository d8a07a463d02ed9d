"""PostgreSQL store URLs: query parameters used as libpq uses them, or refused with one line (issue 25).

Parsing needs no server; the last tests connect when ``ERSATTNING_TEST_POSTGRES`` names one (tests/conftest.py).
"""

from __future__ import annotations

import json

import pytest

from ersattning.store import StoreError, open_store
from ersattning.store.base import parse_store_url
from ersattning.store.postgres import LIBPQ_PARAMS
from ersattning.store.postgres_factory import CONNECT_TIMEOUT_S, connection_kwargs
from tests.test_cli import run


def _kwargs(url: str) -> dict:
    return connection_kwargs(parse_store_url(url).postgres or {})


def test_libpq_keywords_in_the_query_reach_the_driver():
    url = (
        "postgresql://finance:s3cret@db.region.se:5433/ersattning?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fregion-ca.pem"
        "&connect_timeout=10&application_name=ekonomi&options=-c%20search_path%3Dpublic&target_session_attrs=read-write"
    )
    assert _kwargs(url) == {
        "dbname": "ersattning", "host": "db.region.se", "port": "5433", "user": "finance", "password": "s3cret",
        "sslmode": "verify-full", "sslrootcert": "/etc/ssl/region-ca.pem", "options": "-c search_path=public",
        "target_session_attrs": "read-write",
        "connect_timeout": "10", "application_name": "ekonomi",  # the URL's own override the defaults
    }


def test_without_a_query_the_defaults_stay():
    assert _kwargs("postgresql://finance@db/ersattning") == {
        "dbname": "ersattning", "host": "db", "user": "finance", "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "ersattning"
    }
    assert LIBPQ_PARAMS not in (parse_store_url("postgresql://finance@db/ersattning").postgres or {})


def test_the_urls_own_parts_given_in_the_query_are_libpqs_too():
    # a Unix socket directory as host, as libpq takes it from a URI's query; the query's port and user win
    kwargs = _kwargs("postgresql:///ersattning?host=%2Fvar%2Frun%2Fpostgresql&port=5433&user=reader&password=pw")
    assert {k: kwargs[k] for k in ("host", "port", "user", "password", "dbname")} == {"host": "/var/run/postgresql", "port": "5433", "user": "reader", "password": "pw", "dbname": "ersattning"}
    assert _kwargs("postgresql://db?dbname=ersattning")["dbname"] == "ersattning"
    # libpq's compatibility with JDBC URLs
    assert _kwargs("postgresql://db/ersattning?ssl=true")["sslmode"] == "require"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sslmod=require", "unknown connection parameter 'sslmod'; libpq's keywords are accepted (e.g. sslmode"),
        ("currentSchema=x", "unknown connection parameter 'currentSchema'"),
        ("sslmode=require&sslmode=disable", "the connection parameter 'sslmode' is given twice"),
        ("port=54x2", "the port '54x2' is not a number from 0 to 65535"),
        ("sslmode", "its query is not KEY=VALUE&KEY=VALUE"),
    ],
)
def test_a_query_libpq_would_not_take_is_refused_naming_it(query, expected):
    url = f"postgresql://finance:s3cret@db/ersattning?{query}"
    with pytest.raises(StoreError) as err:
        parse_store_url(url)
    assert expected in str(err.value)
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize("port", ["54x2", "99999", "-1", "5432.0"])
def test_a_malformed_port_is_one_line_and_exit_2(tmp_path, port):
    for url in (f"postgresql://finance:s3cret@db:{port}/ersattning", f"postgresql://finance:s3cret@[::1]:{port}/ersattning"):
        done = run("history", "--store", url, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [f"ersattning: error: store URL {url.replace('s3cret', '***')!r}: the port {port!r} is not a number from 0 to 65535 (e.g. postgresql://host:5432/dbname)"]


def test_an_unknown_parameter_stops_every_command_before_connecting(tmp_path):
    url = "postgresql://finance:s3cret@127.0.0.1:9/ersattning?sslmod=require&password=hunter2"
    done = run("history", "--store", url, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "unknown connection parameter 'sslmod'" in line and "s3cret" not in line and "hunter2" not in line


# -- on a server -------------------------------------------------------------------------------


def test_the_querys_keywords_are_those_of_the_stores_connections(postgres_url: str) -> None:
    url = f"{postgres_url}?application_name=ersattning-ekonomi&options=-c%20statement_timeout%3D4321&connect_timeout=7"
    store = open_store(url, create=True)
    with store._cursor() as c:  # type: ignore[attr-defined]  # a connection of the library's pool, as every read uses
        assert c.execute("SHOW application_name").fetchone()[0] == "ersattning-ekonomi"
        assert c.execute("SHOW statement_timeout").fetchone()[0] == "4321ms"
    assert json.loads((store.location.postgres or {})[LIBPQ_PARAMS])["connect_timeout"] == "7"


def test_sslmode_require_on_a_server_without_ssl_is_one_line(postgres_url: str, tmp_path) -> None:
    done = run("history", "--store", f"{postgres_url}?sslmode=require", cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("ersattning: error: cannot connect to store") and "SSL" in line

"""A store URL's password is never shown: not in messages, manifests, reports or the CLI's output."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from ersattning.api import compare, demo_store
from ersattning.cli import render
from ersattning.report import write_report
from ersattning.store import StoreLocation, parse_store_url
from ersattning.store.base import redact_url
from tests.test_cli import run

SECRET = "s3cr3t-Pw"
URL = f"postgresql://analyst:{SECRET}@127.0.0.1:9/ersattning"  # port 9 (discard): nothing listens there
NO_DB = f"postgresql://analyst:{SECRET}@127.0.0.1:9/"  # refused before any connection: no database named


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an unencoded '@' in the password
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://h/db?sslmode=require&password=s3cret", "postgresql://h/db?sslmode=require&password=***"),
        ("postgresql://u:s3cret@/db?host=/run/postgresql", "postgresql://u:***@/db?host=/run/postgresql"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),  # no password (.pgpass, PGPASSWORD): unchanged
        ("sqlite:///data/x.db", "sqlite:///data/x.db"),
        ("sqlite:////srv/x.db", "sqlite:////srv/x.db"),
        ("memory://", "memory://"),
        ("ersattning.db", "ersattning.db"),
    ],
)
def test_a_url_is_shown_with_its_password_redacted_and_otherwise_as_written(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_location_shows_no_password_even_in_its_repr() -> None:
    location = parse_store_url(URL)
    assert location.url == URL  # kept for connecting
    assert location.display_url == "postgresql://analyst:***@127.0.0.1:9/ersattning"
    assert SECRET not in repr(location) and SECRET not in str(location)
    assert parse_store_url("postgresql://analyst@127.0.0.1/ersattning").postgres is not None  # no password: libpq finds it


@pytest.mark.parametrize(
    "args",
    [
        ("history",),
        ("synth", "--recipients", "5", "--months", "1"),
        ("compare", "--format", "json"),
        ("explain", "--visit", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_no_command_prints_the_password_of_a_store_url_it_refuses(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = run(*args, "--store", NO_DB, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "postgresql://analyst:***@127.0.0.1:9/" in done.stderr  # the URL is named, redacted
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_store_that_cannot_be_reached_is_named_without_its_password(tmp_path: Path) -> None:
    # Through the environment variable; nothing listens on port 9 (or psycopg is not installed).
    done = run("history", cwd=tmp_path, env={"ERSATTNING_STORE": URL})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() and "Traceback" not in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_manifest_table_and_reports_show_the_url_redacted(tmp_path: Path) -> None:
    store = demo_store(recipients=12, months=1)
    # The comparison reads the store's location only to show it: give it a URL with a password.
    store.location = StoreLocation(url=URL, scheme="postgresql")
    c = compare("default", store, period="2024-01..2024-01")  # the one month the demo region holds
    manifest = c.to_json()["manifest"]
    assert manifest["store"] == "postgresql://analyst:***@127.0.0.1:9/ersattning"
    assert SECRET not in json.dumps(c.to_json(), default=str)
    assert SECRET not in render.table(c)
    html, xlsx = tmp_path / "r.html", tmp_path / "r.xlsx"
    write_report(c, html=html, xlsx=xlsx)
    assert "analyst:***@127.0.0.1" in html.read_text(encoding="utf-8")
    assert SECRET not in html.read_text(encoding="utf-8")
    with zipfile.ZipFile(xlsx) as z:
        text = "".join(z.read(name).decode("utf-8", "replace") for name in z.namelist())
    assert "analyst:***@127.0.0.1" in text and SECRET not in text

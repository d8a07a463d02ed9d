"""Store selection by URL, user errors, atomic batches and optimistic concurrency."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ersattning.domain import Area, Recipient
from ersattning.store import AppendConflict, StoreError, open_store, parse_store_url, resolve_store_url
from ersattning.store.bulk import EventBatch, append_batch, encoder_for
from ersattning.store.sqlite import SQLiteStore
from tests.conftest import BACKENDS
from tests.support import D0, at


def test_urls() -> None:
    assert parse_store_url("sqlite:///data/x.db").path == Path("data/x.db")
    assert parse_store_url("sqlite:////abs/x.db").path == Path("/abs/x.db")
    assert parse_store_url("memory://").scheme == "memory"
    pg = parse_store_url("postgresql://me:sec%40ret@db.local:6543/care")
    assert pg.postgres == {"POSTGRES_DBNAME": "care", "POSTGRES_HOST": "db.local", "POSTGRES_PORT": "6543", "POSTGRES_USER": "me", "POSTGRES_PASSWORD": "sec@ret"}
    assert parse_store_url("sqlite:///x.db").cache_dir == Path("x.db.projection")


def test_default_url_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERSATTNING_STORE", raising=False)
    assert resolve_store_url(None) == "sqlite:///ersattning.db"
    monkeypatch.setenv("ERSATTNING_STORE", "memory://")
    assert resolve_store_url(None) == "memory://"
    assert resolve_store_url("sqlite:///y.db") == "sqlite:///y.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unknown store URL scheme 'mysql'"),
        ("ersattning.db", "unknown store URL scheme '(none)'"),
        ("sqlite://host/x.db", "sqlite:///relative/path"),
        ("postgresql://localhost", "expected postgresql://user:password@host:port/dbname"),
    ],
)
def test_bad_urls_are_user_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_store(url)


def test_files_that_are_not_stores(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not an ersattning store .not an SQLite database"):
        open_store(f"sqlite:///{text}")
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="SQLite database but not an ersattning store .tables: invoices"):
        open_store(f"sqlite:///{other}")
    assert sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]  # untouched
    with pytest.raises(StoreError, match="directory .* does not exist"):
        open_store(f"sqlite:///{tmp_path}/missing/x.db")
    with pytest.raises(StoreError, match="no store at"):
        open_store(f"sqlite:///{tmp_path}/absent.db", create=False)
    with pytest.raises(StoreError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


def test_unwritable_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root passes permission checks; sysfs still refuses new files
        with pytest.raises(StoreError, match="cannot create store /sys/x.db"):
            open_store("sqlite:////sys/x.db")
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(StoreError, match="not writable"):
        open_store(f"sqlite:///{ro}/x.db")


def test_store_identity_survives_reopening(store_url: str) -> None:
    a = open_store(store_url)
    b = open_store(store_url, create=False)
    assert a.store_id == b.store_id
    assert open_store("memory://").store_id != open_store("memory://").store_id


def _departures(ids: list[bytes], version: int) -> EventBatch:
    batch = EventBatch.empty()
    t = np.full(len(ids), np.datetime64("2024-05-01T10:00:00"), dtype="datetime64[s]")
    batch.add(encoder_for(Recipient.Departed), np.array(ids, dtype="S32"), version, {"timestamp": t, "departed_on": t.astype("datetime64[D]"), "reason": ["moved"] * len(ids)})
    return batch


@pytest.mark.parametrize("url_kind", [*BACKENDS, "memory"])
def test_a_conflicting_batch_writes_nothing(url_kind: str, request: pytest.FixtureRequest) -> None:
    store = open_store("memory://" if url_kind == "memory" else request.getfixturevalue("postgres_url" if url_kind == "postgresql" else "sqlite_url"))
    r = Recipient.enrol(pseudonym="a", birth_year=1940, area=Area.urban, enrolled_on=D0, recorded_at=at())
    store.app.save(r)
    fresh = [f"{i:032x}".encode() for i in range(1, 1001)]
    with pytest.raises(AppendConflict, match="nothing of this batch was written"):
        append_batch(store, _departures([*fresh, r.id.hex.encode()], 1))  # last one collides with the enrolment
    assert store.position() == 1
    assert sum(store.events_by_topic().values()) == 1
    append_batch(store, _departures(fresh, 1))
    assert sum(store.events_by_topic().values()) == 1001  # PostgreSQL's ids skip those the refused batch took
    assert store.position() >= 1001


def test_two_writers_never_overwrite_each_other(store_url: str) -> None:
    """Two processes' worth of stores on one store: the second save of version 2 is refused."""
    first, second = open_store(store_url), open_store(store_url)
    r = Recipient.enrol(pseudonym="a", birth_year=1940, area=Area.urban, enrolled_on=D0, recorded_at=at())
    first.app.save(r)
    mine: Recipient = first.app.repository.get(r.id)
    theirs: Recipient = second.app.repository.get(r.id)
    mine.choose_provider("P1", D0, at(days=1))
    theirs.choose_provider("P2", D0, at(days=1))
    first.app.save(mine)
    from eventsourcing.persistence import IntegrityError

    with pytest.raises(IntegrityError):
        second.app.save(theirs)
    assert first.app.repository.get(r.id).provider == "P1"
    with pytest.raises(AppendConflict):
        append_batch(second, _departures([r.id.hex.encode()], 2))


def test_pages_follow_ids_even_with_gaps(sqlite_url: str) -> None:
    """PostgreSQL's notification ids have gaps; reading compares ids, never counts them (there:
    tests/test_postgres.py, a refused batch's ids)."""
    store = open_store(sqlite_url)
    assert isinstance(store, SQLiteStore)  # ids renumbered with gaps below, in SQL
    append_batch(store, _departures([f"{i:032x}".encode() for i in range(1, 6)], 1))
    with store.datastore.transaction(commit=True) as c:
        c.execute("UPDATE stored_events SET rowid = rowid * 10")
    pages = list(store.read_pages(0, page_size=2))
    assert [p.notification_id.tolist() for p in pages] == [[10, 20], [30, 40], [50]]
    assert [p.notification_id.tolist() for p in store.read_pages(25, page_size=10)] == [[30, 40, 50]]

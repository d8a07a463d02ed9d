"""The child writer of bulk imports: what it writes, how it fails, and that it dies with its parent."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ersattning import projection
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.visits import import_visits
from ersattning.privacy import Pseudonymiser
from ersattning.store import open_store
from ersattning.store import sqlite_writer as append_process
from ersattning.store.sqlite_writer import AppendFailed, AppendProcess
from tests.test_store import _departures

pytestmark = pytest.mark.skipif(not append_process.available(), reason="the child writer needs Linux")
P = Pseudonymiser(b"k" * 32)
CANONICAL = "recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"


def _visits(path: Path, n: int, prefix: str = "") -> Path:
    """``n`` performed visits, 40 a day at 15-minute steps, each staff member once a day (no overlaps); ids start with ``prefix``."""
    t0 = datetime(2024, 3, 4, 7, 0)
    with path.open("w", encoding="utf-8") as f:
        f.write(CANONICAL)
        for i in range(n):
            s = t0 + timedelta(days=i // 40, minutes=(i % 40) * 15)
            a, b = s.strftime("%Y-%m-%d %H:%M"), (s + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M")
            f.write(f"{prefix}R{i % 50},P1,{prefix}V{i},personal_care,{a},{b},{a},{b},S{i % 40},performed\n")
    return path


def _journal(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()


def test_an_import_alone_writes_once_through_a_rollback_journal_and_leaves_the_store_in_wal(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(f"sqlite:///{db}")
    report = import_visits(store, [str(_visits(tmp_path / "v.csv", 3000))], Mapping(), P, ImportOptions(chunk_rows=1000))
    assert (report.rows_imported, report.events_written, report.journal) == (3000, 3000, "delete")
    assert store.position() == 3000 and _journal(db) == "wal"
    assert len(projection.load(store).visits) == 3000


HOLDER = """
import sys, time
from ersattning.store import open_store
store = open_store(sys.argv[1])
print(store.position(), flush=True)
time.sleep(60)
"""


def test_an_import_beside_another_process_with_the_store_open_stays_in_wal(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(f"sqlite:///{db}")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, f"sqlite:///{db}"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "0"  # its connection keeps the file open in WAL mode
        report = import_visits(store, [str(_visits(tmp_path / "v.csv", 2000))], Mapping(), P, ImportOptions(chunk_rows=500))
    finally:
        holder.kill()
        holder.wait()
    assert (report.events_written, report.journal) == (2000, "wal")
    assert store.position() == 2000 and _journal(db) == "wal"


def test_a_conflicting_batch_is_refused_whole_and_the_writer_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    open_store(f"sqlite:///{db}").close()
    writer = AppendProcess(str(db))
    try:
        first = _departures([f"{i:032x}".encode() for i in range(1, 101)], 1)
        ids, versions, order = first.ids_versions_order()
        writer.send(ids, versions, order, list(zip(first.topic, first.state, strict=True)))
        assert writer.result() == 100
        again = _departures([f"{i:032x}".encode() for i in range(100, 201)], 1)  # id 100 is stored already
        ids, versions, order = again.ids_versions_order()
        writer.send(ids, versions, order, list(zip(again.topic, again.state, strict=True)))
        with pytest.raises(AppendFailed) as refused:
            writer.result()
        assert refused.value.conflict
        rest = _departures([f"{i:032x}".encode() for i in range(101, 201)], 1)
        ids, versions, order = rest.ids_versions_order()
        writer.send(ids, versions, order, list(zip(rest.topic, rest.state, strict=True)))
        assert writer.result() == 100
    finally:
        writer.close()
    assert open_store(f"sqlite:///{db}", create=False).position() == 200
    # the child writes exactly the rows, in the order, that the in-process append writes
    con = sqlite3.connect(db)
    stored = con.execute("SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid").fetchall()
    con.close()
    expected = [row for batch in (first, rest) for row in zip(*batch.columns(), strict=True)]
    assert stored == expected


PARENT = """
import sys, time
from ersattning.store.sqlite_writer import AppendProcess
w = AppendProcess(sys.argv[1])
print(w._proc.pid, flush=True)
time.sleep(60)
"""


def test_the_writer_dies_with_its_parent(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    open_store(f"sqlite:///{db}").close()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(db)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child has set its parent-death signal by now
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_store_left_mid_batch_in_rollback_mode_opens_with_the_batch_rolled_back(tmp_path: Path) -> None:
    """SIGKILL while the child writes a batch: the journal is hot, the next open rolls it back."""
    db = tmp_path / "s.db"
    open_store(f"sqlite:///{db}").close()
    code = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "assert c.execute('PRAGMA journal_mode=DELETE').fetchone()[0] == 'delete'\n"
        "c.execute('PRAGMA cache_size=10')\n"  # a small cache: pages reach the file before the commit
        "c.execute('BEGIN')\n"
        "for i in range(20000):\n"
        "    c.execute('INSERT INTO stored_events VALUES (?,?,?,?)', ('%032x' % i, 1, 't', b'x' * 800))\n"
        "os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=False)
    assert Path(f"{db}-journal").exists()
    store = open_store(f"sqlite:///{db}", create=False)
    assert store.position() == 0
    assert _journal(db) == "wal"
    assert store.events_by_topic() == {}


WRITER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
assert c.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO stored_events VALUES ('%032x', 1, 't', x'00')" % int(sys.argv[3]))
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")
time.sleep(5)
"""


def test_opening_a_store_an_import_has_to_itself_waits_for_it_or_says_it_is_busy(tmp_path: Path) -> None:
    from ersattning.store import StoreError
    from ersattning.store.sqlite import _wait_for_bulk_writer

    db = tmp_path / "s.db"
    open_store(f"sqlite:///{db}").close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "1.5", "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "holding"
        started = time.monotonic()
        store = open_store(f"sqlite:///{db}", create=False)  # waits for the transaction, then puts the store back in WAL
        assert time.monotonic() - started > 0.5 and store.position() == 1 and _journal(db) == "wal"
        store.close()
    finally:
        writer.kill()
        writer.wait()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "30", "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError, match="is busy: an import is writing it"):
            _wait_for_bulk_writer(db, seconds=0.5)
    finally:
        writer.kill()
        writer.wait()

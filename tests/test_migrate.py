"""``ersattning store migrate``: old JSON events rewritten compactly, crash-safe."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ersattning import projection
from ersattning.domain import Category, Registration, Visit
from ersattning.store import open_store
from ersattning.store.application import CompactMapper
from ersattning.store.encoding import COMPACT_TAG
from ersattning.synth import RegionSpec
from tests.test_compact_store import _as_legacy, _rows
from tests.test_projection import _assert_same

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ersattning.cli.main", *args], capture_output=True, text=True, env=env, timeout=600)


def _stored(path: Path) -> list[tuple[int, str, int, str, bytes]]:
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
        return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), bytes(r[4])) for r in rows]
    finally:
        con.close()


def _stores(tmp_path: Path, spec: RegionSpec) -> tuple[Path, Path]:
    """The same history in a compact store and in an old (JSON) one."""
    rows = _rows(spec)
    new = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    new.append(*rows)
    new.checkpoint()
    new.close()
    old = open_store(f"sqlite:///{tmp_path / 'old.db'}")
    old.append(*_as_legacy(old, rows))
    old.checkpoint()
    old.close()
    return tmp_path / "old.db", tmp_path / "new.db"


def test_migrate_rewrites_old_events_compactly_keeping_ids_and_the_store_id(tmp_path: Path) -> None:
    old, new = _stores(tmp_path, RegionSpec(recipients=10, months=2, chunk_recipients=5, seed=3))
    before = _stored(old)
    store_id = open_store(f"sqlite:///{old}").store_id
    run = _cli("store", "migrate", "--store", f"sqlite:///{old}")
    assert run.returncode == 0, run.stderr
    assert f"rewrote {len(before):,} of {len(before):,} events compactly" in run.stdout
    after = _stored(old)
    assert [r[:3] for r in after] == [r[:3] for r in before]  # every notification id, aggregate and version kept
    assert [r[3:] for r in after] == [r[3:] for r in _stored(new)]  # the very topics and states the bulk encoder wrote
    migrated = open_store(f"sqlite:///{old}", create=False)
    assert migrated.store_id == store_id
    _assert_same(projection.load(migrated), projection.load(open_store(f"sqlite:///{new}", create=False)))
    assert old.stat().st_size < 0.5 * sum(1 for _ in before) * 500
    again = _cli("store", "migrate", "--store", f"sqlite:///{old}")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_migration_killed_midway_leaves_the_old_store_intact_and_the_next_run_finishes(tmp_path: Path) -> None:
    old, new = _stores(tmp_path, RegionSpec(recipients=60, months=6, chunk_recipients=30, seed=5))
    before = _stored(old)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "ersattning.cli.main", "store", "migrate", "--store", f"sqlite:///{old}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tmp = old.with_name(old.name + ".migrating")
    deadline = time.monotonic() + 120
    while not (tmp.exists() and tmp.stat().st_size > 0) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the migration ended before it could be killed: make the store bigger"
    assert tmp.exists()  # killed while copying
    assert _stored(old) == before  # untouched
    reference = projection.load(open_store(f"sqlite:///{new}", create=False))
    _assert_same(projection.load(open_store(f"sqlite:///{old}", create=False)), reference)
    run = _cli("store", "migrate", "--store", f"sqlite:///{old}")
    assert run.returncode == 0, run.stderr
    assert not tmp.exists()
    assert all(r[3].startswith(f"{COMPACT_TAG}:") for r in _stored(old))
    store = open_store(f"sqlite:///{old}", create=False)
    store.projection_cache = None
    projection.update(store, rebuild=True)
    _assert_same(projection.load(store), reference)


def test_events_with_microseconds_or_an_old_class_version_are_migrated_exactly(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    mapper = store.app.mapper
    assert isinstance(mapper, CompactMapper)
    t = datetime(2024, 3, 1, 9, 0, 0, 250, tzinfo=timezone(timedelta(hours=1)))
    v = Visit.plan(key="a", recipient_id=UUID(int=3), provider="P. 1", team="T", category=Category.escort, planned_start=t, planned_minutes=30, recorded_at=t)
    v.perform(actual_start=t, actual_end=t + timedelta(minutes=20), staff=("x",), registration=Registration.nfc, recorded_at=t + timedelta(seconds=1))
    events = v.collect_events()
    old_plan = mapper.to_legacy_stored_event(events[0])
    state = json.loads(old_plan.state)
    del state["staff_planned"], state["class_version"]  # as Visit.Planned v1 was stored
    store.recorder.insert_events([StoredEvent(old_plan.originator_id, 1, old_plan.topic, json.dumps(state).encode()), mapper.to_legacy_stored_event(events[1])])
    store.close()
    run = _cli("store", "migrate", "--store", f"sqlite:///{tmp_path / 's.db'}")
    assert run.returncode == 0, run.stderr
    assert [r[3] for r in _stored(tmp_path / "s.db")] == ["c1:VPL", "c1:VPE"]
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", create=False)
    got: Visit = store.app.repository.get(v.id)
    assert vars(got) == vars(v) and got.staff_planned == 1
    assert list(store.app.events.get(v.id))[1] == events[1]  # microseconds kept


def test_migrate_refuses_a_store_that_is_not_there(tmp_path: Path) -> None:
    run = _cli("store", "migrate", "--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert run.returncode != 0 and "no store at" in run.stderr and "Traceback" not in run.stderr


def test_a_postgresql_store_is_migrated_in_one_transaction(postgres_url: str, tmp_path: Path) -> None:
    rows = _rows(RegionSpec(recipients=8, months=2, chunk_recipients=4, seed=9))
    store = open_store(postgres_url)
    store.append(*_as_legacy(store, rows))
    before = [(n.id, n.originator_id, n.originator_version) for n in store.recorder.select_notifications(1, 100_000)]
    store.close()
    run = _cli("store", "migrate", "--store", postgres_url)
    assert run.returncode == 0, run.stderr
    assert f"rewrote {len(before):,} of {len(before):,} events compactly" in run.stdout
    store = open_store(postgres_url, create=False)
    notes = store.recorder.select_notifications(1, 100_000)
    assert [(n.id, n.originator_id, n.originator_version) for n in notes] == before
    assert [(n.topic, n.state) for n in notes] == list(zip(rows[2], rows[3], strict=True))  # what the bulk encoder writes
    reference = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    reference.append(*rows)
    _assert_same(projection.load(store), projection.load(reference))
    assert "nothing to do" in _cli("store", "migrate", "--store", postgres_url).stdout

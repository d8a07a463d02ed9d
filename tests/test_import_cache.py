"""The import leaves the projection current: the saved cache equals a rebuild, and the first compare reads nothing.

The importer decodes each committed batch in memory and folds them at the end
(ersattning/projection/feed.py); a kill anywhere, a failed batch, or another
writer between the batches still leaves a cache equal to a rebuild.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ersattning import projection
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.visits import import_visits
from ersattning.privacy import Pseudonymiser
from ersattning.projection.feed import ImportFeed
from ersattning.store import Store, StoreError, open_store
from ersattning.store import sqlite_writer as append_process
from ersattning.synth import RegionSpec, iter_chunks
from tests.test_cli import run
from tests.test_projection import _assert_same

P = Pseudonymiser(b"k" * 32)
ENV = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
CANONICAL = "recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"
DECISIONS = "recipient,decision_id,provider,category,granted,per,valid_from,valid_to,area,birth_year\n"


def _mixed(i: int) -> str:
    return "performed" if i % 5 else ("cancelled_by_recipient" if i % 10 else "planned")


def _visits(path: Path, n: int, *, prefix: str = "", late: int = 0, status_of: Callable[[int], str] = _mixed) -> Path:
    """``n`` visits, row ``i``'s status ``status_of(i)`` (by default performed, cancelled and planned-only rows);
    ``late`` minutes moves every third performed visit's actual times (a correction when the same visits were
    imported before)."""
    t0 = datetime(2024, 3, 4, 7, 0)
    with path.open("w", encoding="utf-8") as f:
        f.write(CANONICAL)
        for i in range(n):
            s = t0 + timedelta(days=i // 40, minutes=(i % 40) * 15)
            a, b = s.strftime("%Y-%m-%d %H:%M"), (s + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M")
            status = status_of(i)
            x, y = (a, b) if status == "performed" else ("", "")
            if late and status == "performed" and i % 3 == 0:
                x, y = (s + timedelta(minutes=late)).strftime("%Y-%m-%d %H:%M"), (s + timedelta(minutes=late + 10)).strftime("%Y-%m-%d %H:%M")
            f.write(f"{prefix}R{i % 50},P{i % 3},{prefix}V{i},personal_care,{a},{b},{x},{y},{prefix}S{i % 40},{status}\n")
    return path


def _decisions(path: Path) -> Path:
    rows = [f"R{i},D{i},P{i % 3},personal_care,{300 + i},month,2024-01-01,,urban,{1930 + i}" for i in range(50)]
    path.write_text(DECISIONS + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


class _Reads:
    """Counts the notifications a store object reads."""

    def __init__(self, store: Store) -> None:
        self.events = 0
        inner = store.read_pages

        def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for page in inner(*args, **kwargs):
                self.events += len(page)
                yield page

        store.read_pages = counted  # type: ignore[method-assign]


def _assert_current_and_equal_to_rebuild(url: str, as_of: str | None = None) -> None:
    """A fresh store object's load reads nothing from the log and equals a rebuild (and so do the as-of cuts)."""
    store = open_store(url, create=False)
    reads = _Reads(store)
    loaded = projection.load(store)
    assert reads.events == 0, "the first load after the import refolded events"
    assert loaded.position == store.position()
    # the cut from the part files the imports wrote, read before the rebuild below replaces them
    cut = None if as_of is None else projection.load(open_store(url, create=False), as_of=as_of)
    rebuilt = projection.load(open_store(url, create=False), rebuild=True)
    _assert_same(loaded, rebuilt)
    if cut is not None:
        _assert_same(cut, projection.load(open_store(url, create=False), as_of=as_of, rebuild=True))


def test_cli_imports_leave_a_cache_equal_to_a_rebuild_and_compare_reads_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    done = run("import", str(_decisions(tmp_path / "d.csv")), "--kind", "decisions", "--store", url, env=ENV)
    assert done.returncode == 0, done.stderr
    done = run("import", str(_visits(tmp_path / "a.csv", 3000)), "--store", url, "--chunk-rows", "400", env=ENV)
    assert done.returncode == 0, done.stderr
    _assert_current_and_equal_to_rebuild(url)
    # the same visits again with later actual times for some (corrections), and new ones: an incremental import
    done = run("import", str(_visits(tmp_path / "b.csv", 3600, late=7)), "--store", url, "--chunk-rows", "700", env=ENV)
    assert done.returncode == 0, done.stderr
    store = open_store(url, create=False)
    versions = projection.update(store).state.cols["version"]
    assert len(versions) == 3600 and (versions > 1).sum() > 0  # corrections were folded
    store.close()
    _assert_current_and_equal_to_rebuild(url, as_of=datetime.now().isoformat())


def test_as_of_cuts_after_two_imports_equal_a_rebuild(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 1000))], Mapping(), P, ImportOptions(chunk_rows=300, now=datetime(2024, 6, 1)))
    import_visits(store, [str(_visits(tmp_path / "b.csv", 1500, late=5))], Mapping(), P, ImportOptions(chunk_rows=300, now=datetime(2024, 7, 1)))
    store.close()
    _assert_current_and_equal_to_rebuild(url, as_of="2024-06-15")


def test_a_memory_store_keeps_its_projection_current(tmp_path: Path) -> None:
    store = open_store("memory://")
    import_visits(store, [str(_visits(tmp_path / "a.csv", 900))], Mapping(), P, ImportOptions(chunk_rows=200))
    reads = _Reads(store)
    loaded = projection.load(store)
    assert reads.events == 0 and loaded.position == store.position() == 900
    fresh = open_store("memory://")
    import_visits(fresh, [str(_visits(tmp_path / "a.csv", 900))], Mapping(), P, ImportOptions(chunk_rows=900))
    _assert_same(loaded, projection.load(fresh, rebuild=True))


def test_another_writer_between_the_batches_is_folded_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process imports (and saves the cache) while this import is between its batches."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    other = _visits(tmp_path / "other.csv", 700, prefix="X")
    store = open_store(url)
    committed = ImportFeed.committed
    ran: list[int] = []

    def meanwhile(self: ImportFeed, first_ids: list[int | None]) -> None:
        committed(self, first_ids)
        if len(first_ids) in (1, 3) and len(first_ids) not in ran:
            ran.append(len(first_ids))
            done = run("import", str(other) if len(ran) == 1 else str(_visits(tmp_path / "o2.csv", 300, prefix="Y")), "--store", url, "--chunk-rows", "250", env=ENV)
            assert done.returncode == 0, done.stderr

    monkeypatch.setattr(ImportFeed, "committed", meanwhile)
    report = import_visits(store, [str(_visits(tmp_path / "a.csv", 2000))], Mapping(), P, ImportOptions(chunk_rows=400))
    assert ran == [1, 3] and report.events_written == 2000
    store.close()
    check = open_store(url, create=False)
    assert check.position() == 3000
    check.close()
    _assert_current_and_equal_to_rebuild(url)


def test_a_failed_batch_goes_nowhere_near_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not append_process.available():
        pytest.skip("the child writer needs Linux")
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 500))], Mapping(), P, ImportOptions(chunk_rows=500))
    result = append_process.AppendProcess.result
    calls: list[int] = []

    def failing(self: append_process.AppendProcess) -> int:
        if self._in_flight:
            calls.append(1)
            if len(calls) == 3:
                self._in_flight = False
                self._proc.stdout.readline() if self._proc.stdout else None  # the batch was written: pretend it was refused
                raise append_process.AppendFailed("disk full", conflict=False)
        return result(self)

    monkeypatch.setattr(append_process.AppendProcess, "result", failing)
    with pytest.raises(StoreError, match="disk full"):
        import_visits(store, [str(_visits(tmp_path / "b.csv", 2000, prefix="B"))], Mapping(), P, ImportOptions(chunk_rows=400))
    store.close()
    cached = projection.cache.ProjectionCache(tmp_path / "s.db.projection").load(open_store(url, create=False).store_id)
    assert cached is not None and cached.position == 500  # the import's batches were never folded
    store = open_store(url, create=False)
    reads = _Reads(store)
    loaded = projection.load(store)
    assert reads.events == store.position() - 500  # the next load folds the gap from the store
    _assert_same(loaded, projection.load(open_store(url, create=False), rebuild=True))


KILLED_IMPORT = """
import os, random, signal, sys
from ersattning.cli.main import main
from ersattning.projection import cache

where, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if where == "before-cache":  # every batch committed and folded in memory, its part files written, the cache not saved
    cache.RangeFold.save = die
elif where == "at-meta":  # the cache's files all written but meta.json, which names them
    write_text_atomic = cache.write_text_atomic
    def meta(path, *args):
        if path.name == "meta.json":
            die()
        write_text_atomic(path, *args)
    cache.write_text_atomic = meta
elif where == "in-cache":  # killed at a random file the import writes into the cache: part files as it folds
    # (a fold every 1,000 events here), then the save's files
    from ersattning.projection import feed
    feed.FOLD_EVENTS = 1000
    cut, written = rng.randrange(1, 20), [0]
    write_atomic, write_text_atomic = cache.write_atomic, cache.write_text_atomic
    def counted(path, *args):
        written[0] += 1
        if written[0] == cut:
            die()
        return (write_text_atomic if path.suffix == ".json" else write_atomic)(path, *args)
    cache.write_atomic = cache.write_text_atomic = counted
sys.argv = ["ersattning", *sys.argv[3:]]
main()
"""


@pytest.mark.parametrize(("where", "seed"), [("before-cache", 0), ("at-meta", 0), ("in-cache", 1), ("in-cache", 2), ("in-cache", 3), ("in-cache", 6), ("random", 4), ("random", 5)])
def test_a_killed_import_leaves_a_projection_equal_to_a_rebuild(tmp_path: Path, where: str, seed: int) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = run("import", str(_visits(tmp_path / "a.csv", 800)), "--store", url, "--chunk-rows", "300", env=ENV)
    assert first.returncode == 0, first.stderr
    args = ["import", str(_visits(tmp_path / "b.csv", 6000, late=3)), "--store", url, "--chunk-rows", "500"]
    script = tmp_path / "killed.py"
    script.write_text(KILLED_IMPORT)
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), where, str(seed), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if where == "random":
        try:
            proc.wait(timeout=random.Random(seed).uniform(1.0, 4.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    proc.wait()
    if where != "random":
        assert proc.returncode == -signal.SIGKILL
    store = open_store(url, create=False)
    loaded = projection.load(store)
    assert loaded.position == store.position() >= 800
    _assert_same(loaded, projection.load(open_store(url, create=False), rebuild=True))
    _assert_same(projection.load(open_store(url, create=False), as_of="2030-01-01"), projection.load(open_store(url, create=False), as_of="2030-01-01", rebuild=True))



def test_a_postgres_import_keeps_its_projection_current(tmp_path: Path, postgres_url: str) -> None:
    """The COPY under the table lock tells each batch's first notification id, so the import feeds the cache."""
    store = open_store(postgres_url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 1000))], Mapping(), P, ImportOptions(chunk_rows=300))
    import_visits(store, [str(_visits(tmp_path / "b.csv", 1500, late=5))], Mapping(), P, ImportOptions(chunk_rows=400))
    store.close()
    _assert_current_and_equal_to_rebuild(postgres_url, as_of="2030-01-01")


@pytest.mark.parametrize("scheme", ["sqlite", "memory", "postgresql"])
def test_the_writer_reports_the_notification_ids_its_batches_got(tmp_path: Path, scheme: str, request: pytest.FixtureRequest) -> None:
    """Each committed batch's rows got the ids first … first + n - 1, in the order of ``EventBatch.columns()``."""
    urls = {"sqlite": f"sqlite:///{tmp_path / 's.db'}", "memory": "memory://"}
    store = open_store(urls[scheme] if scheme in urls else request.getfixturevalue("postgres_url"))
    batches = list(iter_chunks(RegionSpec(recipients=6, months=1, chunk_recipients=2, seed=3)))
    ids0, versions0, topics0, states0 = batches[0].columns()
    store.append(ids0, versions0, topics0, states0)  # another writer's events first
    before = store.position()
    assert before == len(states0)
    writer = store.bulk_writer()
    try:
        for batch in batches[1:]:
            writer.submit(batch)
        writer.wait()
    finally:
        writer.close()
    expected, first = [], before + 1
    for batch in batches[1:]:
        expected.append(first)
        first += len(batch)
    assert writer.first_ids == expected
    stored = list(store.read_pages(before))
    ids = [i.decode() for page in stored for i in page.originator_id]
    nids = [int(n) for page in stored for n in page.notification_id]
    for batch, first in zip(batches[1:], expected, strict=True):
        n = len(batch)
        at = first - before - 1
        assert nids[at : at + n] == list(range(first, first + n))
        assert ids[at : at + n] == batch.columns()[0]

"""The import's feed in the store's writer process: the SQLite writer decodes each batch it committed and writes
its part files; the importer only folds them (ersattning/projection/feed.py, docs/ARCHITECTURE.md).

Whatever the writer could not decode, a writer killed mid-import, or a fallback to the in-process feed, the
saved cache equals a rebuild, as-of cuts included.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.visits import import_visits
from ersattning.projection import feed
from ersattning.projection.feed import ImportFeed
from ersattning.store import StoreError, open_store
from ersattning.store import sqlite_writer as append_process
from ersattning.store.sqlite_writer import AppendProcess
from tests import writer_hooks
from tests.test_import_cache import P, _assert_current_and_equal_to_rebuild, _Reads, _visits
from tests.test_projection import _assert_same
from tests.test_store import _departures

pytestmark = pytest.mark.skipif(not append_process.available(), reason="the child writer needs Linux")


def _parts(tmp_path: Path) -> list[tuple[int, int]]:
    return [(int(p.stem.split("-")[1]), int(p.stem.split("-")[2])) for p in (tmp_path / "s.db.projection" / "visit_events").glob("part-*.parquet")]


def test_the_writer_tells_a_hook_each_committed_batch_and_a_failing_hook_fails_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    open_store(f"sqlite:///{db}").close()
    batches = [_departures([f"{i:032x}".encode() for i in range(a, a + 100)], 1) for a in (1, 101)]
    for hook, expected in (("echo", lambda k, b: f"{100 * k + 1}:100:arg:{b.ids_versions_order()[0][b.ids_versions_order()[2][0]].decode()}:1"), ("failing", lambda k, b: "-")):
        writer = AppendProcess(str(db), (f"tests.writer_hooks:{hook}", "arg"))
        try:
            for k, batch in enumerate(batches):
                ids, versions, order = batch.ids_versions_order()
                writer.send(ids, versions, order, list(zip(batch.topic, batch.state, strict=True)))
                assert writer.result() == 100
                assert writer.answers[-1] == expected(k, batch)
        finally:
            writer.close()
        db.unlink()
        open_store(f"sqlite:///{db}").close()


def test_the_importer_decodes_nothing_and_its_cache_equals_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the importer's process the feed's decoder fails: the writer's process decoded every batch."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 900))], Mapping(), P, ImportOptions(chunk_rows=300, now=datetime(2024, 6, 1)))

    def no(*args: object) -> None:
        raise AssertionError("the importer decoded a batch")

    monkeypatch.setattr(feed, "decode_visits", no)
    monkeypatch.setattr(feed, "decode_batch", no)
    report = import_visits(store, [str(_visits(tmp_path / "b.csv", 3000, late=4))], Mapping(), P, ImportOptions(chunk_rows=400, now=datetime(2024, 7, 1)))
    assert report.events_written > 3000 - 900
    assert max(last for _, last in _parts(tmp_path)) == store.position()
    store.close()
    _assert_current_and_equal_to_rebuild(url, as_of="2024-06-15")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(skip_every=st.integers(1, 4), chunk_rows=st.sampled_from([150, 300, 700]))
def test_batches_the_writer_did_not_decode_are_read_from_the_store(tmp_path_factory: pytest.TempPathFactory, skip_every: int, chunk_rows: int) -> None:
    tmp_path = tmp_path_factory.mktemp("skip")
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 500))], Mapping(), P, ImportOptions(chunk_rows=500, now=datetime(2024, 6, 1)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(writer_hooks.SKIP_EVERY, str(skip_every))
        mp.setattr(feed, "HOOK", "tests.writer_hooks:skipping")
        import_visits(store, [str(_visits(tmp_path / "b.csv", 2000, late=6))], Mapping(), P, ImportOptions(chunk_rows=chunk_rows, now=datetime(2024, 7, 1)))
    store.close()
    _assert_current_and_equal_to_rebuild(url, as_of="2024-06-15")


def test_a_writer_killed_mid_import_leaves_the_cache_as_it_was_and_its_parts_are_cleaned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 500))], Mapping(), P, ImportOptions(chunk_rows=500))
    result = AppendProcess.result
    answered: list[int] = []

    def killed(self: AppendProcess) -> int:
        if self._in_flight and len(self.answers) == 3:  # three batches committed and their parts written
            os.kill(self._proc.pid, signal.SIGKILL)
        count = result(self)
        answered.append(count)
        return count

    monkeypatch.setattr(AppendProcess, "result", killed)
    with pytest.raises(StoreError, match="writer process stopped"):
        import_visits(store, [str(_visits(tmp_path / "b.csv", 3000, prefix="B"))], Mapping(), P, ImportOptions(chunk_rows=400))
    store.close()
    assert any(last > 500 for _, last in _parts(tmp_path))  # the writer's parts of the batches it committed
    fresh = open_store(url, create=False)
    assert projection.cache.ProjectionCache(tmp_path / "s.db.projection").meta_position() == 500
    reads = _Reads(fresh)
    loaded = projection.load(fresh)
    assert reads.events == fresh.position() - 500 > 0  # the next load folds the import's committed batches from the store
    _assert_same(loaded, projection.load(open_store(url, create=False), rebuild=True))
    _assert_same(projection.load(open_store(url, create=False), as_of="2030-01-01"), projection.load(open_store(url, create=False), as_of="2030-01-01", rebuild=True))
    ranges = sorted(_parts(tmp_path))
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False) if a[0] != b[0])  # no part overlaps another


def test_a_thread_writer_keeps_the_in_process_feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(append_process, "available", lambda: False)
    feeds: list[ImportFeed] = []
    finish = ImportFeed.finish

    def recorded(self: ImportFeed) -> None:
        feeds.append(self)
        finish(self)

    monkeypatch.setattr(ImportFeed, "finish", recorded)
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 1200))], Mapping(), P, ImportOptions(chunk_rows=300))
    store.close()
    assert [f.in_writer for f in feeds] == [False]  # (SQLite's append does not tell its ids: the next load folds them)
    _assert_same(projection.load(open_store(url, create=False)), projection.load(open_store(url, create=False), rebuild=True))
    monkeypatch.undo()
    store = open_store(url, create=False)
    import_visits(store, [str(_visits(tmp_path / "b.csv", 1500, late=2))], Mapping(), P, ImportOptions(chunk_rows=300))
    store.close()
    _assert_current_and_equal_to_rebuild(url, as_of="2030-01-01")

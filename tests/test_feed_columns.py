"""The import's feed folds what it wrote from the columns it encoded, not by decoding its own states
(ersattning/projection/feed.py, docs/ARCHITECTURE.md).

The tables built from an import's columns equal the decoder's for the same batch (every visit event class, new
visits and a re-import's outcomes and corrections); whatever the writer does (killed mid-import, a thread
instead of a process), the saved cache equals a rebuild, as-of cuts included.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping as ColumnMap
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.domain import Visit
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.visits import import_visits
from ersattning.projection import feed
from ersattning.projection.decode import batch_visits
from ersattning.projection.feed import ImportFeed, decode_batch
from ersattning.store import StoreError, open_store
from ersattning.store import sqlite_writer as append_process
from ersattning.store.bulk import EventBatch, encoder_for
from ersattning.store.compact import columns_table, decode_columns, encode_columns, plain_table
from ersattning.store.sqlite_writer import AppendProcess
from tests.test_import_cache import P, _assert_current_and_equal_to_rebuild, _Reads, _visits
from tests.test_projection import _assert_same


def _parts(tmp_path: Path) -> list[tuple[int, int]]:
    return [(int(p.stem.split("-")[1]), int(p.stem.split("-")[2])) for p in (tmp_path / "s.db.projection" / "visit_events").glob("part-*.parquet")]


def _outcomes(path: Path, n: int, *, performed_from: int, late: int = 0) -> Path:
    """``n`` visits whose rows below ``performed_from`` stay planned and the rest are performed (every seventh
    cancelled); ``late`` moves every third performed visit's times. Imported after the same visits all planned,
    this writes ``Performed``, ``Cancelled`` and (with ``late`` on a third import) ``Corrected`` events."""

    def status(i: int) -> str:
        return "planned" if i < performed_from else ("cancelled_by_provider" if i % 7 == 0 else "performed")

    return _visits(path, n, late=late, status_of=status)


class _Compared:
    """Checks each batch an import submits: the tables built from its columns equal the decoded batch's."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.classes: set[type] = set()
        self.batches = 0
        submitted = ImportFeed.submitted

        def compared(feed_: ImportFeed, batch: EventBatch) -> None:
            first = 1000 + 17 * self.batches
            built = batch_visits(batch.sourced(), first)
            decoded = decode_batch(batch.in_order(), first).visits
            assert built is not None
            assert built.kinds.keys() == decoded.kinds.keys()
            for kind, table in decoded.kinds.items():
                assert plain_table(built.kinds[kind]).equals(table), kind
            self.classes |= {cls for cls, _ in batch.sources}
            self.batches += 1
            submitted(feed_, batch)

        monkeypatch.setattr(ImportFeed, "submitted", compared)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(50, 700), split=st.floats(0.0, 1.0), chunk_rows=st.sampled_from([60, 150, 400]), late=st.sampled_from([0, 5]))
def test_tables_built_from_an_imports_columns_equal_its_decoded_batches(tmp_path_factory: pytest.TempPathFactory, n: int, split: float, chunk_rows: int, late: int) -> None:
    tmp_path = tmp_path_factory.mktemp("built")
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    with pytest.MonkeyPatch.context() as mp:
        compared = _Compared(mp)
        options = ImportOptions(chunk_rows=chunk_rows, now=datetime(2024, 6, 1))
        import_visits(store, [str(_outcomes(tmp_path / "a.csv", n, performed_from=n))], Mapping(), P, options)  # all planned
        import_visits(store, [str(_outcomes(tmp_path / "b.csv", n, performed_from=int(split * n)))], Mapping(), P, options)
        import_visits(store, [str(_outcomes(tmp_path / "c.csv", n // 2, performed_from=0, late=late))], Mapping(), P, options)
        import_visits(store, [str(_visits(tmp_path / "d.csv", n, prefix="N"))], Mapping(), P, options)  # new visits, combined events
    store.close()
    assert compared.batches > 0
    assert {Visit.Planned, Visit.PlannedAndPerformed, Visit.PlannedAndCancelled} <= compared.classes
    _assert_current_and_equal_to_rebuild(url, as_of="2024-05-01")


def test_a_reimport_builds_every_visit_event_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality above, with every class the import writes present (outcomes and corrections of known visits)."""
    compared = _Compared(monkeypatch)
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    options = ImportOptions(chunk_rows=200, now=datetime(2024, 6, 1))
    import_visits(store, [str(_outcomes(tmp_path / "a.csv", 600, performed_from=600))], Mapping(), P, options)
    import_visits(store, [str(_outcomes(tmp_path / "b.csv", 600, performed_from=100))], Mapping(), P, options)
    import_visits(store, [str(_outcomes(tmp_path / "c.csv", 600, performed_from=100, late=7))], Mapping(), P, options)
    import_visits(store, [str(_visits(tmp_path / "d.csv", 300, prefix="N"))], Mapping(), P, options)
    store.close()
    assert compared.classes == {Visit.Planned, Visit.Performed, Visit.Cancelled, Visit.Corrected, Visit.PlannedAndPerformed, Visit.PlannedAndCancelled}
    _assert_current_and_equal_to_rebuild(url, as_of="2024-05-01")


def test_the_import_decodes_nothing_and_its_cache_equals_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 900))], Mapping(), P, ImportOptions(chunk_rows=300, now=datetime(2024, 6, 1)))

    def no(*args: object) -> None:
        raise AssertionError("the import decoded a batch")

    monkeypatch.setattr(feed, "decode_batch", no)
    monkeypatch.setattr(feed, "decode_visits", no)
    monkeypatch.setattr(feed, "FOLD_EVENTS", 1000)  # folds as it goes: several groups
    report = import_visits(store, [str(_visits(tmp_path / "b.csv", 3000, late=4))], Mapping(), P, ImportOptions(chunk_rows=400, now=datetime(2024, 7, 1)))
    assert report.events_written > 3000 - 900
    assert max(last for _, last in _parts(tmp_path)) == store.position()
    store.close()
    _assert_current_and_equal_to_rebuild(url, as_of="2024-06-15")


@pytest.mark.skipif(not append_process.available(), reason="the child writer needs Linux")
def test_a_writer_killed_mid_import_leaves_the_cache_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 500))], Mapping(), P, ImportOptions(chunk_rows=500))
    monkeypatch.setattr(feed, "FOLD_EVENTS", 800)  # the feed writes part files before the writer dies
    result = AppendProcess.result

    def killed(self: AppendProcess) -> int:
        if self._in_flight and len(self.first_ids) == 5:  # five batches committed
            os.kill(self._proc.pid, signal.SIGKILL)
        return result(self)

    monkeypatch.setattr(AppendProcess, "result", killed)
    with pytest.raises(StoreError, match="writer process stopped"):
        import_visits(store, [str(_visits(tmp_path / "b.csv", 3000, prefix="B"))], Mapping(), P, ImportOptions(chunk_rows=400))
    store.close()
    fresh = open_store(url, create=False)
    assert projection.cache.ProjectionCache(tmp_path / "s.db.projection").meta_position() == 500
    reads = _Reads(fresh)
    loaded = projection.load(fresh)
    assert reads.events == fresh.position() - 500 > 0  # the next load folds the import's committed batches from the store
    _assert_same(loaded, projection.load(open_store(url, create=False), rebuild=True))
    _assert_same(projection.load(open_store(url, create=False), as_of="2030-01-01"), projection.load(open_store(url, create=False), as_of="2030-01-01", rebuild=True))
    ranges = sorted(_parts(tmp_path))
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False) if a[0] != b[0])  # no part overlaps another


def test_a_thread_writer_keeps_the_projection_current_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(append_process, "available", lambda: False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    import_visits(store, [str(_visits(tmp_path / "a.csv", 1200))], Mapping(), P, ImportOptions(chunk_rows=300))
    store.close()
    # SQLite's own append does not tell its ids: the feed stops, and the next load folds them
    _assert_same(projection.load(open_store(url, create=False)), projection.load(open_store(url, create=False), rebuild=True))


# -- the generic table from columns, for every visit event class --------------------------------------

_SECOND = np.timedelta64(1, "s")


def _columns(event_class: type, n: int, rng: np.random.Generator, wide: bool) -> dict[str, Any]:
    """Columns of ``n`` events as the encoder takes them: datetimes (with fractions when ``wide``), ids as hex,
    strings with repeats, enums as values, staff tuples of one or two names."""
    enc = encoder_for(event_class)
    base = np.datetime64("2024-03-31T00:30:00") + rng.integers(0, 3600 * 24 * 30, n) * _SECOND
    out: dict[str, Any] = {}
    for f in enc.fields:
        if f.name == "originator_topic":
            continue
        kind = f.python_type
        if kind is datetime:
            t = base + rng.integers(0, 7200, n) * _SECOND
            out[f.name] = t.astype("datetime64[us]") + (rng.integers(0, 1_000_000, n) * np.timedelta64(1, "us") if wide else np.timedelta64(0, "us"))
        elif kind is int:
            out[f.name] = rng.integers(1, 40_000 if f.name == "planned_minutes" else 3, n)
        elif f.name == "recipient_id":
            out[f.name] = np.array([f"{x:032x}" for x in rng.integers(0, 2**62, n)], dtype=object)
        elif kind is str:
            names = ["P1", "P1", "Team Söder", "ab" * 16, ""]
            out[f.name] = pd.Categorical(rng.choice(names, n)) if f.name != "reason" else rng.choice(names, n).astype(object)
        elif kind is tuple:
            pairs = [("a" * 32,), ("S1", "S2"), ("S3",), ("0123456789abcdef" * 2, "S1")]
            out[f.name] = pd.Series([pairs[i] for i in rng.integers(0, len(pairs), n)], dtype=object)
        else:
            out[f.name] = rng.choice([m.value for m in kind], n)
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 60), wide=st.booleans(), which=st.sampled_from([Visit.Planned, Visit.Performed, Visit.Cancelled, Visit.Corrected, Visit.PlannedAndPerformed, Visit.PlannedAndCancelled]))
def test_columns_table_equals_decoding_the_encoded_states(seed: int, n: int, wide: bool, which: type) -> None:
    rng = np.random.default_rng(seed)
    columns: ColumnMap[str, Any] = _columns(which, n, rng, wide)
    data, offsets = encode_columns(which, n, columns)
    states = [data[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    decoded = decode_columns(which, states)
    assert columns_table(which, n, columns).equals(decoded)
    assert plain_table(columns_table(which, n, columns, dictionary=True)).equals(decoded)
    rows = rng.permutation(n)[: max(1, n // 2)]
    some = decode_columns(which, [states[i] for i in rows.tolist()])
    assert columns_table(which, n, columns, rows).equals(some)
    coded = columns_table(which, n, columns, rows, dictionary=True)
    assert any(pa.types.is_dictionary(t) or (pa.types.is_list(t) and pa.types.is_dictionary(t.value_type)) for t in coded.schema.types)
    assert plain_table(coded).equals(some)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 300), prefixes=st.integers(1, 3), parts=st.integers(1, 3))
def test_the_insert_order_sorts_by_whole_id_then_version_when_first_words_tie(seed: int, n: int, prefixes: int, parts: int) -> None:
    """Ids that share their first 16 hex digits (and one id's several versions) still go in (id, version) order."""
    rng = np.random.default_rng(seed)
    heads = [f"{x:016x}" for x in rng.integers(0, 2**62, prefixes)]
    ids = np.array([heads[h] + f"{t:016x}" for h, t in zip(rng.integers(0, prefixes, n), rng.integers(0, 8, n), strict=True)], dtype="S32")
    versions = rng.integers(1, 5, n)
    keep = ~pd.DataFrame({"i": ids, "v": versions}).duplicated().to_numpy()  # (id, version) is unique in a batch
    ids, versions = ids[keep], versions[keep]
    batch = EventBatch.empty()
    cuts = np.linspace(0, len(ids), parts + 1).astype(int)
    batch.originator_id = [ids[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    batch.version = [versions[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    all_ids, all_versions, order = batch.ids_versions_order()
    expected = np.lexsort((versions, ids))
    assert (all_ids[order] == ids[expected]).all() and (all_versions[order] == versions[expected]).all()


def test_as_of_reads_part_files_of_plain_and_of_coded_text_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache whose first part files were written by a load (text plain, decoded from the store) and the rest by an
    import's feed (text dictionary-coded): the as-of cuts, which read them all back, equal a rebuild's."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    options = ImportOptions(chunk_rows=200, now=datetime(2024, 6, 1))
    with pytest.MonkeyPatch.context() as mp:
        for name in ("submitted", "committed", "finish"):
            mp.setattr(ImportFeed, name, lambda *args: None)
        import_visits(store, [str(_outcomes(tmp_path / "a.csv", 500, performed_from=500))], Mapping(), P, options)
    projection.load(store)  # the load folds the import from the store and writes its parts
    plain = _parts(tmp_path)
    import_visits(store, [str(_outcomes(tmp_path / "b.csv", 500, performed_from=150, late=4))], Mapping(), P, options)
    import_visits(store, [str(_visits(tmp_path / "c.csv", 200, prefix="N"))], Mapping(), P, options)
    store.close()
    coded = [p for p in (tmp_path / "s.db.projection" / "visit_events").glob("part-*.parquet") if (int(p.stem.split("-")[1]), int(p.stem.split("-")[2])) not in plain]
    assert plain and coded
    assert any(pa.types.is_dictionary(t) for p in coded for t in pq.read_schema(p).types)
    assert not any(pa.types.is_dictionary(t) for p in (tmp_path / "s.db.projection" / "visit_events").glob("part-*.parquet") for t in pq.read_schema(p).types if (int(p.stem.split("-")[1]), int(p.stem.split("-")[2])) in plain)
    # every cut from these part files first: a rebuild replaces them
    cuts = {as_of: projection.load(open_store(url, create=False), as_of=as_of) for as_of in ("2024-03-10", "2024-05-01", "2024-07-01")}
    _assert_current_and_equal_to_rebuild(url)
    for as_of, cut in cuts.items():
        _assert_same(cut, projection.load(open_store(url, create=False), as_of=as_of, rebuild=True))

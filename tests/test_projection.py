"""The columnar projection: exact folds, incremental = one pass, as-of, cache life cycle."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.domain import Area, CancelledBy, CancelReason, Category, Per, Provider, Recipient, Registration, StayKind, Visit
from ersattning.store import open_store
from ersattning.store.bulk import EventBatch
from ersattning.synth import RegionSpec, iter_chunks
from tests.conftest import BACKENDS

SMALL = RegionSpec(recipients=12, months=2, chunk_recipients=4, seed=7)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _hand_made(store) -> dict[str, Visit]:
    """A tiny history whose every projected value is worked out by hand below."""
    p = Provider.register(code="P1", name="Omsorg Öst AB", ownership="private", teams=("P1-A",), recorded_at=_utc(2023, 1, 1, 9))
    r = Recipient.enrol(pseudonym="abc", birth_year=1936, area=Area.rural, enrolled_on=date(2024, 3, 1), recorded_at=_utc(2024, 3, 1, 9))
    r.choose_provider("P1", date(2024, 3, 1), _utc(2024, 3, 1, 9))
    r.grant(decision_id="d1", category=Category.personal_care, granted_minutes=1800, per=Per.month, valid_from=date(2024, 3, 1), valid_to=None, recorded_at=_utc(2024, 3, 1, 9))
    r.revise(decision_id="d1", granted_minutes=2400, valid_from=date(2024, 4, 1), recorded_at=_utc(2024, 3, 28, 9))
    r.start_stay(stay_id="s1", kind=StayKind.hospital, start=date(2024, 4, 10), recorded_at=_utc(2024, 4, 10, 8))
    r.end_stay(stay_id="s1", end=date(2024, 4, 15), recorded_at=_utc(2024, 4, 15, 8))
    common = dict(recipient_id=r.id, provider="P1", team="P1-A")
    # 1. performed across the spring DST change (2024-03-31 02:00 → 03:00 local):
    #    planned 01:30 local = 00:30 UTC; performed 00:30–01:10 UTC = 40 minutes although the wall clock says 01:30–03:10
    a = Visit.plan(key="a", category=Category.personal_care, planned_start=_utc(2024, 3, 31, 0, 30), planned_minutes=45, recorded_at=_utc(2024, 3, 20), **common)
    a.perform(actual_start=_utc(2024, 3, 31, 0, 30), actual_end=_utc(2024, 3, 31, 1, 10), staff=("s1", "s2"), registration=Registration.nfc, recorded_at=_utc(2024, 3, 31, 1, 12))
    # 2. registered with a forgotten stop (2 h 5 min), corrected later to 35 minutes
    b = Visit.plan(key="b", category=Category.cleaning, planned_start=_utc(2024, 4, 2, 8), planned_minutes=60, recorded_at=_utc(2024, 3, 20), **common)
    b.perform(actual_start=_utc(2024, 4, 2, 8, 5), actual_end=_utc(2024, 4, 2, 10, 10), staff=("s1",), registration=Registration.mobile, recorded_at=_utc(2024, 4, 2, 10, 11))
    b.correct(actual_start=_utc(2024, 4, 2, 8, 5), actual_end=_utc(2024, 4, 2, 8, 40), reason="forgot stop", recorded_at=_utc(2024, 4, 5, 9))
    # 3. cancelled by the recipient 90 minutes before the planned start
    c = Visit.plan(key="c", category=Category.shopping, planned_start=_utc(2024, 4, 3, 9), planned_minutes=30, recorded_at=_utc(2024, 3, 20), **common)
    c.cancel(by=CancelledBy.recipient, reason=CancelReason.declined, cancelled_at=_utc(2024, 4, 3, 7, 30), recorded_at=_utc(2024, 4, 3, 7, 30))
    # 4. planned, never registered
    d = Visit.plan(key="d", category=Category.personal_care, planned_start=_utc(2024, 4, 4, 6), planned_minutes=20, staff_planned=2, recorded_at=_utc(2024, 3, 20), **common)
    # 5. registered late, ten days after it ended
    e = Visit.plan(key="e", category=Category.laundry, planned_start=_utc(2024, 4, 5, 12), planned_minutes=30, recorded_at=_utc(2024, 3, 20), **common)
    e.perform(actual_start=_utc(2024, 4, 5, 12), actual_end=_utc(2024, 4, 5, 12, 30), staff=("s3",), registration=Registration.manual, recorded_at=_utc(2024, 4, 15, 12, 30))
    store.app.save(p, r, a, b, c, d, e)
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def test_hand_made_history_projects_exactly(store):
    _hand_made(store)
    proj = projection.load(store)
    v = proj.visits
    assert v["status"].tolist() == ["performed", "performed", "cancelled", "planned", "performed"]
    assert v["category"].tolist() == ["personal_care", "cleaning", "shopping", "personal_care", "laundry"]
    # local wall clock: 00:30 UTC on 31 March is 01:30 CET; 08:00 UTC on 2 April is 10:00 CEST
    assert v["planned_start"].tolist()[:2] == [pd.Timestamp("2024-03-31 01:30"), pd.Timestamp("2024-04-02 10:00")]
    assert v["actual_start"][0] == pd.Timestamp("2024-03-31 01:30")
    assert v["actual_minutes"].tolist()[0] == 40.0  # from UTC instants, not 100 wall-clock minutes
    assert v["actual_minutes"].tolist()[1] == 35.0 and v["corrections"].tolist()[1] == 1
    assert v["notice_minutes"].tolist()[2] == 90.0 and v["cancelled_by"][2] == "recipient" and v["cancel_reason"][2] == "declined"
    assert np.isnan(v["actual_minutes"][3]) and v["staff_planned"][3] == 2
    assert v["registration_delay_minutes"].tolist()[4] == 10 * 24 * 60
    assert (v["staff1"].tolist(), v["staff2"].tolist()[:2]) == (["s1", "s1", np.nan, np.nan, "s3"], ["s2", np.nan])
    assert set(v["provider"]) == {"P1"} and set(v["team"]) == {"P1-A"}
    rec = proj.recipients.iloc[0]
    assert (rec["pseudonym"], rec["birth_year"], rec["area"], rec["provider"]) == ("abc", 1936, "rural", "P1")
    dec = proj.decisions
    assert dec[["granted_minutes", "valid_from", "valid_to"]].values.tolist() == [
        [1800, pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-01")],
        [2400, pd.Timestamp("2024-04-01"), pd.NaT],
    ]
    assert proj.stays[["kind", "start", "end"]].values.tolist() == [["hospital", pd.Timestamp("2024-04-10"), pd.Timestamp("2024-04-15")]]
    assert proj.providers[["provider", "name", "ownership", "teams"]].values.tolist() == [["P1", "Omsorg Öst AB", "private", 1]]


def test_as_of_shows_what_was_known(store):
    _hand_made(store)
    before = projection.load(store, as_of=datetime(2024, 4, 3, 12))  # naive = Stockholm local time
    v = before.visits
    assert v["status"].tolist() == ["performed", "performed", "cancelled", "planned", "planned"]  # e not yet registered
    assert v["actual_minutes"].tolist()[1] == 125.0 and v["corrections"].tolist()[1] == 0  # before the correction
    assert before.decisions["granted_minutes"].tolist() == [1800, 2400]
    assert before.stays.empty
    early = projection.load(store, as_of=datetime(2024, 3, 19))
    assert len(early.visits) == 0 and early.decisions["granted_minutes"].tolist() == [1800]
    now = projection.load(store)
    assert now.visits["actual_minutes"].tolist()[1] == 35.0


def test_service_period_filter(store):
    _hand_made(store)
    april = projection.load(store).service_period("2024-04-01", "2024-04-05")
    assert april.visits["category"].tolist() == ["cleaning", "shopping", "personal_care"]
    assert len(april.visit_keys) == 3


def _region_rows() -> tuple[list[str], list[int], list[str], list[bytes]]:
    cols: tuple[list, list, list, list] = ([], [], [], [])
    for batch in iter_chunks(SMALL):
        for acc, part in zip(cols, batch.columns(), strict=True):
            acc.extend(part)
    return cols


ROWS = _region_rows()


def _frames(proj: projection.Projection) -> dict[str, pd.DataFrame]:
    v = proj.visits.copy()
    for c in ("recipient", "provider", "team", "staff1", "staff2"):
        v[c] = v[c].astype(object)  # vocabularies grow in arrival order; compare values
    v = pd.concat([proj.visit_keys, v], axis=1).sort_values(["key_hi", "key_lo"], ignore_index=True)
    return {"visits": v, "recipients": proj.recipients, "decisions": proj.decisions, "stays": proj.stays, "providers": proj.providers}


def _assert_same(a: projection.Projection, b: projection.Projection) -> None:
    fa, fb = _frames(a), _frames(b)
    for name in fa:
        pd.testing.assert_frame_equal(fa[name].reset_index(drop=True), fb[name].reset_index(drop=True), obj=name)


def _fresh_store():
    directory = Path(tempfile.mkdtemp(prefix="ersattning-test-"))
    return open_store(f"sqlite:///{directory / 's.db'}"), directory


@pytest.fixture(scope="module")
def one_pass() -> projection.Projection:
    """The reference: the whole region in one append and one fold, on SQLite."""
    store, directory = _fresh_store()
    store.append(*ROWS)
    proj = projection.load(store)
    yield proj
    shutil.rmtree(directory)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, len(ROWS[0]) - 1), max_size=5, unique=True))
def test_incremental_updates_equal_one_pass(one_pass, module_store_factory, backend, cuts):
    store = open_store(module_store_factory(backend))
    try:
        bounds = [0, *sorted(cuts), len(ROWS[0])]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            store.append(*(col[lo:hi] for col in ROWS))
            store.projection_cache = None  # each update starts from the Parquet cache on disk
            projection.update(store, page_size=997)
        _assert_same(projection.load(store), one_pass)
    finally:
        store.close()


def _recorded_range() -> tuple[datetime, datetime]:
    start = pd.Timestamp(SMALL.start) - pd.Timedelta(days=30)
    return start.to_pydatetime(), (start + pd.Timedelta(days=120)).to_pydatetime()


@settings(max_examples=15, deadline=None)
@given(st.tuples(st.integers(0, 120 * 24), st.integers(0, 120 * 24)))
def test_as_of_is_monotone(one_pass_store, hours):
    store = one_pass_store
    t1, t2 = sorted(hours)
    start = _recorded_range()[0]
    a = projection.load(store, as_of=start + pd.Timedelta(hours=t1))
    b = projection.load(store, as_of=start + pd.Timedelta(hours=t2))
    keys_a = set(map(tuple, a.visit_keys.to_numpy().tolist()))
    keys_b = set(map(tuple, b.visit_keys.to_numpy().tolist()))
    assert keys_a <= keys_b
    assert (a.visits["status"] != "planned").sum() <= (b.visits["status"] != "planned").sum()
    assert len(a.decisions) <= len(b.decisions)


@pytest.fixture(scope="module", params=BACKENDS)
def one_pass_store(request, module_store_factory):
    store = open_store(module_store_factory(request.param))
    store.append(*ROWS)
    projection.load(store)
    yield store
    store.close()


def test_as_of_after_everything_equals_the_current_fold(one_pass_store, one_pass):
    late = projection.load(one_pass_store, as_of=datetime(2100, 1, 1))
    _assert_same(late, one_pass)


def test_replay_is_deterministic(one_pass, store):
    store.append(*_region_rows())
    _assert_same(projection.load(store), one_pass)
    states = [s for s in store.read_pages(0)][0].state
    assert states == ROWS[3][: len(states)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cache_is_rebuilt_when_missing_stale_or_foreign(module_store_factory, backend, one_pass):
    a = open_store(module_store_factory(backend))
    a.append(*ROWS)
    projection.load(a)
    cache = a.projection_dir()
    meta = json.loads((cache / "meta.json").read_text())
    assert (cache / meta["fold"]).exists()  # each cache file is named by its position (projection/cache.py)
    assert meta["position"] == a.position() and meta["store_id"] == a.store_id

    # missing
    a.projection_cache = None
    shutil.rmtree(cache)
    _assert_same(projection.load(a), one_pass)

    # from another store: b gets a's cache files but only half the events
    b = open_store(module_store_factory(backend))
    half = len(ROWS[0]) // 2
    b.append(*(c[:half] for c in ROWS))
    shutil.copytree(cache, b.projection_dir())
    b.projection_cache = None
    assert len(projection.load(b).visit_keys) < len(one_pass.visit_keys)
    assert json.loads((b.projection_dir() / "meta.json").read_text())["store_id"] == b.store_id

    # ahead of the store (stale): position beyond the log
    meta = json.loads((cache / "meta.json").read_text())
    meta["position"] = a.position() + 1000
    (cache / "meta.json").write_text(json.dumps(meta))
    a.projection_cache = None
    _assert_same(projection.load(a), one_pass)


def test_incremental_update_reads_only_new_notifications(store, monkeypatch):
    n = len(ROWS[0])
    store.append(*(c[: n - 50] for c in ROWS))
    projection.load(store)
    store.append(*(c[n - 50 :] for c in ROWS))
    seen: list[int] = []
    original = store.read_pages

    def counting(after, *args, **kwargs):
        seen.append(after)
        yield from original(after, *args, **kwargs)

    monkeypatch.setattr(store, "read_pages", counting)
    store.projection_cache = None
    projection.load(store)
    assert seen == [n - 50]
    # a small update writes only the rows it touched, beside the full fold
    meta = json.loads((store.projection_dir() / "meta.json").read_text())
    assert len(meta["deltas"]) == 1 and 0 < meta["delta_rows"] <= 50
    assert (store.projection_dir() / meta["deltas"][0]).exists()


def test_memory_store_projects_too():
    store = open_store("memory://")
    store.append(*ROWS)
    proj = projection.load(store)
    assert len(proj.visits) == len(projection.load(store).visits) > 0
    assert len(projection.load(store, as_of=datetime(2100, 1, 1)).visits) == len(proj.visits)


def test_unknown_event_types_are_refused(store):
    store.append(["0" * 32], [1], ["somewhere.else:Thing.Happened"], [b"{}"])
    with pytest.raises(projection.ProjectionError, match="cannot read: somewhere.else:Thing.Happened"):
        projection.load(store)


_ = EventBatch  # the batch type is what synth hands to the store

"""Compact events through the library (repository, notification log), and old JSON stores beside them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
from eventsourcing.persistence import StoredEvent

from ersattning import api, projection
from ersattning.domain import (
    Area,
    CancelledBy,
    CancelReason,
    Category,
    DepartureReason,
    Ownership,
    Per,
    Provider,
    Recipient,
    Registration,
    StayKind,
    Visit,
)
from ersattning.store import Store, open_store
from ersattning.store.application import CompactMapper
from ersattning.store.bulk import EventBatch, encoder_for
from ersattning.store.encoding import COMPACT_TAG
from ersattning.synth import RegionSpec, iter_chunks
from tests.test_projection import _assert_same

T = datetime(2024, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)  # microseconds: the wide form


def _history() -> list[Provider | Recipient | Visit]:
    p = Provider.register(code="P1", name="Omsorg Öst AB", ownership=Ownership.private, teams=("A", "B"), recorded_at=T)
    r = Recipient.enrol(pseudonym="abc", birth_year=1936, area=Area.rural, enrolled_on=date(2024, 3, 1), recorded_at=T)
    r.choose_provider("P1", date(2024, 3, 1), T)
    r.grant(decision_id="d1", category=Category.personal_care, granted_minutes=1800, per=Per.month, valid_from=date(2024, 3, 1), valid_to=None, recorded_at=T)
    r.revise(decision_id="d1", granted_minutes=2400, valid_from=date(2024, 4, 1), recorded_at=T + timedelta(days=20))
    r.start_stay(stay_id="s1", kind=StayKind.hospital, start=date(2024, 4, 10), recorded_at=T + timedelta(days=40))
    r.end_stay(stay_id="s1", end=date(2024, 4, 15), recorded_at=T + timedelta(days=45))
    r.end_decision(decision_id="d1", ended_on=date(2024, 5, 1), recorded_at=T + timedelta(days=60))
    r.depart(departed_on=date(2024, 5, 2), reason=DepartureReason.moved, recorded_at=T + timedelta(days=61))
    common: dict[str, Any] = {"recipient_id": r.id, "provider": "P1", "team": "A", "category": Category.cleaning, "planned_minutes": 45}
    a = Visit.plan(key="a", planned_start=T + timedelta(days=2), recorded_at=T, **common)
    a.perform(actual_start=T + timedelta(days=2), actual_end=T + timedelta(days=2, minutes=40), staff=("s1", "s2"), registration=Registration.nfc, recorded_at=T + timedelta(days=2, hours=1))
    a.correct(actual_start=T + timedelta(days=2), actual_end=T + timedelta(days=2, minutes=30), reason="forgot stop", recorded_at=T + timedelta(days=5))
    b = Visit.plan(key="b", planned_start=T + timedelta(days=3), staff_planned=2, recorded_at=T, **common)
    b.cancel(by=CancelledBy.recipient, reason=CancelReason.away, cancelled_at=T + timedelta(days=2), recorded_at=T + timedelta(days=2))
    c = Visit.plan_performed(key="c", planned_start=T, recorded_at=T, actual_start=T, actual_end=T + timedelta(minutes=44), staff=("ö",), registration=Registration.manual, performed_recorded_at=T + timedelta(hours=2), **common)
    d = Visit.plan_cancelled(key="d", planned_start=T, recorded_at=T, by=CancelledBy.provider, reason=CancelReason.staffing, cancelled_at=T - timedelta(hours=1), cancelled_recorded_at=T - timedelta(minutes=59), **common)
    return [p, r, a, b, c, d]


def test_the_library_reconstructs_aggregates_from_compact_events(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    aggregates = _history()
    events = [e for agg in aggregates for e in agg.collect_events()]
    store.app.events.put(events)
    for agg in aggregates:
        got: Provider | Recipient | Visit = store.app.repository.get(agg.id)
        assert vars(got) == vars(agg), type(agg).__name__
    notes = store.recorder.select_notifications(1, 1000)
    assert len(notes) == len(events) and all(n.topic.startswith(f"{COMPACT_TAG}:") for n in notes)
    assert [store.app.mapper.to_domain_event(n) for n in notes] == events
    assert sum(len(n.state) for n in notes) / len(notes) < 90  # the JSON was ~400 bytes an event
    store.close()


def test_an_aggregate_with_a_legacy_event_then_compact_ones_reconstructs(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    mapper = store.app.mapper
    assert isinstance(mapper, CompactMapper)
    v = Visit.plan(key="x", recipient_id=UUID(int=7), provider="P", team="T", category=Category.shopping, planned_start=T, planned_minutes=30, recorded_at=T)
    legacy = mapper.to_legacy_stored_event(v.collect_events()[0])
    assert legacy.topic == "ersattning.domain:Visit.Planned" and legacy.state.startswith(b"{")
    store.recorder.insert_events([legacy])
    again: Visit = store.app.repository.get(v.id)
    again.perform(actual_start=T, actual_end=T + timedelta(minutes=25), staff=("s",), registration=Registration.mobile, recorded_at=T + timedelta(hours=1))
    again.correct(actual_start=T, actual_end=T + timedelta(minutes=20), reason="r", recorded_at=T + timedelta(days=1))
    store.app.save(again)
    topics = [n.topic for n in store.recorder.select_notifications(1, 10)]
    assert topics == ["ersattning.domain:Visit.Planned", "c1:VPE", "c1:VCO"]
    got: Visit = store.app.repository.get(v.id)
    assert vars(got) == vars(again) and got.actual == (T, T + timedelta(minutes=20))
    assert projection.load(store).visits["status"].tolist() == ["performed"]
    store.close()


# -- an old store: the same history written as today's JSON ---------------------------------------------

SPEC = RegionSpec(recipients=14, months=2, chunk_recipients=5, seed=11)
PERIOD = "2024-01..2024-02"  # the two months SPEC holds (it starts in 2024-01): compare settles those


def _rows(spec: RegionSpec = SPEC) -> tuple[list[str], list[int], list[str], list[bytes]]:
    ids: list[str] = []
    versions: list[int] = []
    topics: list[str] = []
    states: list[bytes] = []
    for batch in iter_chunks(spec):
        i, v, t, s = batch.columns()
        ids += i
        versions += v
        topics += t
        states += s
    return ids, versions, topics, states


def _as_legacy(store: Store, rows: tuple[list[str], list[int], list[str], list[bytes]]) -> tuple[list[str], list[int], list[str], list[bytes]]:
    """The same events as the JSON under long topics that stores held before the compact encoding."""
    mapper = store.app.mapper
    assert isinstance(mapper, CompactMapper)
    topics, states = [], []
    for i, v, t, s in zip(*rows, strict=True):
        old = mapper.to_legacy_stored_event(mapper.to_domain_event(StoredEvent(UUID(hex=i), v, t, s)))
        topics.append(old.topic)
        states.append(old.state)
    return rows[0], rows[1], topics, states


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


def _departures(store: Store) -> None:
    """New events appended by the bulk encoder: three recipients who had not departed do."""
    notes = store.recorder.select_notifications(1, 100_000)
    departed = {_hex(n.originator_id) for n in notes if n.topic in ("c1:RDP", "ersattning.domain:Recipient.Departed")}
    enrolled = [_hex(n.originator_id) for n in notes if n.topic in ("c1:REN", "ersattning.domain:Recipient.Enrolled") and _hex(n.originator_id) not in departed][:3]
    ids = np.array(enrolled, dtype="S32")
    versions = np.array([max(n.originator_version for n in notes if _hex(n.originator_id) == i) + 1 for i in enrolled])
    batch = EventBatch.empty()
    t = pd.Series(pd.to_datetime(["2024-02-20T10:00:00"] * len(ids))).to_numpy(dtype="datetime64[s]")
    batch.add(encoder_for(Recipient.Departed), ids, versions, {"timestamp": t, "departed_on": t.astype("datetime64[D]"), "reason": ["moved"] * len(ids)})
    store.append(*batch.columns())


def test_an_old_json_store_projects_and_compares_as_the_same_history_written_compactly(tmp_path: Path) -> None:
    rows = _rows()
    new = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    new.append(*rows)
    old = open_store(f"sqlite:///{tmp_path / 'old.db'}")
    old.append(*_as_legacy(old, rows))
    assert not any(t.startswith(f"{COMPACT_TAG}:") for t in old.events_by_topic())
    assert old.events_by_topic() == new.events_by_topic()  # counted by class, whichever the format
    _assert_same(projection.load(old), projection.load(new))
    a, b = api.compare(None, old, period=PERIOD), api.compare(None, new, period=PERIOD)
    for name in ("models", "components", "monthly", "providers", "admin"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    assert a.indicators == b.indicators
    # new events in the old store are compact, and both formats fold together
    departed = projection.load(old).recipients["departed_on"].notna().sum()
    _departures(old)
    _departures(new)
    topics = [n.topic for n in old.recorder.select_notifications(1, 100_000)]
    assert topics[-3:] == ["c1:RDP"] * 3 and "ersattning.domain:Visit.Planned" in topics
    _assert_same(projection.load(old), projection.load(new))
    assert projection.load(old).recipients["departed_on"].notna().sum() == departed + 3
    old.close()
    new.close()

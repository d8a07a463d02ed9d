"""The vectorized encoder writes exactly what the command methods would have written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import numpy as np
import pandas as pd
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from ersattning.domain import MAX_VISIT_MINUTES, Area, Category, Recipient, Registration, Visit, stable_id
from ersattning.store.application import ServiceHistory
from ersattning.store.bulk import EventBatch, EventEncoder, encoder_for, random_uuids, uuid_hex

APP = ServiceHistory(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 12, 31)).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
text = st.text(min_size=1, max_size=12)


def _decode(encoder: EventEncoder, state: bytes, originator_id: UUID, version: int) -> DomainEventProtocol[UUID]:
    return APP.mapper.to_domain_event(StoredEvent(originator_id, version, encoder.topic, state))


def _utc64(values: Sequence[datetime]) -> np.ndarray:
    return np.array([v.replace(tzinfo=None) for v in values], dtype="datetime64[s]")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(instants, instants, text, text, st.sampled_from(list(Category)), st.integers(1, MAX_VISIT_MINUTES), st.integers(1, 3)), min_size=1, max_size=8))
def test_planned_visits_decode_to_the_method_built_events(rows: list[tuple[datetime, datetime, str, str, Category, int, int]]) -> None:
    rid = stable_id("recipient", "r")
    expected = [
        Visit.plan(key=f"v{i}", recipient_id=rid, provider=p, team=t, category=c, planned_start=ps, planned_minutes=m, staff_planned=s, recorded_at=rec).collect_events()[0]
        for i, (rec, ps, p, t, c, m, s) in enumerate(rows)
    ]
    enc = encoder_for(Visit.Planned)
    states = enc.encode(
        len(rows),
        {
            "timestamp": _utc64([r[0] for r in rows]),
            "recipient_id": [rid.hex] * len(rows),
            "provider": np.array([r[2] for r in rows], dtype=object),
            "team": np.array([r[3] for r in rows], dtype=object),
            "category": np.array([r[4].value for r in rows], dtype=object),
            "planned_start": _utc64([r[1] for r in rows]),
            "planned_minutes": np.array([r[5] for r in rows]),
            "staff_planned": np.array([r[6] for r in rows]),
        },
    )
    for e, state in zip(expected, states.tolist(), strict=True):
        assert _decode(enc, state, e.originator_id, 1) == e


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(instants, text, st.sampled_from(list(Category)), st.integers(-5000, 10**9), days, st.none() | days), min_size=1, max_size=8))
def test_decisions_with_optional_dates_and_negative_ints_decode_exactly(rows: list[tuple[datetime, str, Category, int, date, date | None]]) -> None:
    r = Recipient.enrol(pseudonym="x", birth_year=1940, area=Area.urban, enrolled_on=date(2020, 1, 1), recorded_at=rows[0][0])
    expected = []
    for i, (rec, did, cat, minutes, vf, vt) in enumerate(rows):
        event_class = Recipient.DecisionGranted
        # built directly: grant() refuses negative minutes, the encoder must still write them exactly
        expected.append(event_class(originator_id=r.id, originator_version=i + 2, timestamp=rec, decision_id=did, category=cat, granted_minutes=minutes, per="month", valid_from=vf, valid_to=vt))  # type: ignore[call-arg]  # the library's metaclass makes event classes dataclasses, which mypy cannot see
    enc = encoder_for(Recipient.DecisionGranted)
    states = enc.encode(
        len(rows),
        {
            "timestamp": _utc64([x[0] for x in rows]),
            "decision_id": np.array([x[1] for x in rows], dtype=object),
            "category": np.array([x[2].value for x in rows], dtype=object),
            "granted_minutes": np.array([x[3] for x in rows]),
            "per": np.array(["month"] * len(rows), dtype=object),
            "valid_from": np.array([x[4] for x in rows], dtype="datetime64[D]"),
            "valid_to": np.array([np.datetime64("NaT") if x[5] is None else x[5] for x in rows], dtype="datetime64[D]"),
        },
    )
    for e, state in zip(expected, states.tolist(), strict=True):
        got = _decode(enc, state, r.id, e.originator_version)
        assert got.__dict__ == {**e.__dict__, "per": "month"}  # per is an enum on both sides
        assert got == e


def test_performed_with_one_or_two_staff() -> None:
    t = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    v = Visit.plan(key="v", recipient_id=stable_id("recipient", "r"), provider="P", team="T", category=Category.personal_care, planned_start=t, planned_minutes=30, recorded_at=t)
    v.perform(actual_start=t, actual_end=t + timedelta(minutes=29, seconds=59), staff=("å-1", 'q"2'), registration=Registration.nfc, recorded_at=t + timedelta(minutes=31))
    expected = v.collect_events()[1]
    assert isinstance(expected, Visit.Performed)
    enc = encoder_for(Visit.Performed)
    states = enc.encode(
        2,
        {
            "timestamp": _utc64([expected.recorded_at] * 2),
            "actual_start": _utc64([t] * 2),
            "actual_end": _utc64([t + timedelta(minutes=29, seconds=59)] * 2),
            "staff": pd.Series([("å-1", 'q"2'), ("solo",)], dtype=object),
            "registration": ["nfc", "nfc"],
        },
    )
    assert _decode(enc, states[0], v.id, 2) == expected
    solo = _decode(enc, states[1], v.id, 2)
    assert isinstance(solo, Visit.Performed) and solo.staff == ("solo",)


def test_uuid_hex_matches_the_uuid_module() -> None:
    from uuid import UUID

    raw = random_uuids(np.random.default_rng(3), 50)
    hexes = uuid_hex(raw)
    for r, h in zip(raw, hexes, strict=True):
        u = UUID(bytes=bytes(r))
        assert h.decode() == u.hex and u.version == 4


def test_batch_columns_keep_version_order_per_aggregate() -> None:
    enc = encoder_for(Recipient.Departed)
    batch = EventBatch.empty()
    ids = np.array([b"b" * 32, b"a" * 32], dtype="S32")
    t = np.array(["2024-01-01T00:00:00"] * 2, dtype="datetime64[s]")
    batch.add(enc, ids, np.array([3, 1]), {"timestamp": t, "departed_on": t.astype("datetime64[D]"), "reason": ["moved", "moved"]})
    batch.add(enc, ids[:1], 2, {"timestamp": t[:1], "departed_on": t[:1].astype("datetime64[D]"), "reason": ["moved"]})
    ids_out, versions, _, _ = batch.columns()
    assert list(zip(ids_out, versions, strict=True)) == [("a" * 32, 1), ("b" * 32, 2), ("b" * 32, 3)]


def test_batch_order_is_by_whole_id_even_when_ids_share_their_first_bytes() -> None:
    enc = encoder_for(Recipient.Departed)
    batch = EventBatch.empty()
    ids = np.array([b"0" * 16 + b"f" * 16, b"0" * 16 + b"1" * 16, b"0" * 16 + b"8" * 16], dtype="S32")
    t = np.array(["2024-01-01T00:00:00"] * 3, dtype="datetime64[s]")
    batch.add(enc, ids, np.array([1, 2, 1]), {"timestamp": t, "departed_on": t.astype("datetime64[D]"), "reason": ["moved"] * 3})
    batch.add(enc, ids[1:2], 1, {"timestamp": t[:1], "departed_on": t[:1].astype("datetime64[D]"), "reason": ["moved"]})
    ids_out, versions, _, _ = batch.columns()
    assert list(zip(ids_out, versions, strict=True)) == [("0" * 16 + "1" * 16, 1), ("0" * 16 + "1" * 16, 2), ("0" * 16 + "8" * 16, 1), ("0" * 16 + "f" * 16, 1)]


def test_an_arena_reuses_its_memory_batch_after_batch_and_never_hands_out_overlapping_rows() -> None:
    from ersattning.store.bulk import Arena

    enc = encoder_for(Recipient.Departed)
    arena = Arena()
    t = np.array(["2024-01-01T00:00:00"] * 50, dtype="datetime64[s]")
    cols = {"timestamp": t, "departed_on": t.astype("datetime64[D]"), "reason": ["moved"] * 50}
    expected = enc.encode(50, cols)
    deceased = enc.encode(50, {**cols, "reason": ["deceased"] * 50})
    assert expected.tolist() != deceased.tolist()
    first = [enc.encode(50, cols, arena), enc.encode(50, {**cols, "reason": ["deceased"] * 50}, arena)]
    assert first[0].tolist() == expected.tolist() and first[1].tolist() == deceased.tolist()  # the second did not overwrite the first
    arena.reset()
    again = enc.encode(50, cols, arena)
    other = enc.encode(50, {**cols, "reason": ["deceased"] * 50}, arena)  # both in the grown buffer now
    assert again.tolist() == expected.tolist() and not np.shares_memory(again.buffer, other.buffer)
    arena.reset()
    assert np.shares_memory(enc.encode(50, cols, arena).buffer, again.buffer)  # the batch after fits in the grown buffer


def test_the_columnar_decoder_reads_the_columns_derived_from_each_visit_event_class() -> None:
    """The generic tables the projection builds its kinds from come from the event classes
    (ersattning.store.encoding, ersattning.store.compact); these are the columns and types its decoding relies on."""
    import pyarrow as pa

    from ersattning.projection import decode
    from ersattning.store.compact import decode_columns, table_schema

    ts, text = pa.timestamp("s"), pa.string()
    planned = {
        "timestamp": ts, "recipient_id": text, "provider": text, "team": text, "category": text,
        "planned_start": ts, "planned_minutes": pa.int64(), "staff_planned": pa.int64(),
    }
    performed = {"actual_start": ts, "actual_end": ts, "staff": pa.list_(text), "registration": text}
    cancelled = {"by": text, "reason": text, "cancelled_at": ts}
    corrected = {"actual_start": ts, "actual_end": ts, "reason": text}
    version = {"class_version": pa.int64()}  # an old (v1) Visit.Planned lacks staff_planned
    needed: dict[type, dict[str, pa.DataType]] = {
        Visit.Planned: {**planned, **version},
        Visit.Performed: {"timestamp": ts, **performed, **version},
        Visit.Cancelled: {"timestamp": ts, **cancelled, **version},
        Visit.Corrected: {"timestamp": ts, **corrected, **version},
        Visit.PlannedAndPerformed: {**planned, **performed, "performed_recorded_at": ts, **version},
        Visit.PlannedAndCancelled: {**planned, **cancelled, "cancelled_recorded_at": ts, **version},
    }

    def columns(schema: pa.Schema) -> dict[str, pa.DataType]:
        return {f.name: f.type for f in schema}

    for event_class, expected in needed.items():
        assert columns(table_schema(event_class)) == expected, event_class.__qualname__
        assert columns(decode_columns(event_class, []).schema) == expected, event_class.__qualname__
    # every visit event class the store may hold is decoded
    visit_events = {c for c in vars(Visit).values() if isinstance(c, type) and issubclass(c, Visit.Event) and c not in (Visit.Event, Visit.Created)}
    assert visit_events == set(decode.VISIT_EVENTS.values()) | set(decode.COMBINED_EVENTS)

"""Compact states of format 1, as the released code wrote them, decode identically after format 2.

The byte strings below were produced by ``encode_state`` of format 1 (before 32-hex strings were packed and
ints narrowed) and are frozen: changing how they decode breaks every compact store already written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ersattning import projection
from ersattning.domain import CancelledBy, CancelReason, Category, Ownership, Per, Provider, Recipient, Registration, Visit
from ersattning.store import open_store
from ersattning.store.compact import decode_columns, decode_state, encode_state

T = datetime(2024, 3, 1, 7, 30, tzinfo=UTC)
RID = UUID("00112233-4455-6677-8899-aabbccddeeff")
HEX = "0123456789abcdef0123456789abcdef"

#: (class, the values written); the strings of 252 and 253 bytes are inline lengths in format 1.
CASES: dict[str, tuple[type, dict[str, Any]]] = {
    "vpf": (
        Visit.PlannedAndPerformed,
        {"timestamp": T, "recipient_id": RID, "provider": "Hemtjänst Söder", "team": "Hemtjänst Söder", "category": Category.cleaning,
         "planned_start": T + timedelta(hours=1), "planned_minutes": 30, "staff_planned": 1, "actual_start": T + timedelta(hours=1, minutes=1),
         "actual_end": T + timedelta(hours=1, minutes=28), "staff": (HEX, "a" * 252, "b" * 253), "registration": Registration.nfc,
         "performed_recorded_at": T + timedelta(days=1)},
    ),
    "vpc_wide": (
        Visit.PlannedAndCancelled,
        {"timestamp": T + timedelta(microseconds=7), "recipient_id": RID, "provider": "P", "team": "", "category": Category.escort,
         "planned_start": T, "planned_minutes": 70000, "staff_planned": 2, "by": CancelledBy.provider, "reason": CancelReason.stay,
         "cancelled_at": T, "cancelled_recorded_at": T},
    ),
    "rdg": (
        Recipient.DecisionGranted,
        {"timestamp": T, "decision_id": HEX, "category": Category.shopping, "granted_minutes": -5, "per": Per.week,
         "valid_from": date(2024, 1, 1), "valid_to": None},
    ),
    "prg": (
        Provider.Registered,
        {"timestamp": T, "code": "X" * 300, "name": HEX.upper(), "ownership": Ownership.private, "teams": ("T1", "", HEX)},
    ),
}  # fmt: skip

FORMAT_1: dict[str, str] = {
    "vpf": (
        "0100010df883e16500112233445566778899aabbccddeeff010892e1651e000000010000004492e1659898e1650178d5e2651148656d746a"
        "c3a46e73742053c3b66465721148656d746ac3a46e73742053c3b66465720320303132333435363738396162636465663031323334353637"
        "3839616263646566fc6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
        "6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
        "6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
        "6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
        "61616161616161616161616161616161616161616161616161616161616161616161616161fd626262626262626262626262626262626262"
        "6262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262"
        "6262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262"
        "6262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262"
        "6262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262"
        "6262626262626262626262"
    ),
    "vpc_wide": (
        "0101010c07eeee579412060000112233445566778899aabbccddeeff0400eeee57941206007011010002000000010200eeee579412060000"
        "eeee5794120600015000"
    ),
    "rdg": (
        "01000107f883e16503fbffffff010b4d000000000080203031323334353637383961626364656630313233343536373839616263646566"
    ),
    "prg": (
        "01000105f883e16501ff2c010000585858585858585858585858585858585858585858585858585858585858585858585858585858585858"
        "5858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858"
        "5858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858"
        "5858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858"
        "5858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858"
        "5858585858585858585858585858585858585858585858585858585858585858585820303132333435363738394142434445463031323334"
        "35363738394142434445460302543100203031323334353637383961626364656630313233343536373839616263646566"
    ),
}


def _golden(name: str) -> bytes:
    return bytes.fromhex(FORMAT_1[name])


def test_format_1_states_decode_one_at_a_time_as_written() -> None:
    for name, (cls, values) in CASES.items():
        state = decode_state(cls, _golden(name))
        assert {k: state[k] for k in values} == values, name
        assert state["class_version"] == 1, name


def test_format_1_states_decode_into_columns_as_written() -> None:
    for name, (cls, values) in CASES.items():
        (row,) = decode_columns(cls, [_golden(name)]).to_pylist()
        for k, v in values.items():
            want = v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v
            want = want.value if hasattr(want, "value") else list(want) if isinstance(want, tuple) else want
            want = want.hex if isinstance(want, UUID) else want
            assert row[k] == want, (name, k)


def test_both_formats_decode_into_the_same_table_in_one_batch() -> None:
    """Old and new states of one class, interleaved (a store written before and after): one table, rows in order."""
    for name, (cls, values) in CASES.items():
        new = encode_state(cls, values)
        assert new[0] == 2 and len(new) <= len(_golden(name)), name
        mixed = decode_columns(cls, [_golden(name), new, _golden(name)])
        alone = decode_columns(cls, [new])
        for column in mixed.column_names:
            assert mixed.column(column).to_pylist() == alone.column(column).to_pylist() * 3, (name, column)


def test_an_unknown_format_is_refused_naming_it() -> None:
    data = bytes([3]) + _golden("rdg")[1:]
    for decode in (lambda: decode_state(Recipient.DecisionGranted, data), lambda: decode_columns(Recipient.DecisionGranted, [data])):
        try:
            decode()
        except ValueError as e:
            assert "format 3" in str(e)
        else:
            raise AssertionError("format 3 was read")


def test_the_library_reads_a_format_1_event_then_writes_format_2(tmp_path: Path) -> None:
    """A visit whose first event a store holds in format 1 reconstructs through the library's repository; the
    events it adds are format 2 (the pseudonym packed), and the projection reads both."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    cls, values = CASES["vpc_wide"]
    vid = UUID(int=99)
    store.recorder.insert_events([StoredEvent(originator_id=vid, originator_version=1, topic="c1:VPC", state=_golden("vpc_wide"))])
    visit: Visit = store.app.repository.get(vid)
    assert (visit.provider, visit.planned_minutes, visit.status) == ("P", 70000, "cancelled")
    planned = Visit.plan(key="k", recipient_id=RID, provider="P", team="P", category=Category.escort, planned_start=T, planned_minutes=30, recorded_at=T)
    planned.perform(actual_start=T, actual_end=T + timedelta(minutes=25), staff=(HEX,), registration=Registration.mobile, recorded_at=T + timedelta(hours=1))
    store.app.save(planned)
    notes = store.recorder.select_notifications(1, 10)
    assert [n.state[0] for n in notes] == [1, 2, 2] and bytes.fromhex(HEX) in notes[2].state
    assert vars(store.app.repository.get(planned.id)) == vars(planned)
    visits = projection.load(store).visits  # (the projection keeps minutes as int16: not 70000)
    assert dict(zip(visits["status"].astype(str), visits["planned_minutes"].tolist(), strict=True)).keys() == {"cancelled", "performed"}
    assert dict(zip(visits["status"].astype(str), visits["planned_minutes"].tolist(), strict=True))["performed"] == 30
    store.close()

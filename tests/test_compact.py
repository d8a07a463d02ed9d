"""The compact stored encoding: one event and many agree, values come back, codes never move."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ersattning.domain import ENUMS, CancelledBy, CancelReason, Category, Ownership, Per, Provider, Recipient, Registration, Visit
from ersattning.store.application import ServiceHistory
from ersattning.store.compact import (
    _str_bytes,
    decode_columns,
    decode_json_columns,
    decode_state,
    encode_columns,
    encode_state,
    encoder_columns,
    layout,
)
from ersattning.store.encoding import COMPACT_TOPICS, by_long_topic, compact_class, long_topic

# -- frozen tables: stored codes never move ---------------------------------------------------


def test_enum_codes_are_frozen() -> None:
    """An enum member's stored code is its index in declaration order: append new members at the end,
    never reorder, rename the value of, or remove one (old events would read as another member)."""
    frozen = {
        "Category": ["personal_care", "cleaning", "laundry", "shopping", "escort", "other_service"],
        "Ownership": ["municipal", "private"],
        "Area": ["urban", "rural"],
        "Per": ["month", "week"],
        "StayKind": ["hospital", "short_term"],
        "Registration": ["mobile", "nfc", "manual"],
        "CancelledBy": ["recipient", "provider"],
        "CancelReason": ["declined", "away", "stay", "staffing", "other"],
        "DepartureReason": ["deceased", "nursing_home", "moved", "other"],
    }
    for enum in ENUMS:
        current = [m.value for m in enum]
        assert current[: len(frozen[enum.__name__])] == frozen[enum.__name__], enum.__name__


def test_compact_topics_are_frozen() -> None:
    assert {f"{c.__qualname__}": t for c, t in COMPACT_TOPICS.items()} == {
        "Provider.Registered": "c1:PRG",
        "Recipient.Enrolled": "c1:REN",
        "Recipient.ProviderChosen": "c1:RPC",
        "Recipient.DecisionGranted": "c1:RDG",
        "Recipient.DecisionRevised": "c1:RDR",
        "Recipient.DecisionEnded": "c1:RDE",
        "Recipient.StayStarted": "c1:RSS",
        "Recipient.StayEnded": "c1:RSE",
        "Recipient.Departed": "c1:RDP",
        "Visit.Planned": "c1:VPL",
        "Visit.Performed": "c1:VPE",
        "Visit.Cancelled": "c1:VCA",
        "Visit.Corrected": "c1:VCO",
        "Visit.PlannedAndPerformed": "c1:VPF",
        "Visit.PlannedAndCancelled": "c1:VPC",
    }
    assert compact_class("c1:VPF") is Visit.PlannedAndPerformed and compact_class("ersattning.domain:Visit.Planned") is None
    assert long_topic("c1:VPL") == "ersattning.domain:Visit.Planned" == long_topic("ersattning.domain:Visit.Planned")
    assert by_long_topic({"c1:VPL": 2, "ersattning.domain:Visit.Planned": 3, "other:X": 1}) == {"ersattning.domain:Visit.Planned": 5, "other:X": 1}


def test_the_layout_is_the_documented_one() -> None:
    """Header, then u4 seconds, 16 id bytes, enum byte, i2s (narrow); then the strings (hand-computed bytes).
    The same event in format 1 (i4s, as the released code wrote it) still decodes to the same values."""
    t = datetime(2024, 1, 1, tzinfo=UTC)  # 1704067200 s
    rid = UUID("00112233-4455-6677-8899-aabbccddeeff")
    state = {"timestamp": t, "recipient_id": rid, "provider": "P1", "team": "", "category": Category.cleaning,
             "planned_start": t + timedelta(hours=1), "planned_minutes": 30, "staff_planned": 2}  # fmt: skip
    head = (1704067200).to_bytes(4, "little") + rid.bytes + bytes([1]) + (1704067200 + 3600).to_bytes(4, "little")
    format_1 = bytes([1, 0, 2, 8]) + head + (30).to_bytes(4, "little") + (2).to_bytes(4, "little") + b"\x02P1" + b"\x00"
    assert encode_state(Visit.Planned, state) == bytes([2, 2, 2, 8]) + head + (30).to_bytes(2, "little") + (2).to_bytes(2, "little") + b"\x02P1" + b"\x00"
    assert decode_state(Visit.Planned, format_1) == {**state, "originator_topic": "ersattning.domain:Visit", "class_version": 2}
    wide = encode_state(Visit.Planned, {**state, "timestamp": t + timedelta(microseconds=5)})
    assert wide[:4] == bytes([2, 3, 2, 8]) and int.from_bytes(wide[4:12], "little", signed=True) == 1704067200 * 10**6 + 5
    big = encode_state(Visit.Planned, {**state, "planned_minutes": 2**15})  # one int does not fit i2: all are i4
    assert big[:4] == bytes([2, 0, 2, 8]) and big[4 + 25 : 4 + 33] == (2**15).to_bytes(4, "little") + (2).to_bytes(4, "little")


def test_hex_strings_are_packed_and_a_repeated_string_is_one_byte() -> None:
    """A 32-digit lowercase hex string is 252 and its 16 bytes; a str equal to the one before it is 253;
    anything else (upper case, 31 or 33 digits) keeps its text."""
    t = datetime(2024, 1, 1, tzinfo=UTC)
    pseudonym = "c0936ece66756c31f5334f47162e42ae"
    staff = (pseudonym, pseudonym.upper(), pseudonym[:31], pseudonym + "0", "")
    state: dict[str, Any] = {"timestamp": t, "recipient_id": UUID(int=7), "provider": "Hemtjänst Söder", "team": "Hemtjänst Söder", "category": Category.cleaning,
             "planned_start": t, "planned_minutes": 30, "staff_planned": 1, "actual_start": t, "actual_end": t, "registration": Registration.nfc,
             "performed_recorded_at": t, "staff": staff}  # fmt: skip
    data = encode_state(Visit.PlannedAndPerformed, state)
    provider = "Hemtjänst Söder".encode()
    strings = (
        bytes([len(provider)]) + provider
        + bytes([253])
        + bytes([5, 252]) + bytes.fromhex(pseudonym)
        + bytes([32]) + pseudonym.upper().encode() + bytes([31]) + pseudonym[:31].encode() + bytes([33]) + pseudonym.encode() + b"0"
        + bytes([0])
    )  # fmt: skip
    assert data[4 + 4 + 16 + 1 + 4 + 2 + 2 + 4 + 4 + 1 + 4 :] == strings
    assert decode_state(Visit.PlannedAndPerformed, data)["staff"] == staff
    (row,) = decode_columns(Visit.PlannedAndPerformed, [data]).to_pylist()
    assert (row["provider"], row["team"], row["staff"]) == ("Hemtjänst Söder", "Hemtjänst Söder", list(staff))
    long = "x" * 252  # 252 and 253 are markers now: such a string takes the long form
    assert _str_bytes(long) == bytes([255]) + (252).to_bytes(4, "little") + long.encode()


def test_an_int_out_of_range_is_refused_naming_the_field() -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    state = {"timestamp": t, "decision_id": "d", "granted_minutes": 2**31, "valid_from": date(2024, 1, 1)}
    with pytest.raises(ValueError, match="granted_minutes"):
        encode_state(Recipient.DecisionRevised, state)
    with pytest.raises(ValueError, match="granted_minutes"):
        encode_columns(Recipient.DecisionRevised, 1, {k: [v] if k != "timestamp" else np.array([t.replace(tzinfo=None)], dtype="datetime64[s]") for k, v in state.items()})


# -- many at once == one at a time, and back ----------------------------------------------------

instants = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)).map(lambda d: d.replace(tzinfo=UTC))
seconds = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 12, 31)).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))
pseudonyms = st.binary(min_size=16, max_size=16).map(bytes.hex)  # 32 lowercase hex digits: packed
near_hex = pseudonyms.map(str.upper) | pseudonyms.map(lambda h: h[:31]) | pseudonyms.map(lambda h: h + "0")  # kept as text
# past 251 bytes: the long form; a few fixed values, so that a field often repeats the one before it
texts = st.text(max_size=300) | pseudonyms | near_hex | st.sampled_from(["", "P1", "Hemtjänst Söder", "x" * 251, "x" * 252, "x" * 253])
staffs = st.lists(st.text(max_size=20) | pseudonyms | near_hex, max_size=4).map(tuple)
small_ints = st.integers(-(2**15) - 1, 2**15 + 1)  # around the i2 bounds (-2**15 is null there: stored as i4)
days = st.dates(min_value=date(1800, 1, 1), max_value=date(2300, 12, 31))


def _naive64(values: list[datetime]) -> np.ndarray:
    return np.array([v.astimezone(UTC).replace(tzinfo=None) for v in values], dtype="datetime64[us]")


def _columns(event_class: type, rows: list[dict[str, Any]]) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for f, kind in zip(layout(event_class).fields, layout(event_class).kinds, strict=True):
        values = [r[f.name] for r in rows]
        if kind == "datetime":
            cols[f.name] = _naive64(values)
        elif kind == "date":
            cols[f.name] = np.array([np.datetime64("NaT") if v is None else v for v in values], dtype="datetime64[D]")
        elif kind == "enum":
            cols[f.name] = np.array([v.value for v in values], dtype=object)
        elif kind == "uuid":
            cols[f.name] = [v.hex for v in values]
        elif kind == "tuple":
            cols[f.name] = pd.Series(values, dtype=object)
        else:
            cols[f.name] = np.array(values, dtype=object)
    return cols


def _check(event_class: type, rows: list[dict[str, Any]]) -> None:
    buffer, offsets = encode_columns(event_class, len(rows), _columns(event_class, rows))
    states = [buffer[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    assert states == [encode_state(event_class, r) for r in rows]
    decoded = decode_columns(event_class, states)
    again, again_offsets = encode_columns(event_class, len(rows), encoder_columns(event_class, decoded))
    assert again == buffer and again_offsets.tolist() == offsets.tolist()  # decoding then encoding gives the states back
    table = decoded.to_pylist()
    for row, state, got in zip(rows, states, table, strict=True):
        back = decode_state(event_class, state)
        assert {k: back[k] for k in row} == row
        for f, kind in zip(layout(event_class).fields, layout(event_class).kinds, strict=True):
            v = row[f.name]
            want: Any = {
                "datetime": lambda x: x.astimezone(UTC).replace(tzinfo=None),
                "enum": lambda x: x.value,
                "uuid": lambda x: x.hex,
                "tuple": list,
            }.get(kind, lambda x: x)(v) if v is not None else None
            assert got[f.name] == want, f.name
        assert got["class_version"] == layout(event_class).class_version


performed_and_planned = st.fixed_dictionaries(
    {
        "timestamp": instants, "recipient_id": st.uuids(), "provider": texts, "team": texts, "category": st.sampled_from(list(Category)),
        "planned_start": seconds, "planned_minutes": st.integers(-(2**31) + 1, 2**31 - 1) | small_ints, "staff_planned": st.integers(0, 9) | small_ints,
        "actual_start": seconds, "actual_end": instants, "staff": staffs, "registration": st.sampled_from(list(Registration)),
        "performed_recorded_at": seconds,
    }
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(st.lists(performed_and_planned, min_size=1, max_size=12))
def test_vectorised_planned_and_performed_equal_one_at_a_time_and_decode_back(rows: list[dict[str, Any]]) -> None:
    _check(Visit.PlannedAndPerformed, rows)


decisions = st.fixed_dictionaries(
    {"timestamp": seconds, "decision_id": texts, "category": st.sampled_from(list(Category)), "granted_minutes": st.integers(-5000, 10**9),
     "per": st.sampled_from(list(Per)),
     "valid_from": days, "valid_to": st.none() | days}
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(decisions, min_size=1, max_size=10))
def test_vectorised_decisions_with_missing_dates_equal_one_at_a_time(rows: list[dict[str, Any]]) -> None:
    _check(Recipient.DecisionGranted, rows)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.fixed_dictionaries({"timestamp": seconds, "by": st.sampled_from(list(CancelledBy)), "reason": st.sampled_from(list(CancelReason)), "cancelled_at": instants}), min_size=1, max_size=8),
    st.lists(st.fixed_dictionaries({"timestamp": seconds, "code": texts, "name": texts, "ownership": st.sampled_from(list(Ownership)), "teams": staffs}), min_size=1, max_size=8),
)
def test_vectorised_cancellations_and_providers_equal_one_at_a_time(cancelled: list[dict[str, Any]], providers: list[dict[str, Any]]) -> None:
    _check(Visit.Cancelled, cancelled)
    _check(Provider.Registered, providers)


def test_an_older_event_decodes_with_its_trailing_fields_missing() -> None:
    """Visit.Planned v1 stored 7 fields; the table has staff_planned null there and class_version 1."""
    t = datetime(2024, 1, 1, tzinfo=UTC)
    state = {"timestamp": t, "recipient_id": UUID(int=1), "provider": "P", "team": "T", "category": Category.escort, "planned_start": t, "planned_minutes": 30, "staff_planned": 2}
    new = encode_state(Visit.Planned, state)
    fixed = new[4 : 4 + 4 + 16 + 1 + 4]  # timestamp, recipient, category, planned start
    old = bytes([1, 0, 1, 7]) + fixed + (30).to_bytes(4, "little") + b"\x01P\x01T"  # format 1, as the released code wrote v1
    old_narrow = bytes([2, 2, 1, 7]) + fixed + (30).to_bytes(2, "little") + b"\x01P\x01T"  # format 2 with 7 fields
    assert new == bytes([2, 2, 2, 8]) + fixed + (30).to_bytes(2, "little") + (2).to_bytes(2, "little") + b"\x01P\x01T"
    for data in (old, old_narrow):
        assert decode_state(Visit.Planned, data) == {**{k: v for k, v in state.items() if k != "staff_planned"}, "originator_topic": "ersattning.domain:Visit", "class_version": 1}
    table = decode_columns(Visit.Planned, [new, old, new, old_narrow]).to_pydict()
    assert table["staff_planned"] == [2, None, 2, None] and table["class_version"] == [2, 1, 2, 1] and table["team"] == ["T"] * 4
    assert table["planned_minutes"] == [30] * 4


# -- the legacy JSON decodes into the same table ---------------------------------------------------------


def _legacy_states(event_class: type, rows: list[dict[str, Any]]) -> list[bytes]:
    """The rows as the library's JSON stored them before the compact encoding."""
    transcoder = ServiceHistory(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper.transcoder
    lay = layout(event_class)
    extra: dict[str, Any] = {"originator_topic": lay.originator_topic} if lay.originator_topic else {}
    if lay.class_version > 1:
        extra["class_version"] = lay.class_version
    return [transcoder.encode({**row, **extra}) for row in rows]


def _whole_seconds(row: dict[str, Any]) -> dict[str, Any]:
    """Legacy states are read to the second (as the projection always did)."""
    return {k: v.replace(microsecond=0) if isinstance(v, datetime) else v for k, v in row.items()}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(performed_and_planned.map(_whole_seconds), min_size=1, max_size=6),
    st.lists(decisions, min_size=1, max_size=6),
)
def test_legacy_json_decodes_into_the_table_compact_states_decode_into(performed: list[dict[str, Any]], granted: list[dict[str, Any]]) -> None:
    for event_class, rows in ((Visit.PlannedAndPerformed, performed), (Recipient.DecisionGranted, granted)):
        compact = [encode_state(event_class, r) for r in rows]
        legacy = decode_json_columns(event_class, _legacy_states(event_class, rows))
        expected = decode_columns(event_class, compact)
        if legacy.schema != expected.schema:  # a wide row (before 1970 or after 2106): compare in microseconds
            legacy = legacy.cast(expected.schema)
        assert legacy.equals(expected), event_class.__qualname__


def test_categorical_columns_repeat_and_pack_as_one_at_a_time() -> None:
    """The import hands provider and team as categoricals (categories in their own orders, a team missing
    where it equals the provider): the bulk states equal the one-at-a-time ones, repeats and packed hex included."""
    t = datetime(2024, 1, 1, tzinfo=UTC)
    pseudonym = "0f" * 16
    providers = ["Söder", "Norr", "Söder", "Norr"]
    teams = ["Söder", "Lag 1", "Norr", "Norr"]
    rows = [
        {"timestamp": t, "recipient_id": UUID(int=i), "provider": p, "team": tm, "category": Category.cleaning, "planned_start": t,
         "planned_minutes": 30 if i else 40_000, "staff_planned": 1, "actual_start": t, "actual_end": t, "staff": (pseudonym,) * i,
         "registration": Registration.mobile, "performed_recorded_at": t}
        for i, (p, tm) in enumerate(zip(providers, teams, strict=True))
    ]  # fmt: skip
    cols = _columns(Visit.PlannedAndPerformed, rows)
    cols["provider"] = pd.Categorical(providers, categories=["Norr", "Söder"])
    cols["team"] = pd.Categorical(teams, categories=["Lag 1", "Söder", "Norr"])
    buffer, offsets = encode_columns(Visit.PlannedAndPerformed, len(rows), cols)
    states = [buffer[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    assert states == [encode_state(Visit.PlannedAndPerformed, r) for r in rows]
    assert [s.count(bytes([253])) for s in states] == [1, 0, 0, 1] and [s[1] for s in states] == [0, 2, 2, 2]
    assert decode_columns(Visit.PlannedAndPerformed, states).column("team").to_pylist() == teams

"""Decoding pages of the notification log into columns, per event type.

States are parsed with Arrow's JSON reader (C++, no Python call per event); each
visit event kind becomes a table of the same columns, entity events one frame.
"""


from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.json as pajson

from ersattning.domain import (
    Provider,
    Recipient,
    Visit,
)
from ersattning.store import RawPage
from ersattning.store.encoding import CLASS_VERSION, DATA_KEY, ORIGINATOR_TOPIC, event_schema, unwrap

# Visit event kinds in the event table
PLANNED, PERFORMED, CANCELLED, CORRECTED = 0, 1, 2, 3
VISIT_EVENTS: dict[int, type] = {PLANNED: Visit.Planned, PERFORMED: Visit.Performed, CANCELLED: Visit.Cancelled, CORRECTED: Visit.Corrected}
# Visit events that carry a plan and its outcome together (one event per imported row): each is
# read as the two rows of the events it stands for, with the outcome's own recorded time.
COMBINED_EVENTS: dict[type, tuple[int, str]] = {
    Visit.PlannedAndPerformed: (PERFORMED, "performed_recorded_at"),
    Visit.PlannedAndCancelled: (CANCELLED, "cancelled_recorded_at"),
}
ENTITY_EVENTS: tuple[type, ...] = (
    Provider.Registered,
    Recipient.Enrolled,
    Recipient.ProviderChosen,
    Recipient.DecisionGranted,
    Recipient.DecisionRevised,
    Recipient.DecisionEnded,
    Recipient.StayStarted,
    Recipient.StayEnded,
    Recipient.Departed,
)

_VISIT_TOPICS = {event_schema(c).topic: kind for kind, c in VISIT_EVENTS.items()}
_COMBINED_TOPICS = {event_schema(c).topic: outcome for c, outcome in COMBINED_EVENTS.items()}
_ENTITY_EVENTS = {event_schema(c).topic: c.__qualname__ for c in ENTITY_EVENTS}

# The columns parsed from each kind's stored states, derived from the event classes (ersattning.store.encoding)
_VISIT_SCHEMAS = {kind: event_schema(c).arrow_schema() for kind, c in VISIT_EVENTS.items()}
_COMBINED_SCHEMAS = {kind: event_schema(c).arrow_schema() for c, (kind, _) in COMBINED_EVENTS.items()}


class ProjectionError(Exception):
    """The store holds something the projection cannot fold."""


# ---------------------------------------------------------------------------
# decoding pages


def _hex_to_u64(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S32 lower-case hex ids → (hi, lo) uint64 halves."""
    raw = np.frombuffer(bytes.fromhex(np.ascontiguousarray(ids, dtype="S32").tobytes().decode("ascii")), dtype=">u8")
    pairs = raw.reshape(-1, 2).astype(np.uint64)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _parse(states: list[bytes], schema: pa.Schema) -> pa.Table:
    buf = b"\n".join(states)
    return pajson.read_json(
        pa.BufferReader(buf),
        # blocks of a few MB let Arrow parse on both cores
        read_options=pajson.ReadOptions(block_size=4 << 20, use_threads=True),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )


def _data(table: pa.Table, name: str) -> pa.ChunkedArray:
    col = table.column(name)
    if pa.types.is_struct(col.type):
        return pa.chunked_array([c.field(DATA_KEY) for c in col.chunks], type=col.type.field(DATA_KEY).type)
    return col


def _utc_seconds(values: pa.ChunkedArray) -> np.ndarray:
    """ISO-8601 strings with offsets → UTC datetime64[s] (NaT for null).

    The common form written here, ``YYYY-MM-DDTHH:MM:SS+00:00``, is cast by
    Arrow directly; anything else (other offsets, fractions) goes through pandas.
    """
    pc = pa.compute
    lengths = pc.utf8_length(values)
    plain = pc.and_(pc.equal(lengths, 25), pc.ends_with(values, "+00:00"))
    if pc.all(pc.or_(plain, pc.is_null(values))).as_py() in (True, None):
        naive = pc.utf8_slice_codeunits(values, 0, 19)
        return naive.cast(pa.timestamp("s")).to_numpy().astype("datetime64[s]")
    s = pd.to_datetime(pd.Series(values.to_numpy(zero_copy_only=False), dtype=object), utc=True, format="ISO8601")
    return s.dt.tz_localize(None).to_numpy(dtype="datetime64[s]")


def _kind_table(kind: int, page: RawPage, idx: np.ndarray) -> pa.Table:
    """One kind of visit event from a page as an Arrow table of typed columns."""
    table = _parse([page.state[i] for i in idx.tolist()], _VISIT_SCHEMAS[kind])
    return _kind_columns(kind, table, _key_columns(page, idx), "timestamp", len(idx))


def _combined_tables(kind: int, recorded: str, page: RawPage, idx: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """Combined events (plan and outcome in one) as a planned table and an outcome table of ``kind``,
    exactly as the two separate events would be read (the outcome with its own recorded time)."""
    table = _parse([page.state[i] for i in idx.tolist()], _COMBINED_SCHEMAS[kind])
    keys = _key_columns(page, idx)
    return _kind_columns(PLANNED, table, keys, "timestamp", len(idx)), _kind_columns(kind, table, keys, recorded, len(idx))


def _key_columns(page: RawPage, idx: np.ndarray) -> dict[str, Any]:
    hi, lo = _hex_to_u64(page.originator_id[idx])
    return {"notification_id": page.notification_id[idx], "key_hi": hi, "key_lo": lo, "version": page.originator_version[idx]}


def _kind_columns(kind: int, table: pa.Table, keys: dict[str, Any], recorded: str, n: int) -> pa.Table:
    cols: dict[str, Any] = {**keys, "recorded_at": _utc_seconds(_data(table, recorded))}
    if kind == PLANNED:
        cols["recipient"] = _data(table, "recipient_id")
        cols["provider"] = table.column("provider")
        cols["team"] = table.column("team")
        cols["category"] = _data(table, "category")
        cols["planned_start"] = _utc_seconds(_data(table, "planned_start"))
        cols["planned_minutes"] = table.column("planned_minutes")
        # class_version 1 had no staff_planned: one staff (the upcast rule)
        cols["staff_planned"] = table.column("staff_planned").fill_null(1) if CLASS_VERSION in table.column_names else table.column("staff_planned")
    elif kind == PERFORMED:
        cols["actual_start"] = _utc_seconds(_data(table, "actual_start"))
        cols["actual_end"] = _utc_seconds(_data(table, "actual_end"))
        staff = _data(table, "staff")
        pc = pa.compute
        cols["staff1"] = pc.list_element(staff, 0)
        padded = pc.list_slice(staff, 0, 2, return_fixed_size_list=True)  # [a, null] for one staff
        cols["staff2"] = pc.list_flatten(padded).take(pa.array(np.arange(1, 2 * n, 2)))
        cols["registration"] = _data(table, "registration")
    elif kind == CANCELLED:
        cols["cancelled_by"] = _data(table, "by")
        cols["cancel_reason"] = _data(table, "reason")
        cols["cancelled_at"] = _utc_seconds(_data(table, "cancelled_at"))
    else:
        cols["actual_start"] = _utc_seconds(_data(table, "actual_start"))
        cols["actual_end"] = _utc_seconds(_data(table, "actual_end"))
    return pa.table(cols)


@dataclass
class VisitEvents:
    """Visit events by kind, each an Arrow table in notification order."""

    kinds: dict[int, pa.Table] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(t.num_rows for t in self.kinds.values())

    def extend(self, other: VisitEvents) -> None:
        for k, t in other.kinds.items():
            self.kinds[k] = pa.concat_tables([self.kinds[k], t]) if k in self.kinds else t

    def recorded_until(self, t: np.datetime64) -> VisitEvents:
        ts = pa.scalar(t.astype("datetime64[s]").astype(object), pa.timestamp("s"))
        return VisitEvents({k: v.filter(pa.compute.less_equal(v.column("recorded_at"), ts)) for k, v in self.kinds.items()})


def decode_visits(page: RawPage) -> VisitEvents:
    topics = pd.Series(page.topic, dtype=object)
    kinds = topics.map(_VISIT_TOPICS).fillna(-1).to_numpy(dtype=np.int8)
    parts: dict[int, list[pa.Table]] = {}
    for kind in _VISIT_SCHEMAS:
        idx = np.flatnonzero(kinds == kind)
        if len(idx):
            parts.setdefault(kind, []).append(_kind_table(kind, page, idx))
    for topic, (kind, recorded) in _COMBINED_TOPICS.items():
        idx = np.flatnonzero((topics == topic).to_numpy())
        if len(idx):
            planned, outcome = _combined_tables(kind, recorded, page, idx)
            parts.setdefault(PLANNED, []).append(planned)
            parts.setdefault(kind, []).append(outcome)
    out = VisitEvents()
    for kind, tables in parts.items():
        # each kind's rows in notification order, whichever event they came from
        out.kinds[kind] = tables[0] if len(tables) == 1 else pa.concat_tables(tables).sort_by("notification_id")
    return out


def decode_entities(page: RawPage) -> pd.DataFrame | None:
    """Recipient and provider events as rows of generic columns (few per recipient)."""
    names = np.array([_ENTITY_EVENTS.get(t) for t in page.topic], dtype=object)
    idx = np.flatnonzero(names != None)  # noqa: E711
    if not len(idx):
        return None
    rows = []
    for i in idx.tolist():
        state = json.loads(page.state[i])
        flat = {k: unwrap(v) for k, v in state.items()}
        flat.pop(ORIGINATOR_TOPIC, None)
        flat.pop(CLASS_VERSION, None)
        rows.append(
            {
                "notification_id": int(page.notification_id[i]),
                "aggregate": page.originator_id[i].decode(),
                "version": int(page.originator_version[i]),
                "event": names[i],
                "recorded_at": flat.pop("timestamp"),
                "fields": json.dumps(flat, ensure_ascii=False, sort_keys=True),
            }
        )
    df = pd.DataFrame(rows)
    df["recorded_at"] = pd.to_datetime(df["recorded_at"], utc=True, format="ISO8601").dt.tz_localize(None).astype("datetime64[s]")
    return df


def unknown_topics(page: RawPage) -> set[str]:
    return {t for t in set(page.topic.tolist()) if t not in _VISIT_TOPICS and t not in _COMBINED_TOPICS and t not in _ENTITY_EVENTS}

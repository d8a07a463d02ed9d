"""The columnar projection: the store's notification log folded into DataFrames.

Everything that settles or counts runs on these frames, never on event objects.

- ``visits``: one row per visit, the fold of its events (a correction replaces
  the registered times), with categorical and narrow numeric dtypes (about
  50 bytes per visit in memory). Times are Stockholm wall-clock
  ``datetime64[s]``; durations are computed from UTC instants, so DST is right.
- ``recipients``, ``decisions``, ``stays``, ``providers``, ``provider_choices``:
  small tables folded from the recipient and provider events.

States are parsed per event type with Arrow's JSON reader (C++, no Python call
per event). The fold is kept in a Parquet cache beside an SQLite store together
with the last notification id processed and the store's identity; a load
reads only newer notifications and folds them into the cached state. The cache
also keeps every event as a row (Parquet parts), so ``as_of=T`` can refold only
the events recorded at or before T.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ersattning import __version__
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
from ersattning.store import RawPage, Store

TZ = "Europe/Stockholm"
CACHE_SCHEMA = 4  # 4: the fold keeps each visit's aggregate version
STATUS = ["planned", "performed", "cancelled"]

# Visit event kinds in the event table
PLANNED, PERFORMED, CANCELLED, CORRECTED = 0, 1, 2, 3
_VISIT_TOPICS = {
    f"{Visit.Planned.__module__}:{Visit.Planned.__qualname__}": PLANNED,
    f"{Visit.Performed.__module__}:{Visit.Performed.__qualname__}": PERFORMED,
    f"{Visit.Cancelled.__module__}:{Visit.Cancelled.__qualname__}": CANCELLED,
    f"{Visit.Corrected.__module__}:{Visit.Corrected.__qualname__}": CORRECTED,
}
# Visit events that carry a plan and its outcome together (one event per imported row): each is
# read as the two rows of the events it stands for, with the outcome's own recorded time.
_COMBINED_TOPICS = {
    f"{Visit.PlannedAndPerformed.__module__}:{Visit.PlannedAndPerformed.__qualname__}": (PERFORMED, "performed_recorded_at"),
    f"{Visit.PlannedAndCancelled.__module__}:{Visit.PlannedAndCancelled.__qualname__}": (CANCELLED, "cancelled_recorded_at"),
}
_ENTITY_EVENTS = {
    f"{c.__module__}:{c.__qualname__}": c.__qualname__
    for c in (
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
}

_WRAPPED = pa.struct([("_data_", pa.string())])
_WRAPPED_LIST = pa.struct([("_data_", pa.list_(pa.string()))])
_VISIT_SCHEMAS = {
    PLANNED: pa.schema(
        [
            ("timestamp", _WRAPPED),
            ("recipient_id", _WRAPPED),
            ("provider", pa.string()),
            ("team", pa.string()),
            ("category", _WRAPPED),
            ("planned_start", _WRAPPED),
            ("planned_minutes", pa.int64()),
            ("staff_planned", pa.int64()),
            ("class_version", pa.int64()),
        ]
    ),
    PERFORMED: pa.schema(
        [
            ("timestamp", _WRAPPED),
            ("actual_start", _WRAPPED),
            ("actual_end", _WRAPPED),
            ("staff", _WRAPPED_LIST),
            ("registration", _WRAPPED),
        ]
    ),
    CANCELLED: pa.schema([("timestamp", _WRAPPED), ("by", _WRAPPED), ("reason", _WRAPPED), ("cancelled_at", _WRAPPED)]),
    CORRECTED: pa.schema([("timestamp", _WRAPPED), ("actual_start", _WRAPPED), ("actual_end", _WRAPPED), ("reason", pa.string())]),
}

_COMBINED_SCHEMAS = {
    kind: pa.schema(
        [f for f in _VISIT_SCHEMAS[PLANNED] if f.name != "class_version"]
        + [f for f in _VISIT_SCHEMAS[kind] if f.name != "timestamp"]
        + [(recorded, _WRAPPED)]
    )
    for kind, recorded in _COMBINED_TOPICS.values()
}


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
        return pa.chunked_array([c.field("_data_") for c in col.chunks], type=col.type.field("_data_").type)
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
        cols["staff_planned"] = table.column("staff_planned").fill_null(1) if "class_version" in table.column_names else table.column("staff_planned")
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


def _decode_visits(page: RawPage) -> VisitEvents:
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


def _decode_entities(page: RawPage) -> pd.DataFrame | None:
    """Recipient and provider events as rows of generic columns (few per recipient)."""
    names = np.array([_ENTITY_EVENTS.get(t) for t in page.topic], dtype=object)
    idx = np.flatnonzero(names != None)  # noqa: E711
    if not len(idx):
        return None
    rows = []
    for i in idx.tolist():
        state = json.loads(page.state[i])
        flat = {k: (v["_data_"] if isinstance(v, dict) and "_data_" in v else v) for k, v in state.items()}
        flat.pop("originator_topic", None)
        flat.pop("class_version", None)
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


def _unknown_topics(page: RawPage) -> set[str]:
    return {t for t in set(page.topic.tolist()) if t not in _VISIT_TOPICS and t not in _COMBINED_TOPICS and t not in _ENTITY_EVENTS}


# ---------------------------------------------------------------------------
# the visit fold


class Vocabulary:
    """Append-only string → code mapping, so codes stay stable across updates."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = list(values)
        self.index: dict[str, int] = {v: i for i, v in enumerate(self.values)}

    def encode(self, strings: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Codes for Arrow strings (-1 for null); new strings are appended."""
        enc = pa.chunked_array([strings]) if isinstance(strings, pa.Array) else strings
        enc = enc.combine_chunks().dictionary_encode()
        mapped = np.empty(len(enc.dictionary) + 1, dtype=np.int32)
        mapped[-1] = -1
        for j, u in enumerate(enc.dictionary.to_pylist()):
            code = self.index.get(u)
            if code is None:
                code = self.index[u] = len(self.values)
                self.values.append(u)
            mapped[j] = code
        return mapped[enc.indices.fill_null(-1).to_numpy()]


def _np(col: pa.ChunkedArray, dtype: Any) -> np.ndarray:
    return col.to_numpy().astype(dtype)


@dataclass
class VisitState:
    """The fold of all visit events seen so far, as column arrays."""

    cols: dict[str, np.ndarray] = field(default_factory=dict)
    vocab: dict[str, Vocabulary] = field(default_factory=dict)
    touched: list[np.ndarray] = field(default_factory=list)  # rows changed since the cache was last written

    NUMERIC: ClassVar[dict[str, Any]] = {
        "key_hi": np.uint64, "key_lo": np.uint64,
        "recipient": np.int32, "provider": np.int32, "team": np.int32, "category": np.int8, "status": np.int8,
        "planned_start": "datetime64[s]", "planned_start_utc": "datetime64[s]", "planned_minutes": np.int16,
        "staff_planned": np.int8, "actual_start": "datetime64[s]", "actual_start_utc": "datetime64[s]", "actual_minutes": np.float32,
        "staff1": np.int32, "staff2": np.int32, "registration": np.int8, "cancelled_by": np.int8,
        "cancel_reason": np.int8, "notice_minutes": np.float32, "corrections": np.int8,
        "registration_delay_minutes": np.float32, "version": np.int32,
    }  # fmt: skip
    ENUMS: ClassVar[dict[str, list[str]]] = {
        "category": [c.value for c in Category],
        "status": STATUS,
        "registration": [r.value for r in Registration],
        "cancelled_by": [c.value for c in CancelledBy],
        "cancel_reason": [c.value for c in CancelReason],
    }
    VOCABS: ClassVar[tuple[str, ...]] = ("recipient", "provider", "team", "staff")

    @classmethod
    def empty(cls) -> VisitState:
        return cls({k: np.empty(0, dtype=t) for k, t in cls.NUMERIC.items()}, {k: Vocabulary() for k in cls.VOCABS})

    def __len__(self) -> int:
        return len(self.cols["key_lo"])

    def _enum(self, name: str, values: pa.ChunkedArray) -> np.ndarray:
        cats = self.ENUMS[name]
        enc = values.combine_chunks().dictionary_encode()
        lookup = np.empty(len(enc.dictionary) + 1, dtype=np.int8)
        lookup[-1] = -1
        for j, u in enumerate(enc.dictionary.to_pylist()):
            if u not in cats:
                raise ProjectionError(f"unknown {name} value {u!r}")
            lookup[j] = cats.index(u)
        return lookup[enc.indices.fill_null(-1).to_numpy()]

    def apply(self, events: VisitEvents, *, drop_orphans: bool = False) -> None:
        """Fold visit events into the state, vectorized, kind by kind.

        A visit's planned event always precedes its other events in the log, so
        folding all planned events first and then each other kind in log order
        is the same as folding event by event.
        """
        if PLANNED in events.kinds:
            before = len(self)
            self._append_planned(events.kinds[PLANNED])
            self.touched.append(np.arange(before, len(self)))
        index = pd.Index(self.cols["key_lo"])
        if not index.is_unique:
            raise ProjectionError("two visits share the lower 64 bits of their id")
        for k, fold in ((PERFORMED, self._performed), (CANCELLED, self._cancelled), (CORRECTED, self._corrected)):
            rows = events.kinds.get(k)
            if rows is None or not rows.num_rows:
                continue
            pos = index.get_indexer(rows.column("key_lo").to_numpy())
            known = pos >= 0
            if len(self):
                known &= self.cols["key_hi"][np.maximum(pos, 0)] == rows.column("key_hi").to_numpy()
            if not known.all():
                if not drop_orphans:
                    raise ProjectionError(f"{int((~known).sum())} visit events refer to visits never planned")
                rows, pos = rows.filter(pa.array(known)), pos[known]
            fold(pos, rows)
            self._writable("version")
            np.maximum.at(self.cols["version"], pos, rows.column("version").to_numpy().astype(np.int32))
            self.touched.append(pos)

    def _append_planned(self, p: pa.Table) -> None:
        n = p.num_rows
        start_utc = _np(p.column("planned_start"), "datetime64[s]")
        new = {
            "key_hi": _np(p.column("key_hi"), np.uint64),
            "key_lo": _np(p.column("key_lo"), np.uint64),
            "recipient": self.vocab["recipient"].encode(p.column("recipient")),
            "provider": self.vocab["provider"].encode(p.column("provider")),
            "team": self.vocab["team"].encode(p.column("team")),
            "category": self._enum("category", p.column("category")),
            "status": np.zeros(n, np.int8),
            "planned_start": _local(start_utc),
            "planned_start_utc": start_utc,
            "planned_minutes": _np(p.column("planned_minutes"), np.int16),
            "staff_planned": _np(p.column("staff_planned"), np.int8),
            "actual_start": np.full(n, np.datetime64("NaT"), "datetime64[s]"),
            "actual_start_utc": np.full(n, np.datetime64("NaT"), "datetime64[s]"),
            "actual_minutes": np.full(n, np.nan, np.float32),
            "staff1": np.full(n, -1, np.int32),
            "staff2": np.full(n, -1, np.int32),
            "registration": np.full(n, -1, np.int8),
            "cancelled_by": np.full(n, -1, np.int8),
            "cancel_reason": np.full(n, -1, np.int8),
            "notice_minutes": np.full(n, np.nan, np.float32),
            "corrections": np.zeros(n, np.int8),
            "registration_delay_minutes": np.full(n, np.nan, np.float32),
            "version": _np(p.column("version"), np.int32),
        }
        for k, v in new.items():
            self.cols[k] = np.concatenate([self.cols[k], v])

    def _set_times(self, pos: np.ndarray, rows: pa.Table) -> None:
        self._writable("actual_start", "actual_start_utc", "actual_minutes")
        start = _np(rows.column("actual_start"), "datetime64[s]")
        end = _np(rows.column("actual_end"), "datetime64[s]")
        self.cols["actual_start"][pos] = _local(start)
        self.cols["actual_start_utc"][pos] = start
        self.cols["actual_minutes"][pos] = ((end - start).astype(np.int64) / 60.0).astype(np.float32)

    def _performed(self, pos: np.ndarray, rows: pa.Table) -> None:
        self._writable("status", "staff1", "staff2", "registration", "registration_delay_minutes")
        self.cols["status"][pos] = 1
        self._set_times(pos, rows)
        staff = self.vocab["staff"]
        self.cols["staff1"][pos] = staff.encode(rows.column("staff1"))
        self.cols["staff2"][pos] = staff.encode(rows.column("staff2"))
        self.cols["registration"][pos] = self._enum("registration", rows.column("registration"))
        delay = (_np(rows.column("recorded_at"), "datetime64[s]") - _np(rows.column("actual_end"), "datetime64[s]")).astype(np.int64)
        self.cols["registration_delay_minutes"][pos] = (delay / 60.0).astype(np.float32)

    def _cancelled(self, pos: np.ndarray, rows: pa.Table) -> None:
        self._writable("status", "cancelled_by", "cancel_reason", "notice_minutes")
        self.cols["status"][pos] = 2
        self.cols["cancelled_by"][pos] = self._enum("cancelled_by", rows.column("cancelled_by"))
        self.cols["cancel_reason"][pos] = self._enum("cancel_reason", rows.column("cancel_reason"))
        notice = (self.cols["planned_start_utc"][pos] - _np(rows.column("cancelled_at"), "datetime64[s]")).astype(np.int64)
        self.cols["notice_minutes"][pos] = (notice / 60.0).astype(np.float32)

    def _corrected(self, pos: np.ndarray, rows: pa.Table) -> None:
        # several corrections of one visit: the last one (in log order) wins
        last = ~pd.Series(pos).duplicated(keep="last").to_numpy()
        self._writable("corrections")
        self._set_times(pos[last], rows.filter(pa.array(last)))
        np.add.at(self.cols["corrections"], pos, 1)

    def frame(self) -> pd.DataFrame:
        """The visits table with categorical columns (≈45 bytes per visit)."""
        c = self.cols
        out: dict[str, Any] = {}
        for name in ("recipient", "provider", "team"):
            out[name] = pd.Categorical.from_codes(c[name], self.vocab[name].values)
        out["category"] = pd.Categorical.from_codes(c["category"], self.ENUMS["category"])
        out["status"] = pd.Categorical.from_codes(c["status"], STATUS)
        for name in ("planned_start", "planned_minutes", "staff_planned", "actual_start", "actual_minutes"):
            out[name] = c[name]
        staff = self.vocab["staff"].values
        out["staff1"] = pd.Categorical.from_codes(c["staff1"], staff)
        out["staff2"] = pd.Categorical.from_codes(c["staff2"], staff)
        for name in ("registration", "cancelled_by", "cancel_reason"):
            out[name] = pd.Categorical.from_codes(c[name], self.ENUMS[name])
        for name in ("notice_minutes", "corrections", "registration_delay_minutes"):
            out[name] = c[name]
        return pd.DataFrame(out, copy=False)

    # -- cache ------------------------------------------------------------------

    def to_table(self) -> pa.Table:
        return pa.table(dict(self.cols))

    def touched_rows(self) -> np.ndarray:
        return np.unique(np.concatenate(self.touched)) if self.touched else np.empty(0, dtype=np.int64)

    def delta_table(self) -> pa.Table:
        """The touched rows, with their positions, for an incremental cache write."""
        rows = self.touched_rows()
        return pa.table({"row": rows, **{k: v[rows] for k, v in self.cols.items()}})

    def apply_delta(self, table: pa.Table) -> None:
        """Overwrite (and extend to) the rows a delta holds."""
        rows = table.column("row").to_numpy()
        if not len(rows):
            return
        grow = int(rows.max()) + 1 - len(self)
        for k, t in self.NUMERIC.items():
            col = self.cols[k]
            if grow > 0:
                col = np.concatenate([col, np.zeros(grow, dtype=col.dtype)])
            elif not col.flags.writeable:
                col = col.copy()
            col[rows] = table.column(k).to_numpy().astype(t, copy=False)
            self.cols[k] = col

    def vocab_table(self) -> dict[str, list[str]]:
        return {k: v.values for k, v in self.vocab.items()}

    @classmethod
    def from_table(cls, table: pa.Table, vocab: dict[str, list[str]]) -> VisitState:
        # read-only views of Arrow's buffers; copied only when a fold writes into them
        cols = {k: table.column(k).to_numpy().astype(t, copy=False) for k, t in cls.NUMERIC.items()}
        return cls(cols, {k: Vocabulary(vocab.get(k, [])) for k in cls.VOCABS})

    def _writable(self, *names: str) -> None:
        for name in names:
            if not self.cols[name].flags.writeable:
                self.cols[name] = self.cols[name].copy()


def _local(utc: np.ndarray) -> np.ndarray:
    """UTC datetime64 → Stockholm wall-clock datetime64[s]."""
    idx = pd.DatetimeIndex(utc.astype("datetime64[s]")).tz_localize("UTC").tz_convert(TZ).tz_localize(None)
    return idx.to_numpy().astype("datetime64[s]")


# ---------------------------------------------------------------------------
# the small tables


_TEXT_FIELDS = (
    "pseudonym", "area", "provider", "decision_id", "category", "per", "stay_id", "kind", "reason", "code", "name", "ownership",
    "enrolled_on", "chosen_on", "valid_from", "valid_to", "ended_on", "start", "end", "departed_on",
)  # fmt: skip


def _fields(df: pd.DataFrame, event: str) -> pd.DataFrame:
    """The events of one type with their fields as columns (JSON parsed in bulk by Arrow)."""
    part = df[df["event"] == event]
    if not len(part):
        return pd.DataFrame()
    # text fields stay text (a pseudonym of digits must not become a number); the rest is inferred
    keys = list(json.loads(part["fields"].iloc[0]))  # every event of one type has the same fields
    text = pa.schema([(name, pa.string()) for name in keys if name in _TEXT_FIELDS])
    table = pajson.read_json(
        pa.BufferReader("\n".join(part["fields"]).encode()),
        parse_options=pajson.ParseOptions(explicit_schema=text, unexpected_field_behavior="infer"),
    )
    fields = table.to_pandas(types_mapper=None)
    fields.index = part.index
    for c in fields.columns:
        if fields[c].dtype == object and len(fields) and isinstance(fields[c].iloc[0], (list, np.ndarray)):
            fields[c] = fields[c].map(lambda x: list(x) if x is not None else [])
    return pd.concat([part[["notification_id", "aggregate", "version", "recorded_at"]], fields], axis=1)


def _date(s: pd.Series | np.ndarray) -> pd.Series:
    """Dates as parsed (Arrow reads ISO dates as timestamps) or as ISO strings → datetime64[s]."""
    s = pd.Series(s) if not isinstance(s, pd.Series) else s
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.astype("datetime64[s]")
    return pd.to_datetime(s, format="%Y-%m-%d").astype("datetime64[s]")


def fold_entities(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    ev = events.sort_values("notification_id", kind="stable")
    out: dict[str, pd.DataFrame] = {}
    p = _fields(ev, "Provider.Registered")
    out["providers"] = (
        pd.DataFrame(
            {
                "provider": p["code"].astype(str),
                "name": p["name"].astype(str),
                "ownership": pd.Categorical(p["ownership"], categories=[o.value for o in Ownership]),
                "teams": p["teams"].map(len).astype(np.int32),
            }
        ).reset_index(drop=True)
        if len(p)
        else pd.DataFrame({"provider": pd.Series(dtype=str), "name": pd.Series(dtype=str), "ownership": pd.Categorical([], categories=[o.value for o in Ownership]), "teams": pd.Series(dtype=np.int32)})
    )
    e = _fields(ev, "Recipient.Enrolled")
    rec = pd.DataFrame(
        {
            "recipient": e["aggregate"].astype(str) if len(e) else pd.Series(dtype=str),
            "pseudonym": e["pseudonym"].astype(str) if len(e) else pd.Series(dtype=str),
            "birth_year": e["birth_year"].astype(np.int16) if len(e) else pd.Series(dtype=np.int16),
            "area": pd.Categorical(e["area"] if len(e) else [], categories=[a.value for a in Area]),
            "enrolled_on": _date(e["enrolled_on"]) if len(e) else pd.Series(dtype="datetime64[s]"),
        }
    ).reset_index(drop=True)
    ch = _fields(ev, "Recipient.ProviderChosen")
    choices = (
        pd.DataFrame({"recipient": ch["aggregate"].astype(str), "provider": ch["provider"].astype(str), "chosen_on": _date(ch["chosen_on"])}).reset_index(drop=True)
        if len(ch)
        else pd.DataFrame({"recipient": pd.Series(dtype=str), "provider": pd.Series(dtype=str), "chosen_on": pd.Series(dtype="datetime64[s]")})
    )
    out["provider_choices"] = choices
    d = _fields(ev, "Recipient.Departed")
    departed = pd.DataFrame({"recipient": d["aggregate"], "departed_on": _date(d["departed_on"]), "departure_reason": d["reason"]}) if len(d) else pd.DataFrame(columns=["recipient", "departed_on", "departure_reason"])
    rec = rec.merge(departed, on="recipient", how="left")
    rec["departed_on"] = rec["departed_on"].astype("datetime64[s]")
    rec["departure_reason"] = pd.Categorical(rec["departure_reason"], categories=[r.value for r in DepartureReason])
    latest = choices.drop_duplicates("recipient", keep="last").set_index("recipient")["provider"]
    rec["provider"] = rec["recipient"].map(latest)
    out["recipients"] = rec

    g = _fields(ev, "Recipient.DecisionGranted")
    r = _fields(ev, "Recipient.DecisionRevised")
    en = _fields(ev, "Recipient.DecisionEnded")
    cols = ["recipient", "decision_id", "category", "granted_minutes", "per", "valid_from", "valid_to"]
    if len(g):
        seg = pd.concat(
            [
                pd.DataFrame({"recipient": g["aggregate"], "decision_id": g["decision_id"], "category": g["category"], "granted_minutes": g["granted_minutes"], "per": g["per"], "valid_from": g["valid_from"], "end": g["valid_to"], "nid": g["notification_id"]}),
                pd.DataFrame({"recipient": r["aggregate"], "decision_id": r["decision_id"], "granted_minutes": r["granted_minutes"], "valid_from": r["valid_from"], "nid": r["notification_id"]}) if len(r) else pd.DataFrame(),
            ],
            ignore_index=True,
        )
        seg = seg.sort_values(["recipient", "decision_id", "valid_from", "nid"], kind="stable")
        key = ["recipient", "decision_id"]
        seg[["category", "per", "end"]] = seg.groupby(key)[["category", "per", "end"]].ffill()
        nxt = seg.groupby(key)["valid_from"].shift(-1)
        if len(en):
            ended = en.drop_duplicates(["aggregate", "decision_id"], keep="last").rename(columns={"aggregate": "recipient"})[["recipient", "decision_id", "ended_on"]]
            stop = seg[key].merge(ended, on=key, how="left")["ended_on"].to_numpy()
        else:
            stop = np.full(len(seg), None, dtype=object)
        # a segment ends where the next revision starts, else where the decision ended, else at its own end
        seg["valid_to"] = _date(nxt).fillna(_date(pd.Series(stop, index=seg.index))).fillna(_date(seg["end"]))
        decisions = pd.DataFrame(
            {
                "recipient": seg["recipient"].astype(str),
                "decision_id": seg["decision_id"].astype(str),
                "category": pd.Categorical(seg["category"], categories=[c.value for c in Category]),
                "granted_minutes": seg["granted_minutes"].astype(np.int32),
                "per": pd.Categorical(seg["per"], categories=[x.value for x in Per]),
                "valid_from": _date(seg["valid_from"]),
                "valid_to": seg["valid_to"].astype("datetime64[s]"),
            }
        ).reset_index(drop=True)
    else:
        decisions = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out["decisions"] = decisions

    ss = _fields(ev, "Recipient.StayStarted")
    se = _fields(ev, "Recipient.StayEnded")
    if len(ss):
        stays = pd.DataFrame({"recipient": ss["aggregate"].astype(str), "stay_id": ss["stay_id"].astype(str), "kind": pd.Categorical(ss["kind"], categories=[k.value for k in StayKind]), "start": _date(ss["start"])})
        if len(se):
            ends = se.rename(columns={"aggregate": "recipient"})[["recipient", "stay_id", "end"]].drop_duplicates(["recipient", "stay_id"], keep="last")
            end = stays[["recipient", "stay_id"]].merge(ends, on=["recipient", "stay_id"], how="left")["end"].to_numpy()
        else:
            end = np.full(len(stays), None, dtype=object)
        stays["end"] = _date(pd.Series(end, index=stays.index))
        out["stays"] = stays.reset_index(drop=True)
    else:
        out["stays"] = pd.DataFrame({"recipient": pd.Series(dtype=str), "stay_id": pd.Series(dtype=str), "kind": pd.Categorical([], categories=[k.value for k in StayKind]), "start": pd.Series(dtype="datetime64[s]"), "end": pd.Series(dtype="datetime64[s]")})
    return out


# ---------------------------------------------------------------------------
# the projection and its cache


@dataclass
class Projection:
    """Columnar view of a store at a position (and optionally as known at a time)."""

    visits: pd.DataFrame
    recipients: pd.DataFrame
    decisions: pd.DataFrame
    stays: pd.DataFrame
    providers: pd.DataFrame
    provider_choices: pd.DataFrame
    position: int
    as_of: datetime | str | None
    store_id: str
    visit_keys: pd.DataFrame  # key_hi, key_lo aligned with visits

    @property
    def bytes_per_visit(self) -> float:
        n = len(self.visits)
        return float(self.visits.memory_usage(deep=True, index=True).sum()) / n if n else 0.0

    def service_period(self, start: str | None, end: str | None) -> Projection:
        """Only visits planned in [start, end) (local dates, 'YYYY-MM-DD' or 'YYYY-MM')."""
        mask = np.ones(len(self.visits), dtype=bool)
        ps = self.visits["planned_start"]
        if start:
            mask &= (ps >= pd.Timestamp(start)).to_numpy()
        if end:
            mask &= (ps < pd.Timestamp(end)).to_numpy()
        return Projection(
            self.visits[mask].reset_index(drop=True), self.recipients, self.decisions, self.stays, self.providers,
            self.provider_choices, self.position, self.as_of, self.store_id, self.visit_keys[mask].reset_index(drop=True),
        )  # fmt: skip


@dataclass
class _Cached:
    state: VisitState
    entity_events: pd.DataFrame
    position: int


def _empty_entities() -> pd.DataFrame:
    return pd.DataFrame({"notification_id": pd.Series(dtype=np.int64), "aggregate": pd.Series(dtype=str), "version": pd.Series(dtype=np.int64), "event": pd.Series(dtype=str), "recorded_at": pd.Series(dtype="datetime64[s]"), "fields": pd.Series(dtype=str)})


class ProjectionCache:
    """Parquet files beside the store: the fold, every event row, and the position."""

    META = "meta.json"

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory
        self._memory: _Cached | None = None  # memory:// stores keep it here
        self._meta: dict = {}  # the meta.json last read or written

    def load(self, store_id: str) -> _Cached | None:
        if self.dir is None:
            return self._memory
        meta_path = self.dir / self.META
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        if meta.get("store_id") != store_id or meta.get("schema") != CACHE_SCHEMA:
            return None
        try:
            vocab = json.loads((self.dir / "vocab.json").read_text())
            state = VisitState.from_table(pq.read_table(self.dir / "visits.parquet"), vocab)
            for name in meta.get("deltas", []):
                state.apply_delta(pq.read_table(self.dir / name))
            entities = pd.read_parquet(self.dir / "entity_events.parquet")
        except (OSError, ValueError, KeyError, pa.ArrowException):
            return None
        self._meta = meta
        return _Cached(state, entities, int(meta["position"]))

    def save(self, store_id: str, cached: _Cached, new_events: VisitEvents, first: int) -> None:
        if self.dir is None:
            cached.state.touched = []
            self._memory = cached
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        parts = self.dir / "visit_events"
        parts.mkdir(exist_ok=True)
        for kind, table in new_events.kinds.items():
            _write_parquet(table, parts / f"part-{first:015d}-{cached.position:015d}-{kind}.parquet")
        # The fold: a full file, plus delta files of the rows each later update
        # touched, until the deltas hold a fifth as many rows as the fold; then
        # the full file is written again. Plain encodings write and read fastest.
        previous = self._meta if self._meta.get("store_id") == store_id else {}
        deltas = list(previous.get("deltas", [])) if (self.dir / "visits.parquet").exists() else []
        delta_rows = int(previous.get("delta_rows", 0)) if deltas or previous else 0
        touched = len(cached.state.touched_rows())
        if "position" not in previous or delta_rows + touched > 0.2 * max(len(cached.state), 1):
            _write_parquet(cached.state.to_table(), self.dir / "visits.parquet", use_dictionary=False, write_statistics=False)
            stale, deltas, delta_rows = deltas, [], 0
        else:
            name = f"visits-delta-{cached.position:015d}.parquet"
            _write_parquet(cached.state.delta_table(), self.dir / name, use_dictionary=False, write_statistics=False)
            stale, deltas, delta_rows = [], [*deltas, name], delta_rows + touched
        cached.state.touched = []
        _write_parquet(pa.Table.from_pandas(cached.entity_events, preserve_index=False), self.dir / "entity_events.parquet")
        _write_text(self.dir / "vocab.json", json.dumps(cached.state.vocab_table(), ensure_ascii=False))
        # the position is written last: a crash before this leaves the old, consistent cache
        self._meta = {"store_id": store_id, "position": cached.position, "schema": CACHE_SCHEMA, "version": __version__, "deltas": deltas, "delta_rows": delta_rows}
        _write_text(self.dir / self.META, json.dumps(self._meta))
        for name in stale:
            (self.dir / name).unlink(missing_ok=True)

    def events(self, position: int) -> VisitEvents | None:
        """Every visit event up to ``position`` from the part files (None without a directory)."""
        if self.dir is None:
            return None
        out = VisitEvents()
        for p in sorted((self.dir / "visit_events").glob("part-*.parquet")):
            _, first, last, kind = p.stem.split("-")
            if int(last) > position:
                p.unlink(missing_ok=True)  # left by an update that did not finish
                continue
            out.extend(VisitEvents({int(kind): pq.read_table(p)}))
        return out

    def clear(self) -> None:
        self._memory = None
        self._meta = {}
        if self.dir is not None and self.dir.exists():
            shutil.rmtree(self.dir)


def _write_parquet(table: pa.Table, path: Path, **options: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="lz4", **options)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_new(store: Store, after: int, page_size: int) -> tuple[VisitEvents, list[pd.DataFrame], int]:
    visits, entities = VisitEvents(), []
    position = after
    for page in store.read_pages(after, page_size):
        unknown = _unknown_topics(page)
        if unknown:
            raise ProjectionError(f"the store holds events this version cannot read: {', '.join(sorted(unknown))}")
        visits.extend(_decode_visits(page))
        e = _decode_entities(page)
        if e is not None:
            entities.append(e)
        position = int(page.notification_id[-1])
    return visits, entities, position


_CACHES: dict[str, ProjectionCache] = {}


def _cache_for(store: Store) -> ProjectionCache:
    key = store.store_id
    if key not in _CACHES:
        _CACHES[key] = ProjectionCache(store.location.cache_dir)
    return _CACHES[key]


def update(store: Store, *, page_size: int = 250_000, rebuild: bool = False) -> _Cached:
    """Bring the cached fold up to the store's current position, reading only what is new."""
    cache = _cache_for(store)
    if rebuild:
        cache.clear()
    current = store.position()
    cached = cache.load(store.store_id)
    if cached is not None and cached.position > current:
        cached = None  # the cache is ahead of the store: not this store's history any more
    if cached is None:
        cache.clear()
        cached = _Cached(VisitState.empty(), _empty_entities(), 0)
    if cached.position == current:
        return cached
    first = cached.position + 1
    visits, entities, position = _read_new(store, cached.position, page_size)
    cached.state.apply(visits)
    if entities:
        cached.entity_events = pd.concat([cached.entity_events, *entities], ignore_index=True)
    cached.position = position
    cache.save(store.store_id, cached, visits, first)
    return cached


def load(store: Store, *, as_of: datetime | str | None = None, rebuild: bool = False) -> Projection:
    """The projection of ``store`` (updated incrementally), optionally as known at ``as_of``."""
    cached = update(store, rebuild=rebuild)
    if as_of is None:
        state, entity_events = cached.state, cached.entity_events
    else:
        t = _as_utc(as_of)
        events = _cache_for(store).events(cached.position)
        if events is None:  # no cache directory (memory store): read the log again
            events = _read_new(store, 0, 250_000)[0]
        state = VisitState.empty()
        state.apply(events.recorded_until(t), drop_orphans=True)
        entity_events = cached.entity_events[cached.entity_events["recorded_at"].to_numpy() <= t]
    tables = fold_entities(entity_events)
    keys = pd.DataFrame({"key_hi": state.cols["key_hi"], "key_lo": state.cols["key_lo"]})
    return Projection(
        visits=state.frame(),
        recipients=tables["recipients"],
        decisions=tables["decisions"],
        stays=tables["stays"],
        providers=tables["providers"],
        provider_choices=tables["provider_choices"],
        position=cached.position,
        as_of=as_of,
        store_id=store.store_id,
        visit_keys=keys,
    )


def _as_utc(t: datetime | str) -> np.datetime64:
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize(TZ)
    return np.datetime64(ts.tz_convert("UTC").tz_localize(None).to_datetime64(), "s")

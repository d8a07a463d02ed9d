"""The visit fold: one row per visit, the fold of its events.

A correction replaces the registered times; codes for text columns are kept in
append-only vocabularies, so a fold can go on from a cached state.
"""


from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from ersattning.calendar import TZ
from ersattning.domain import (
    CancelledBy,
    CancelReason,
    Category,
    Registration,
)
from ersattning.projection.decode import CANCELLED, CORRECTED, PERFORMED, PLANNED, ProjectionError, VisitEvents

STATUS = ["planned", "performed", "cancelled"]


# ---------------------------------------------------------------------------
# the visit fold


class Vocabulary:
    """Append-only string → code mapping, so codes stay stable across updates."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = list(values)
        self.index: dict[str, int] = {v: i for i, v in enumerate(self.values)}

    def encode(self, strings: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Codes for Arrow strings, plain or dictionary-coded (-1 for null); new strings are appended in the
        order they first occur, so both forms of the same rows give the same codes."""
        indices, distinct = _codes_and_values(strings)
        mapped = np.full(len(distinct) + 1, -1, dtype=np.int32)
        for j in pd.unique(indices[indices >= 0]).tolist():  # the values rows use, in order of first use
            u = distinct[j]
            code = self.index.get(u)
            if code is None:
                code = self.index[u] = len(self.values)
                self.values.append(u)
            mapped[j] = code
        return mapped[indices]


def _codes_and_values(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Per row a code into the distinct values (-1 for null): a dictionary array's own codes, else hashed."""
    enc = (pa.chunked_array([values]) if isinstance(values, pa.Array) else values).combine_chunks()
    if not pa.types.is_dictionary(enc.type):
        enc = enc.dictionary_encode()
    return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


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
        indices, distinct = _codes_and_values(values)
        lookup = np.full(len(distinct) + 1, -1, dtype=np.int8)
        for j in pd.unique(indices[indices >= 0]).tolist():
            if distinct[j] not in cats:
                raise ProjectionError(f"unknown {name} value {distinct[j]!r}")
            lookup[j] = cats.index(distinct[j])
        return lookup[indices]

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
        """The rows changed since the cache was last written, in order, each once (a mask, not a sort: a
        rebuild touches every row, and ``np.unique`` of 20 M rows took 15 s of a 67 s rebuild)."""
        if not self.touched:
            return np.empty(0, dtype=np.int64)
        mask = np.zeros(len(self), dtype=bool)
        for rows in self.touched:
            mask[rows] = True
        return np.flatnonzero(mask)

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

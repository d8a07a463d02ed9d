"""Importing historical visit logs: map, validate, pseudonymise and append, chunk by chunk.

Each chunk of rows is mapped to the canonical columns (``mapping.py``),
checked row by row (vectorized), pseudonymised (recipients and staff become
keyed hashes; a personal identity number never reaches the store in clear)
and appended as events in one transaction, on a thread while the next chunk is
read and checked. Rows that fail a check go to a quarantine CSV with their
file, line and reason; ``strict`` stops at the first one.

A new visit is one event: its plan, with its outcome when the row has one
(``Visit.PlannedAndPerformed`` / ``PlannedAndCancelled``, which carry the
outcome's own recorded time and fold exactly like ``Planned`` followed by
``Performed`` / ``Cancelled``). Imports are idempotent: a visit's aggregate id
is a keyed hash of its source key, so a row imported before adds nothing, a
newly registered outcome adds that event, and changed registered times become
a correction recorded later — an as-of replay before it still shows the old
times.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ersattning import append_process, projection
from ersattning.append_process import AppendProcess
from ersattning.bulk import Arena, EventBatch, encoder_for
from ersattning.domain import ID_NAMESPACE, CancelledBy, CancelReason, Category, Registration, Visit
from ersattning.mapping import VISIT_REQUIRED, Mapping
from ersattning.pseudonym import Pseudonymiser, find_personnummer
from ersattning.readers import Chunk, read_rows
from ersattning.store import AppendConflict, StoreError
from ersattning.import_strict import checked_first

MAX_VISIT_MINUTES = 16 * 60
STATUSES = ("performed", "cancelled_by_recipient", "cancelled_by_provider", "missed", "planned")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class ImportError_(Exception):
    """A problem that stops an import (``--strict``, a missing required column); the store is unchanged."""


@dataclass
class ImportReport:
    rows_read: int = 0
    rows_imported: int = 0
    rows_unchanged: int = 0
    skipped: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    events_written: int = 0
    columns_with_personnummer: set[str] = field(default_factory=set)
    seconds: float = 0.0
    staff_intervals_peak: int = 0  # most staff intervals held in memory at once for the overlap check
    journal: str = ""  # how an SQLite store was written: "delete" (the store to itself) or "wal" (beside readers)
    writer_seconds: float = 0.0  # the writer process's time inserting (overlaps the reading and checking)

    def summary(self) -> list[str]:
        lines = [
            f"rows read {self.rows_read:,}, imported {self.rows_imported:,}, already in the store {self.rows_unchanged:,}, "
            f"skipped {sum(self.skipped.values()):,}, quarantined {sum(self.quarantined.values()):,}; {self.events_written:,} events written"
        ]
        lines += [f"  skipped ({reason}): {n:,}" for reason, n in sorted(self.skipped.items())]
        lines += [f"  quarantined ({reason}): {n:,}" for reason, n in sorted(self.quarantined.items())]
        if self.columns_with_personnummer:
            lines.append(f"  personal identity numbers found in: {', '.join(sorted(self.columns_with_personnummer))} (never stored in clear)")
        return lines


class Quarantine:
    """Rejected rows as CSV: file, line, reason, then the row's cells as read."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._writer = None
        self._file = None
        self._columns: list[str] | None = None

    def write(self, chunk: Chunk, rows: np.ndarray, reasons: np.ndarray) -> None:
        if self.path is None or not len(rows):
            return
        names = chunk.table.column_names if chunk.table is not None else list(chunk.frame.columns)
        if self._file is None:
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._columns = names
            self._writer.writerow(["file", "line", "reason", *self._columns])
        if chunk.table is not None:  # only the rejected rows become Python strings
            taken = chunk.table.take(pa.array(rows))
            cells = [taken.column(c).to_pylist() if c in names else [None] * len(rows) for c in self._columns]
            values = zip(*cells, strict=True)
        else:
            values = chunk.frame.iloc[rows].reindex(columns=self._columns).itertuples(index=False)
        for line, reason, row in zip(chunk.lines[rows], reasons, values, strict=True):
            self._writer.writerow([chunk.path, int(line), reason, *("" if v is None else v for v in row)])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def reject_rows(chunk: Chunk, bad: np.ndarray, reason: np.ndarray, q: Quarantine, report: ImportReport, strict: bool) -> None:
    """Rows that failed a check: quarantined and counted, or with ``strict`` the end of the import."""
    if strict and bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ImportError_(f"{chunk.path}:{int(chunk.lines[first])}: {reason[first]} (--strict: nothing was written)")
    q.write(chunk, np.flatnonzero(bad), reason[bad])
    for why in reason[bad]:
        report.quarantined[why] += 1


# -- parsing cells ------------------------------------------------------------------------


_PNR_SCREEN = r"\p{Nd}{6}[-+]?\p{Nd}{4}"  # what find_personnummer's pattern needs at least (any Unicode digits, as Python's \d)


def _arrow(values: pd.Series) -> pa.Array | None:
    """A text column as an Arrow string array (None when it holds something other than text)."""
    try:
        return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _text(frame: pd.DataFrame, column: str, arrow: dict[str, pa.Array | None] | None = None) -> pd.Series:
    """A column's cells, stripped, with empty cells as None (vectorized in Arrow; the cells' own
    strings are kept where nothing is stripped, so no new objects are made for them)."""
    if column not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    arr = arrow.get(column) if arrow is not None and column in arrow else _arrow(frame[column])
    if arr is None:
        stripped = frame[column].astype("string").str.strip()
        return stripped.astype(object).where(stripped.notna() & (stripped != ""), None)
    values = frame[column].to_numpy(dtype=object)
    trimmed = pc.utf8_trim_whitespace(arr)
    length = pc.binary_length(trimmed)
    fix = pc.or_(pc.not_equal(length, pc.binary_length(arr)), pc.equal(length, 0)).fill_null(True).to_numpy(zero_copy_only=False)
    if fix.any():
        values = values.copy()
        values[fix] = [v or None for v in trimmed.filter(pa.array(fix)).to_pylist()]
    return pd.Series(values, index=frame.index, dtype=object, copy=False)


def _chunk_arrow(chunk: Chunk) -> dict[str, pa.Array]:
    """The chunk's columns as Arrow text, named as in the file (``Chunk.arrow``: the reader's Arrow
    table when it made one, no Python string per cell); columns that are not all text as their ``str``."""
    names = chunk.table.column_names if chunk.table is not None else list(chunk.frame.columns)
    out = {}
    for name in names:
        arr = chunk.arrow(name)
        out[name] = arr if arr is not None else _as_text(chunk.frame[name])
    return out


def _as_text(values: pd.Series) -> pa.Array:
    """Object cells as Arrow text; cells that are not text (a caller's numbers) as their ``str``."""
    arr = _arrow(values)
    if arr is None:
        arr = pa.array([None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values], type=pa.string())
    return arr


def _renamed(source: dict[str, pa.Array], mapping: Mapping, n: int) -> dict[str, pa.Array]:
    """Columns under their canonical names, with the mapping's ``defaults`` in empty cells and for
    columns the file lacks (as ``Mapping.fill_defaults`` does for a frame)."""
    cols = {mapping.columns.get(name, name): arr for name, arr in source.items()}
    for column, value in mapping.defaults.items():
        cols[column] = pc.fill_null(cols[column], str(value)) if column in cols else pa.array(np.full(n, str(value), dtype=object), type=pa.string())
    return cols


_EDGE_SPACE = np.zeros(256, dtype=bool)  # bytes that may begin or end whitespace: ASCII space and controls, and all beyond ASCII
_EDGE_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_EDGE_SPACE[0x80:] = True


def _is_cancelled(status: np.ndarray) -> np.ndarray:
    return pd.Series(status, dtype=object).isin(("cancelled_by_recipient", "cancelled_by_provider")).to_numpy()


def _stripped(arr: pa.Array) -> pa.Array:
    """Text with surrounding whitespace removed; empty cells null. Most columns have neither, which
    one look at each cell's first and last byte shows: then the column is kept as it is."""
    offsets, data = _buffers(arr)
    valid = _valid(arr)
    if len(data) and np.array_equal(valid, np.diff(offsets) > 0):  # no empty text (and no null holding any)
        if not (_EDGE_SPACE[data[offsets[:-1][valid]]].any() or _EDGE_SPACE[data[offsets[1:][valid] - 1]].any()):
            return arr
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(pc.binary_length(trimmed), 0), pa.scalar(None, pa.string()), trimmed)


def _objects(arr: pa.Array) -> pd.Series:
    """Arrow text as an object Series (``str`` or None), one Python string per distinct value rather than per cell."""
    if arr.null_count == len(arr):
        return pd.Series(np.full(len(arr), None, dtype=object), dtype=object)
    enc = arr.dictionary_encode()
    uniques = np.array([*enc.dictionary.to_pylist(), None], dtype=object)
    codes = enc.indices.fill_null(len(uniques) - 1).to_numpy(zero_copy_only=False)
    return pd.Series(uniques[codes], dtype=object, copy=False)


def _valid(arr: pa.Array) -> np.ndarray:
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _pnr_screen(arr: pa.Array) -> np.ndarray:
    """Cells that may hold a personnummer: a superset of what ``find_personnummer`` finds, cheaply.

    numpy passes over Arrow's byte buffer find the cells with six ASCII digits
    in a row, or with bytes beyond ASCII (other Unicode digits); only those get
    the RE2 pattern (six digits, an optional separator, four digits, any
    Unicode digits), and only the cells it flags are checked exactly (dates,
    Luhn) in Python. Times, durations and short ids never reach RE2.
    """
    n = len(arr)
    offsets, data = _buffers(arr)
    if arr.null_count == n or len(data) < 10:
        return np.zeros(n, dtype=bool)
    run = (data >= 48) & (data <= 57)
    for _ in range(5):  # after the k-th pass, run marks where k + 1 digits in a row start
        run = run[:-1] & run[1:]
    wide = np.flatnonzero(data >= 0x80)
    if len(wide) > n // 2:  # text with å, ä, ö in most cells: each distinct value once, when they repeat
        enc = arr.dictionary_encode()
        if len(enc.dictionary) < n // 4:
            hit = pc.match_substring_regex(enc.dictionary, _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
            return np.append(hit, False)[enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)]
    flagged = np.zeros(n, dtype=bool)  # cells with six digits in a row, or a byte beyond ASCII
    for at in (np.flatnonzero(run), wide):
        flagged[np.searchsorted(offsets, at, side="right") - 1] = True
    cells = np.flatnonzero(flagged)
    maybe = np.zeros(n, dtype=bool)
    if len(cells) > n // 2:
        maybe[:] = pc.match_substring_regex(arr, _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
    elif len(cells):
        maybe[cells] = pc.match_substring_regex(arr.take(pa.array(cells)), _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
    return maybe


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's offsets (rebased to 0) and bytes, without copying the bytes."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]] if arr.buffers()[2] is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data


def _personnummer_in(values: pa.Array | pd.Series) -> np.ndarray:
    """``find_personnummer`` on Arrow text (only the cells that pass the cheap screen become Python
    strings) or on an object Series (each distinct value looked at once)."""
    if isinstance(values, pa.Array):
        maybe = _pnr_screen(values)
        out = np.zeros(len(values), dtype=bool)
        if maybe.any():
            out[maybe] = find_personnummer(pd.Series(values.filter(pa.array(maybe)).to_pylist(), dtype=object))
        return out
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    if not len(uniques):
        return np.zeros(len(values), dtype=bool)
    return np.append(find_personnummer(pd.Series(np.asarray(uniques, dtype=object), dtype=object)), False)[codes]


def _mapped(values: pd.Series, table: dict[str, str]) -> pd.Series:
    """Source values → canonical values, looked up once per distinct value."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    lookup = np.array([table.get(u, u) for u in uniques] + [None], dtype=object)
    return pd.Series(lookup[codes], index=values.index, dtype=object)


def parse_times(values: pd.Series | pa.Array, mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Text → UTC ``datetime64[s]`` and a mask of cells that were present but could not be read.

    Times without an offset are local in the mapping's zone, DST-correct; a
    local time that does not exist or is ambiguous (the DST changes) is not
    read rather than guessed. ``values``: stripped text, empty cells null.
    Cells in the usual fixed-width forms (``YYYY-MM-DD HH:MM[:SS]``, also with
    ``T``) are read with numpy on Arrow's bytes; all others as pandas reads them.
    """
    arr = values if isinstance(values, pa.Array) else _as_text(values)
    n = len(arr)
    present = _valid(arr)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    if not present.any():
        return out, np.zeros(n, dtype=bool)
    local = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    fast = _fixed_width_local_times(arr, mapping.date_format, local)
    rest = present & ~fast
    if rest.any():
        idx = np.flatnonzero(rest)
        text = pd.Series(arr.filter(pa.array(rest)).to_pylist(), dtype=object)
        fmt = mapping.date_format or "ISO8601"
        has_offset = pc.match_substring_regex(pa.array(text, type=pa.string()), _OFFSET.pattern).to_numpy(zero_copy_only=False)
        if has_offset.any():
            parsed = pd.to_datetime(text[has_offset], format=fmt, utc=True, errors="coerce")
            out[idx[has_offset]] = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[s]")
        if (~has_offset).any():
            local[idx[~has_offset]] = pd.to_datetime(text[~has_offset], format=fmt, errors="coerce").to_numpy().astype("datetime64[s]")
    naive = ~np.isnat(local)
    if naive.any():
        zoned = pd.DatetimeIndex(local[naive]).tz_localize(mapping.timezone, ambiguous="NaT", nonexistent="NaT")
        out[naive] = zoned.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")
    bad = present & np.isnat(out)
    return out, bad


# the forms read on the fast path, by the mapping's date format (None: ISO 8601)
_FIXED_FORMS: dict[str | None, str] = {
    None: r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$",
    "%Y-%m-%d %H:%M": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$",
    "%Y-%m-%d %H:%M:%S": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
    "%Y-%m-%dT%H:%M": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$",
    "%Y-%m-%dT%H:%M:%S": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$",
}


def _fixed_width_local_times(arr: pa.Array, date_format: str | None, out: np.ndarray) -> np.ndarray:
    """Read the cells in a fixed-width form into ``out`` (naive local times); the mask of cells read.

    A cell of the right form but an impossible date or time (2024-02-30,
    25:00) is left to the general path, which rejects it as pandas does.
    """
    pattern = _FIXED_FORMS.get(date_format, "")
    n = len(arr)
    if not pattern:
        return np.zeros(n, dtype=bool)
    rows = np.flatnonzero(pc.match_substring_regex(arr, pattern).fill_null(False).to_numpy(zero_copy_only=False))
    if not len(rows):
        return np.zeros(n, dtype=bool)
    offsets, data = _buffers(arr)
    start = offsets[rows].astype(np.int64)
    seconds = (offsets[rows + 1] - offsets[rows]) == 19

    def number(at: int, width: int) -> np.ndarray:
        v = np.zeros(len(rows), dtype=np.int64)
        for k in range(width):
            v = v * 10 + (data[np.minimum(start + at + k, len(data) - 1)].astype(np.int64) - 48)
        return v

    year, month, day, hour, minute = number(0, 4), number(5, 2), number(8, 2), number(11, 2), number(14, 2)
    second = np.where(seconds, number(17, 2), 0)
    # years pandas' nanosecond times hold, as the general path
    ok = (year >= 1678) & (year <= 2261) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    ok &= days.astype("datetime64[M]") == months  # the day exists in its month
    read = rows[ok]
    out[read] = days[ok].astype("datetime64[s]") + (hour * 3600 + minute * 60 + second)[ok].astype("timedelta64[s]")
    mask = np.zeros(n, dtype=bool)
    mask[read] = True
    return mask


def parse_minutes(values: pd.Series | pa.Array, unit: str, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """Durations in the declared unit → minutes, and a mask of cells not in that unit.

    A value in another unit's form ("0:30" in a decimal-hours column, "0.5" in
    an h:mm column) is ambiguous and rejected, never reinterpreted.
    """
    if isinstance(values, pa.Array):
        values = _objects(values)  # durations repeat: few distinct strings
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    if len(uniques) < len(values) // 2:  # durations repeat: read each distinct one once
        out, bad = parse_minutes(pd.Series(np.asarray(uniques, dtype=object)), unit, decimal)
        out, bad = np.append(out, np.nan)[codes], np.append(bad, False)[codes]
        return out, bad
    present = values.notna().to_numpy()
    out = np.full(len(values), np.nan)
    text = values.astype(str).str.strip()
    if unit == "h:mm":
        m = text.str.fullmatch(r"(\d+):([0-5]\d)")
        parts = text.str.extract(r"^(\d+):([0-5]\d)$")
        ok = present & m.fillna(False).to_numpy()
        out[ok] = parts[0].to_numpy()[ok].astype(float) * 60 + parts[1].to_numpy()[ok].astype(float)
    else:
        pattern = r"\d+(,\d+)?" if decimal == "," else r"\d+(\.\d+)?"
        ok = present & text.str.fullmatch(pattern).fillna(False).to_numpy()
        number = text[ok].str.replace(",", ".", regex=False).astype(float).to_numpy()
        out[ok] = number * (60.0 if unit == "decimal_hours" else 1.0)
    return out, present & ~ok


# -- ids ----------------------------------------------------------------------------------


def visit_ids(pseudonymiser: Pseudonymiser, source_keys: np.ndarray | pd.Series | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic, keyed visit ids from source keys: (hex S32, hi, lo), version-4-style UUIDs, vectorized.

    The source key may hold a recipient's id (recipient + planned start +
    category when the file has no visit id), so it is hashed with the
    pseudonym key (a key derived for visit ids), never plainly.
    """
    hi, lo = pseudonymiser.keyed_ids(source_keys, "visit")
    hi = (hi & ~np.uint64(0xF000)) | np.uint64(0x4000)  # byte 6: version 4
    lo = (lo & ~np.uint64(0xC0 << 56)) | np.uint64(0x80 << 56)  # byte 8: RFC 4122 variant
    raw = np.empty((len(hi), 2), dtype=">u8")
    raw[:, 0], raw[:, 1] = hi, lo
    from ersattning.bulk import uuid_hex

    return uuid_hex(raw.view(np.uint8).reshape(-1, 16)), hi, lo


_NAMESPACE = ID_NAMESPACE.bytes


def _uuid5_hex(name: str) -> str:
    """``uuid5(ID_NAMESPACE, name).hex`` without building UUID objects (the same bits: SHA-1, version 5, RFC 4122 variant)."""
    raw = bytearray(hashlib.sha1(_NAMESPACE + name.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


class _Ids:
    """Pseudonyms and recipient ids of one import, each distinct source value hashed once for all chunks
    (the caches hold one entry per person, not per row)."""

    def __init__(self, pseudonymiser: Pseudonymiser) -> None:
        self.p = pseudonymiser
        self._pseudonyms: dict[str, str] = {}
        self._recipient_ids: dict[str, str] = {}

    def _coded(self, values: pd.Series) -> tuple[np.ndarray, list[str]]:
        """Codes into the distinct values (-1 for missing) and the pseudonym of each distinct value."""
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
        cache = self._pseudonyms
        uniques = uniques.tolist()
        missing = [u for u in uniques if u not in cache]
        if missing:
            cache.update(zip(missing, self.p.many(np.array(missing, dtype=object)).tolist(), strict=True))
        return codes, [cache[u] for u in uniques]

    def pseudonyms(self, values: pd.Series) -> np.ndarray:
        codes, pseudonyms = self._coded(values)
        return np.array(pseudonyms + [None], dtype=object)[codes]

    def recipient_ids(self, cells: pd.Series) -> pd.Categorical:
        """The recipient aggregate's id (hex) of each cell's pseudonym, as codes into the distinct ids
        (NaN for a missing recipient): one hash per distinct recipient, not per row."""
        codes, pseudonyms = self._coded(cells)
        out = []
        for pseudonym in pseudonyms:
            got = self._recipient_ids.get(pseudonym)
            if got is None:
                got = self._recipient_ids[pseudonym] = _uuid5_hex("recipient:" + pseudonym)
            out.append(got)
        if len(set(out)) < len(out):  # two spellings of one person: the same pseudonym
            return pd.Categorical(np.array(out + [None], dtype=object)[codes])
        return pd.Categorical.from_codes(codes, pd.Index(out, dtype=object))


def _split_staff(cells: pd.Series, separator: str) -> tuple[pd.Series, pd.Series]:
    """The first and second staff id of each cell ("A|B"); cells without the separator are split by none."""
    values = cells.to_numpy(dtype=object)
    first = values.copy()
    second = np.full(len(values), None, dtype=object)
    arr = _arrow(cells)
    has = pc.match_substring(arr, separator).fill_null(False).to_numpy(zero_copy_only=False) if arr is not None else np.array([separator in str(v) for v in values], dtype=bool)
    for i in np.flatnonzero(has).tolist():
        parts = [x.strip() for x in str(values[i]).split(separator)]
        first[i] = parts[0] or None
        second[i] = parts[1] or None if len(parts) > 1 else None
    return pd.Series(first, index=cells.index, dtype=object), pd.Series(second, index=cells.index, dtype=object)


# -- staff overlaps across chunks -------------------------------------------------------------


_NEVER = np.iinfo(np.int64).min


class StaffIntervals:
    """The staff intervals an import has accepted so far, for the overlap check, in bounded memory.

    Exports are usually in time order. After each chunk, intervals that ended
    before the *horizon* — the latest start seen minus ``slack`` — move from
    memory to a spill file on disk (numpy arrays appended to an anonymous
    temporary file, which the system removes even if the import is killed). A new row
    can overlap a spilled interval only if it starts before the horizon, so
    only such rows (out of order by more than the slack) are checked against
    the spill, which is then read back file by file. The check is therefore
    exact for any row order; memory holds about ``slack`` worth of intervals
    (plus the chunk) when the input is in time order, and each out-of-order
    chunk costs one read of the spill.
    """

    def __init__(self, slack: timedelta = timedelta(days=1)) -> None:
        self.slack = int(slack.total_seconds())
        self.codes: dict[str, int] = {}
        self.staff = np.empty(0, np.int32)
        self.start = np.empty(0, np.int64)  # UTC seconds
        self.end = np.empty(0, np.int64)
        self.horizon = _NEVER
        self.latest = _NEVER
        self.peak = 0  # most intervals held in memory at once
        self.spilled = 0
        self._file = None  # an unnamed temporary file: nothing is left behind, even after a kill
        self._spills: list[int] = []  # where each spill starts in it

    def code(self, staff: np.ndarray) -> np.ndarray:
        """Stable int codes of staff pseudonyms (-1 for None)."""
        codes, uniques = pd.factorize(staff, use_na_sentinel=True)
        table = np.array([self.codes.setdefault(u, len(self.codes)) for u in uniques] + [-1], dtype=np.int32)
        return table[codes]

    def clashes(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Which of the new intervals overlap (by more than a minute) one accepted before, or an earlier-starting one among themselves."""
        clash = _overlaps(self.staff, self.start, self.end, staff, start, end)
        old = start < self.horizon
        if old.any() and self._spills:
            idx = np.flatnonzero(old)
            for offset in self._spills:
                self._file.seek(offset)
                s_staff, s_start, s_end = (np.load(self._file) for _ in range(3))
                keep = np.isin(s_staff, staff[idx])
                if keep.any():
                    hit = _overlaps(s_staff[keep], s_start[keep], s_end[keep], staff[idx], start[idx], end[idx], among_new=False)
                    clash[idx[hit]] = True
        return clash

    def add(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        self.staff = np.concatenate([self.staff, staff])
        self.start = np.concatenate([self.start, start])
        self.end = np.concatenate([self.end, end])
        self.peak = max(self.peak, len(self.staff))
        if len(start):
            self.latest = max(self.latest, int(start.max()))
        horizon = self.latest - self.slack if self.latest != _NEVER else _NEVER
        if horizon <= self.horizon:
            return
        self.horizon = horizon
        out = self.end <= horizon
        if out.any():
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="ersattning-overlap-")
            self._file.seek(0, os.SEEK_END)
            self._spills.append(self._file.tell())
            for values in (self.staff[out], self.start[out], self.end[out]):
                np.save(self._file, values, allow_pickle=False)
            self.spilled += int(out.sum())
            self.staff, self.start, self.end = self.staff[~out], self.start[~out], self.end[~out]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._spills = []


def _overlaps(s_staff: np.ndarray, s_start: np.ndarray, s_end: np.ndarray, staff: np.ndarray, start: np.ndarray, end: np.ndarray, *, among_new: bool = True) -> np.ndarray:
    """For each new interval: does it overlap a stored one of the same staff member by more than a minute
    (either starting inside it or containing its start), or — with ``among_new`` — start inside an
    earlier-starting new one? Sort-based, vectorized."""
    n, m = len(staff), len(s_staff)
    out = np.zeros(n, dtype=bool)
    if not n:
        return out
    all_staff = np.concatenate([s_staff, staff])
    all_start = np.concatenate([s_start, start])
    all_end = np.concatenate([s_end, end])
    is_new = np.concatenate([np.zeros(m, bool), np.ones(n, bool)])
    order = np.lexsort((~is_new, all_start, all_staff))  # stored before new at equal starts
    g, a, b, new = all_staff[order], all_start[order], all_end[order], is_new[order]
    first = np.concatenate(([True], g[1:] != g[:-1]))
    group = np.cumsum(first) - 1
    # the latest end among earlier-starting intervals of the same staff member (stored, or new too)
    low, high = -(2**62), 2**62  # sentinels exact in float64 (the shifts below go through float)
    ends = pd.Series(np.where(new & (not among_new), low, b))
    before = ends.groupby(group).cummax().groupby(group).shift(1).fillna(low).to_numpy(np.int64)
    # the next stored interval's start (new rows are not checked against later-starting new rows)
    starts = pd.Series(np.where(new, high, a)[::-1])
    after = starts.groupby(group[::-1]).cummin().groupby(group[::-1]).shift(1).fillna(high).to_numpy(np.int64)[::-1]
    clash = new & ((a < before - 60) | (after < b - 60))
    out[order[clash] - m] = True
    return out


# -- the import -----------------------------------------------------------------------------


_CATEGORIES = [x.value for x in Category]

# What is kept per visit to make re-imports idempotent: about 40 bytes a visit, in arrays grown by
# blocks (no per-visit objects, no hash table): the id's low half sorted for lookups, the high half to
# tell two ids apart, the aggregate's version and status, and 64-bit digests of the plan and of the
# registered times (compared for equality only).
_KNOWN_COLUMNS = {"hi": np.uint64, "version": np.int32, "status": np.int8, "plan": np.uint64, "actual": np.uint64}


def _digest(*columns: np.ndarray) -> np.ndarray:
    """A 64-bit digest of each row of the columns (splitmix64 steps; NaT and -1 hash like any value)."""
    h = np.full(len(columns[0]), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in columns:
            h ^= np.asarray(c).astype(np.int64).view(np.uint64)
            h += np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(30)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return h


def _plan_digest(start: np.ndarray, minutes: np.ndarray, category_codes: np.ndarray, provider_codes: np.ndarray) -> np.ndarray:
    return _digest(np.asarray(start).astype("datetime64[s]"), np.asarray(minutes).astype(np.int64), category_codes, provider_codes)


def _actual_digest(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return _digest(np.asarray(start).astype("datetime64[s]"), np.asarray(end).astype("datetime64[s]"))


class _Known:
    """What the store already knows about visits, keyed by the low 64 bits of their id.

    Visits this import adds are appended chunk by chunk, so a row repeated in
    a later chunk is recognised as well.
    """

    def __init__(self, lo: np.ndarray, cols: dict[str, np.ndarray], recipients: set[str], providers: dict[str, int]) -> None:
        self.n = len(lo)
        order = np.argsort(lo, kind="stable")
        self.sorted_lo = np.asarray(lo, dtype=np.uint64)[order]
        self.sorted_pos = order.astype(np.int64)
        self.cols = {k: np.array(v, dtype=_KNOWN_COLUMNS[k]) for k, v in cols.items()}  # own, writable copies
        self.recipients = recipients
        self.providers = providers

    @classmethod
    def from_store(cls, store) -> _Known:
        cached = projection.update(store)
        st = cached.state
        c = st.cols
        start = c["actual_start_utc"]
        end = start + (np.round(np.nan_to_num(c["actual_minutes"]) * 60)).astype("timedelta64[s]")
        recipients = set(projection.fold_entities(cached.entity_events)["recipients"]["recipient"]) if len(cached.entity_events) else set()
        providers = {v: i for i, v in enumerate(st.vocab["provider"].values)}
        cols = {
            "hi": c["key_hi"], "version": c["version"], "status": c["status"], "actual": _actual_digest(start, end),
            "plan": _plan_digest(c["planned_start_utc"], c["planned_minutes"], c["category"], c["provider"]),
        }  # fmt: skip
        return cls(c["key_lo"], cols, recipients, providers)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            cols, n = self.__dict__["cols"], self.__dict__["n"]
            return cols[name][:n]
        except KeyError:
            raise AttributeError(name) from None

    def lookup(self, lo: np.ndarray) -> np.ndarray:
        """The position of each id's visit, -1 for ids not known."""
        if not len(self.sorted_lo):
            return np.full(len(lo), -1, dtype=np.int64)
        i = np.minimum(np.searchsorted(self.sorted_lo, lo), len(self.sorted_lo) - 1)
        return np.where(self.sorted_lo[i] == lo, self.sorted_pos[i], -1)

    def provider_codes(self, providers: np.ndarray) -> np.ndarray:
        """Stable codes of provider names (new names get new codes); -1 for None."""
        codes, uniques = pd.factorize(providers, use_na_sentinel=True)
        table = np.array([self.providers.setdefault(u, len(self.providers)) for u in uniques] + [-1], dtype=np.int32)
        return table[codes]

    def add(self, lo: np.ndarray, **columns: np.ndarray) -> None:
        m = len(lo)
        if not m:
            return
        n = self.n
        capacity = len(self.cols["hi"])
        if n + m > capacity:  # grow by a quarter at least: few copies, little slack
            grown = max(n + m, capacity + capacity // 4)
            for k, t in _KNOWN_COLUMNS.items():
                col = np.empty(grown, dtype=t)
                col[:n] = self.cols[k][:n]
                self.cols[k] = col
        for k in _KNOWN_COLUMNS:
            self.cols[k][n : n + m] = columns[k]
        order = np.argsort(lo, kind="stable")
        at = np.searchsorted(self.sorted_lo, lo[order])
        self.sorted_lo = np.insert(self.sorted_lo, at, lo[order])
        self.sorted_pos = np.insert(self.sorted_pos, at, n + order)
        self.n = n + m


def _category_codes(category: np.ndarray) -> np.ndarray:
    return pd.Index(_CATEGORIES).get_indexer(category).astype(np.int8)


@checked_first
def import_visits(
    store,
    paths: Iterable[str],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    *,
    strict: bool = False,
    quarantine: str | Path | None = None,
    dry_run: bool = False,
    chunk_rows: int = 200_000,
    progress: Callable[..., None] | None = None,
    now: datetime | None = None,
    overlap_slack: timedelta = timedelta(days=1),
) -> ImportReport:
    """Import visit rows from the files; see the module docstring.

    ``progress(rows, seconds, fraction)`` is called after each chunk, with the
    fraction of the files' bytes read so far (for an estimate of the time left).
    ``overlap_slack``: how far back in time rows may come after later ones and
    still be checked for staff overlaps against memory rather than the spill
    (see :class:`StaffIntervals`).
    """
    paths = [str(p) for p in paths]
    sizes = [_size(p) for p in paths]
    total = sum(sizes)

    def chunks() -> Iterator[tuple[Chunk, float | None]]:
        for i, path in enumerate(paths):
            for chunk in read_rows(path, chunk_rows=chunk_rows, encoding=mapping.encoding, delimiter=mapping.delimiter):
                yield chunk, ((sum(sizes[:i]) + sizes[i] * chunk.fraction) / total if total and chunk.fraction is not None else None)

    q = Quarantine(quarantine)
    try:
        return _import_chunks(store, chunks(), mapping, pseudonymiser, q, strict=strict, dry_run=dry_run, progress=progress, now=now, overlap_slack=overlap_slack)
    finally:
        q.close()


def import_visit_chunks(
    store,
    chunks: Iterable[Chunk],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    *,
    quarantine: Quarantine,
    strict: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Import chunks of visit rows that another reader made (the event-log import pairs events into them).

    The same checks, pseudonyms, ids and transactions as :func:`import_visits`;
    the caller owns the quarantine (it may write the rows' sources instead).
    """
    return _import_chunks(store, ((chunk, None) for chunk in chunks), mapping, pseudonymiser, quarantine, strict=strict, dry_run=dry_run, now=now)


def _import_chunks(
    store,
    chunks: Iterable[tuple[Chunk, float | None]],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    q: Quarantine,
    *,
    strict: bool = False,
    dry_run: bool = False,
    progress: Callable[..., None] | None = None,
    now: datetime | None = None,
    overlap_slack: timedelta = timedelta(days=1),
) -> ImportReport:
    """The chunk loop: check and encode a chunk while the previous one is appended."""
    started = time.perf_counter()
    report = ImportReport()
    known = _Known.from_store(store)
    recorded_now = np.datetime64((now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "s")
    staff_seen = StaffIntervals(slack=overlap_slack)
    ids = _Ids(pseudonymiser)
    writer = _Writer(store)
    arena = Arena()
    try:
        for i, (chunk, fraction) in enumerate(chunks):
            # the first and the last chunk in pieces: the writer starts after a quarter of the first
            # rather than all of it, and the reading ends a quarter of a chunk before the writing does
            last = fraction is not None and fraction >= 0.999
            for piece in _pieces(chunk, 4) if (i == 0 or last) and not dry_run else (chunk,):
                arena.reset()  # the previous batch was handed on by submit(): its memory is free again
                batch = _import_chunk(piece, mapping, pseudonymiser, ids, known, report, q, strict, recorded_now, staff_seen, arena)
                if len(batch) and not dry_run:
                    writer.submit(batch)
            if progress:
                progress(report.rows_read, time.perf_counter() - started, fraction)
        writer.wait()
        if not dry_run:
            store.checkpoint()
    finally:
        writer.close()
        report.events_written = writer.events
        report.journal = writer.journal
        report.writer_seconds = writer.busy_seconds
        staff_seen.close()
    report.seconds = time.perf_counter() - started
    report.staff_intervals_peak = staff_seen.peak
    return report


class _Writer:
    """Appends each chunk's batch while the next chunk is read and checked.

    SQLite stores are written by a child process (:mod:`ersattning.append_process`),
    other stores on a thread. At most one batch is in flight (memory stays
    bounded), batches go in file order, each in its own transaction; an append
    error surfaces at the next submit or at the end.
    """

    def __init__(self, store) -> None:
        self.store = store
        self.events = 0
        self._process: AppendProcess | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.journal = ""
        self.busy_seconds = 0.0

    def submit(self, batch: EventBatch) -> None:
        if self.store.is_sqlite and append_process.available():
            ids, versions, order = batch.ids_versions_order()
            self.wait()
            if self._process is None:
                self.store.release_connections()
                self._process = AppendProcess(str(self.store.location.path))
            self._process.send(ids, versions, order, list(zip(batch.topic, batch.state, strict=True)))
            return
        columns = batch.columns()  # the Python lists for the driver, built here: the thread only writes
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ersattning-append")
        self._pending = self._pool.submit(self._append, columns)

    def _append(self, columns: tuple[list, list, list, list]) -> int:
        self.store.append(*columns)
        self.store.checkpoint()  # the write-ahead log folded back while the next chunk is checked
        return len(columns[3])

    def wait(self) -> None:
        """Wait for the batch in flight; its error, if any, is raised here."""
        if self._process is not None:
            try:
                self.events += self._process.result()
                self.journal = self._process.journal or self.journal
                self.busy_seconds = self._process.busy_seconds
            except append_process.AppendFailed as e:
                if e.conflict:
                    raise AppendConflict(
                        "append rejected: an event with the same aggregate id and version is already stored "
                        f"(another writer got there first); nothing of this batch was written ({e})"
                    ) from None
                raise StoreError(f"cannot write to the store: {e}") from None
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.events += pending.result()

    def close(self) -> None:
        """Let a batch in flight finish (or fail) whole, then stop the writer; errors were raised by ``wait``."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - in the normal path wait() already raised it; here an error is on its way out
            pass
        finally:
            if self._process is not None:
                self._process.close()
                self._process = None
            if self._pool is not None:
                self._pool.shutdown()


_PIECE_ROWS = 25_000  # a chunk is cut in pieces only when they are at least this big


def _pieces(chunk: Chunk, parts: int) -> list[Chunk]:
    """A reader's chunk as ``parts`` consecutive chunks (each its own transaction), when it is big."""
    n = len(chunk)
    if type(chunk) is not Chunk or n < parts * _PIECE_ROWS:
        return [chunk]
    bounds = np.linspace(0, n, parts + 1).astype(int).tolist()
    return [
        Chunk(
            path=chunk.path,
            first_row=chunk.first_row + a,
            frame=None if chunk.table is not None else chunk.frame.iloc[a:b].reset_index(drop=True),
            lines=chunk.lines[a:b],
            fraction=chunk.fraction,
            table=chunk.table.slice(a, b - a) if chunk.table is not None else None,
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _import_chunk(
    chunk: Chunk,
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    ids: _Ids,
    known: _Known,
    report: ImportReport,
    q: Quarantine,
    strict: bool,
    recorded_now: np.datetime64,
    staff_seen: StaffIntervals,
    arena: Arena | None = None,
) -> EventBatch:
    source = _chunk_arrow(chunk)
    n = len(chunk)
    report.rows_read += n
    cols = _renamed(source, mapping, n)
    missing_columns = [c for c in VISIT_REQUIRED if c not in cols and not (c == "provider" and mapping.default_provider)]
    if missing_columns:
        raise ImportError_(f"{chunk.path}: no column for {', '.join(missing_columns)} (map them with columns: in the mapping file)")
    for column, arr in cols.items():
        if _personnummer_in(arr).any():
            report.columns_with_personnummer.add(str(column))
    text = {c: _stripped(arr) for c, arr in cols.items()}
    empty = pa.nulls(n, pa.string())

    reason = np.full(n, None, dtype=object)  # first failing check of each row
    unrejected = np.ones(n, dtype=bool)

    def reject(mask: np.ndarray, why: str) -> None:
        new = mask & unrejected
        reason[new] = why
        unrejected[new] = False

    # rows that are not visits
    skipped = np.zeros(n, dtype=bool)
    for rule in mapping.skip:
        name = mapping.columns.get(rule.column, rule.column)
        col = text.get(name) if name in text else (_stripped(source[rule.column]) if rule.column in source else None)
        if col is None:
            raise ImportError_(f"{chunk.path}: skip rule names column {rule.column!r}, which the file does not have")
        hit = pc.is_in(col, pa.array(rule.one_of, pa.string())) if rule.one_of else pc.equal(col, rule.equals)
        hit = hit.fill_null(False).to_numpy(zero_copy_only=False) & ~skipped
        report.skipped[rule.reason] += int(hit.sum())
        skipped |= hit

    cells = {c: _objects(text.get(c, empty)) for c in ("recipient", "provider", "category", "team", "staff", "status", "registration")}
    if mapping.default_provider:
        cells["provider"] = cells["provider"].fillna(mapping.default_provider)
    visit_key = text.get("visit_id", empty)
    for column, table in mapping.values.items():
        if column == "visit_id":
            visit_key = _as_text(_mapped(_objects(visit_key), table))
        elif column in cells:
            cells[column] = _mapped(cells[column], table)
    for c in VISIT_REQUIRED:
        if c in cells:
            reject(cells[c].isna().to_numpy(), f"{c} missing")
    reject(~_valid(text.get("planned_start", empty)), "planned_start missing")
    for c, allowed in (("category", [x.value for x in Category]), ("status", STATUSES), ("registration", [r.value for r in Registration])):
        bad = cells[c].notna().to_numpy() & ~cells[c].isin(allowed).to_numpy()
        reject(bad, f"{c} not one of {', '.join(allowed)} (map the source's values under values: {c})")
    for c in ("provider", "team"):
        reject(_personnummer_in(cells[c]), f"a personal identity number in {c}")

    decimal = mapping.decimal or ("," if (mapping.delimiter or "") == ";" else ".")
    times = {}
    for c in ("planned_start", "planned_end", "actual_start", "actual_end", "cancelled_at", "recorded_at"):
        times[c], bad = parse_times(text.get(c, empty), mapping)
        reject(bad, f"{c} is not a date and time" + (f" in the form {mapping.date_format}" if mapping.date_format else "") + " (or does not exist in local time)")
    for which in ("planned", "actual"):
        col = f"{which}_duration"
        if col in text:
            unit = mapping.units.get(col)
            if unit is None:
                raise ImportError_(f"{chunk.path}: the unit of {col} is not declared (units: {{{col}: minutes | decimal_hours | h:mm}} in the mapping)")
            minutes, bad = parse_minutes(text[col], unit, decimal)
            reject(bad, f"ambiguous unit in {col}: expected {unit}")
            end = times[f"{which}_start"] + (np.round(np.nan_to_num(minutes) * 60)).astype("timedelta64[s]")
            times[f"{which}_end"] = np.where(np.isnat(times[f"{which}_end"]) & ~np.isnan(minutes), end, times[f"{which}_end"])

    status = cells["status"].fillna("").to_numpy()
    has_actual = ~np.isnat(times["actual_start"])
    status = np.where(status == "", np.where(has_actual, "performed", "planned"), status)
    performed = status == "performed"
    reject(performed & (np.isnat(times["actual_start"]) | np.isnat(times["actual_end"])), "performed without a registered start and end")
    for which in ("planned", "actual"):
        s, e = times[f"{which}_start"], times[f"{which}_end"]
        both = ~np.isnat(s) & ~np.isnat(e)
        reject(both & (e < s), f"{which} end before start")
        reject(both & ((e - s).astype(np.int64) > MAX_VISIT_MINUTES * 60), f"{which} visit longer than 16 h")
    planned_minutes = (times["planned_end"] - times["planned_start"]).astype("timedelta64[s]").astype(np.float64) / 60
    planned_minutes = np.where(np.isnan(planned_minutes), (times["actual_end"] - times["actual_start"]).astype("timedelta64[s]").astype(np.float64) / 60, planned_minutes)
    reject(~(planned_minutes > 0), "no planned length (planned_end, planned_duration or registered times)")

    # pseudonyms: the store never sees the source's ids
    rid = ids.recipient_ids(cells["recipient"])
    if known.recipients:
        stored = np.append(rid.categories.isin(list(known.recipients)), True)  # a missing recipient is rejected above
        reject(~stored[rid.codes], "unknown recipient (not in the store's decisions)")
    first_staff, second_staff = _split_staff(cells["staff"], mapping.staff_separator)
    staff1 = ids.pseudonyms(first_staff)
    staff2 = ids.pseudonyms(second_staff)
    reject(performed & pd.isna(staff1), "performed without staff")

    source_key: pa.Array | np.ndarray = visit_key
    no_id = ~_valid(visit_key)
    if no_id.any():  # no visit id: the recipient, the planned start and the category make the key
        source_key = np.array(visit_key.to_pylist(), dtype=object)
        fallback = cells["recipient"][no_id].fillna("") + "|" + pd.Series(times["planned_start"][no_id].astype(str), index=cells["recipient"].index[no_id]) + "|" + cells["category"][no_id].fillna("")
        source_key[no_id] = fallback.to_numpy(dtype=object)
    vid, hi, lo = visit_ids(pseudonymiser, source_key)
    pos = known.lookup(lo)
    stored_visit = pos >= 0
    if stored_visit.any() and (known.hi[pos[stored_visit]] != hi[stored_visit]).any():
        raise ImportError_("two visits share the low 64 bits of their ids")

    # one staff member cannot be in two visits at once (checked against earlier rows of this import too)
    ok_rows = np.flatnonzero(unrejected & ~skipped & performed)
    iv_rows = np.concatenate([ok_rows, ok_rows])
    iv_staff = staff_seen.code(np.concatenate([staff1[ok_rows], staff2[ok_rows]]))
    present = iv_staff >= 0
    iv_rows, iv_staff = iv_rows[present], iv_staff[present]
    iv_start = times["actual_start"][iv_rows].astype(np.int64)
    iv_end = times["actual_end"][iv_rows].astype(np.int64)
    clash = staff_seen.clashes(iv_staff, iv_start, iv_end)
    overlap = np.zeros(n, dtype=bool)
    overlap[iv_rows[clash]] = True
    reject(overlap, "overlaps another visit of the same staff member")

    # a stored visit's plan cannot change through an import (there is no event for a new plan)
    provider_codes = known.provider_codes(cells["provider"].to_numpy(dtype=object))
    row_plan = _plan_digest(times["planned_start"], np.maximum(1, np.round(np.nan_to_num(planned_minutes))), _category_codes(cells["category"].to_numpy(dtype=object)), provider_codes)
    if stored_visit.any():
        changed_plan = np.zeros(n, dtype=bool)
        changed_plan[stored_visit] = known.plan[pos[stored_visit]] != row_plan[stored_visit]
        reject(changed_plan, "changes the plan (start, length, category or provider) of a visit already stored")
    # a stored outcome cannot turn into the other one (a cancelled visit later performed, or the reverse)
    stored = np.full(n, -1, dtype=np.int64)
    stored[stored_visit] = known.status[pos[stored_visit]]
    row_status = np.where(status == "performed", 1, np.where(_is_cancelled(status), 2, 0))
    reject((stored > 0) & (row_status > 0) & (stored != row_status), "conflicts with the outcome already stored for this visit")

    bad = ~unrejected & ~skipped
    reject_rows(chunk, bad, reason, q, report, strict)
    good = ~bad & ~skipped
    keep = good[iv_rows] & ~clash
    staff_seen.add(iv_staff[keep], iv_start[keep], iv_end[keep])
    return _events(good, vid, hi, lo, pos, rid, cells, times, status, planned_minutes, row_plan, staff1, staff2, known, report, recorded_now, arena)


def _events(good, vid, hi, lo, pos, rid, cells, times, status, planned_minutes, row_plan, staff1, staff2, known: _Known, report: ImportReport, recorded_now, arena: Arena | None = None) -> EventBatch:
    """New visits get one event: their plan, with the outcome when it is known (``PlannedAndPerformed``,
    ``PlannedAndCancelled``); known ones only what changed (an outcome, a correction)."""
    batch = EventBatch.empty()
    idx = np.flatnonzero(good)
    if not len(idx):
        return batch
    # the last row of a visit within the chunk wins
    last = ~pd.Series(lo[idx]).duplicated(keep="last").to_numpy()
    report.rows_unchanged += int((~last).sum())
    idx = idx[last]
    ids, pos = vid[idx], pos[idx]
    exists = pos >= 0

    def was(values: np.ndarray, fill: object) -> np.ndarray:
        """The stored value of each row's visit (``fill`` for visits new to the store)."""
        out = np.full(len(pos), fill, dtype=values.dtype)
        out[exists] = values[pos[exists]]
        return out

    old_status = was(known.status, -1)
    old_version = was(known.version, 0)
    recorded = times["recorded_at"][idx]
    performed = status[idx] == "performed"
    cancelled = _is_cancelled(status[idx])
    outcome_status = np.where(performed, 1, np.where(cancelled, 2, 0))
    new = ~exists

    # new visits: one event each
    if new.any():
        for which, event_class, extra in (
            (new & (outcome_status == 0), Visit.Planned, None),
            (new & performed, Visit.PlannedAndPerformed, _performed_columns),
            (new & cancelled, Visit.PlannedAndCancelled, _cancelled_columns),
        ):
            if not which.any():
                continue
            rows = idx[which]
            columns = _plan_columns(rows, recorded[which], rid, cells, times, planned_minutes, staff2)
            if extra is not None:
                columns |= extra(rows, recorded[which], status, cells, times, staff1, staff2, outcome_field=True)
            batch.add(encoder_for(event_class), ids[which], 1, columns, arena)
    # outcomes of known visits still only planned
    needs_outcome = exists & (old_status == 0) & (outcome_status > 0)
    for which, event_class, extra in ((needs_outcome & performed, Visit.Performed, _performed_columns), (needs_outcome & cancelled, Visit.Cancelled, _cancelled_columns)):
        if which.any():
            batch.add(encoder_for(event_class), ids[which], old_version[which] + 1, extra(idx[which], recorded[which], status, cells, times, staff1, staff2, outcome_field=False), arena)

    # known performed visits whose registered times changed: a correction, recorded now
    corr = performed & (old_status == 1)
    row_actual = _actual_digest(times["actual_start"][idx], times["actual_end"][idx])
    corr &= was(known.actual, 0) != row_actual
    if corr.any():
        c_idx = idx[corr]
        batch.add(
            encoder_for(Visit.Corrected),
            ids[corr],
            old_version[corr] + 1,
            {
                "timestamp": np.where(np.isnat(recorded[corr]), recorded_now, recorded[corr]),
                "actual_start": times["actual_start"][c_idx],
                "actual_end": times["actual_end"][c_idx],
                "reason": np.full(len(c_idx), "changed in a re-imported source row", dtype=object),
            },
            arena,
        )
    changed = new | needs_outcome | corr
    report.rows_imported += int(changed.sum())
    report.rows_unchanged += int((~changed).sum())
    # remember what this chunk adds, for later chunks of the same import
    n_rows = idx[new]
    known.add(lo[n_rows], hi=hi[n_rows], version=np.ones(len(n_rows), np.int32), status=outcome_status[new], actual=row_actual[new], plan=row_plan[n_rows])
    upd = np.flatnonzero(needs_outcome | corr)
    if len(upd):
        p = pos[upd]
        known.version[p] = known.version[p] + 1
        known.status[p] = np.maximum(known.status[p], outcome_status[upd])
        known.actual[p] = row_actual[upd]
    return batch


def _categorical(values: np.ndarray) -> pd.Categorical:
    """Codes into the distinct values in the order met (no sorting: the encoder does not need it)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, pd.Index(uniques, dtype=object))


def _plan_columns(rows, recorded, rid, cells, times, planned_minutes, staff2) -> dict:
    """The plan's fields; recorded when the row says, else at the planned start."""
    return {
        "timestamp": np.where(np.isnat(recorded), times["planned_start"][rows], recorded),
        "recipient_id": rid[rows],
        "provider": _categorical(cells["provider"].to_numpy()[rows]),
        "team": _categorical(cells["team"].fillna(cells["provider"]).to_numpy()[rows]),
        "category": _categorical(cells["category"].to_numpy()[rows]),
        "planned_start": times["planned_start"][rows],
        "planned_minutes": np.maximum(1, np.round(planned_minutes[rows])).astype(np.int64),
        "staff_planned": np.where(pd.notna(staff2[rows]), 2, 1),
    }


def _performed_columns(rows, recorded, status, cells, times, staff1, staff2, *, outcome_field: bool) -> dict:
    """A performance's fields; recorded when the row says, else at the registered end."""
    # the staff tuple of each row, built once per distinct pair
    first, firsts = pd.factorize(staff1[rows], use_na_sentinel=True)
    second, seconds = pd.factorize(staff2[rows], use_na_sentinel=True)
    codes, pairs = pd.factorize((first.astype(np.int64) + 1) * (len(seconds) + 1) + second + 1)
    tuples = []
    for pair in pairs.tolist():
        a, b = divmod(pair, len(seconds) + 1)
        tuples.append(tuple(x for x in (firsts[a - 1] if a else None, seconds[b - 1] if b else None) if x))
    staff = pd.Categorical.from_codes(codes, pd.Index(tuples, dtype=object, tupleize_cols=False))
    end = times["actual_end"][rows]
    at = np.where(np.isnat(recorded), end, recorded)
    return {
        ("performed_recorded_at" if outcome_field else "timestamp"): at,
        "actual_start": times["actual_start"][rows],
        "actual_end": end,
        "staff": staff,
        "registration": _categorical(cells["registration"].fillna("mobile").to_numpy()[rows]),
    }


def _cancelled_columns(rows, recorded, status, cells, times, staff1, staff2, *, outcome_field: bool) -> dict:
    """A cancellation's fields; recorded when the row says, else when it was made (else at the planned start)."""
    by = np.where(status[rows] == "cancelled_by_provider", CancelledBy.provider.value, CancelledBy.recipient.value)
    why = np.where(by == CancelledBy.provider.value, CancelReason.staffing.value, CancelReason.declined.value)
    at = np.where(np.isnat(times["cancelled_at"][rows]), times["planned_start"][rows], times["cancelled_at"][rows])
    return {
        ("cancelled_recorded_at" if outcome_field else "timestamp"): np.where(np.isnat(recorded), at, recorded),
        "by": pd.Categorical(by),
        "reason": pd.Categorical(why),
        "cancelled_at": at,
    }

"""Parsing cells of a chunk: text columns as Arrow, local times, minutes, staff pairs.

Every function here works on a whole column at once (Arrow or numpy); a cell that
cannot be parsed comes back marked in a boolean mask, never as an exception, so the
caller can quarantine the row with its reason.
"""


from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ersattning.ingest.mapping import Mapping
from ersattning.ingest.readers import Chunk
from ersattning.privacy import canonical_ids, find_personnummer
from ersattning.privacy.identity_numbers import PNR_RE2, shaped_ids

_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


_PNR_SCREEN = PNR_RE2  # every written form find_personnummer's pattern reads (any Unicode digits, blanks and dashes)


def _arrow(values: pd.Series) -> pa.Array | None:
    """A text column as an Arrow string array (None when it holds something other than text)."""
    try:
        return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def text_column(frame: pd.DataFrame, column: str, arrow: dict[str, pa.Array | None] | None = None) -> pd.Series:
    """A column's cells, stripped, with empty cells as None (vectorized in Arrow; the cells' own
    strings are kept where nothing is stripped, so no new objects are made for them)."""
    if column not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    arr = arrow.get(column) if arrow is not None and column in arrow else _arrow(frame[column])
    if arr is None:
        text = frame[column].astype("string").str.strip()
        return text.astype(object).where(text.notna() & (text != ""), None)
    values = frame[column].to_numpy(dtype=object)
    trimmed = pc.utf8_trim_whitespace(arr)
    length = pc.binary_length(trimmed)
    fix = pc.or_(pc.not_equal(length, pc.binary_length(arr)), pc.equal(length, 0)).fill_null(True).to_numpy(zero_copy_only=False)
    if fix.any():
        values = values.copy()
        values[fix] = [v or None for v in trimmed.filter(pa.array(fix)).to_pylist()]
    return pd.Series(values, index=frame.index, dtype=object, copy=False)


def chunk_columns(chunk: Chunk) -> dict[str, pa.Array]:
    """The chunk's columns as Arrow text, named as in the file (``Chunk.arrow``: the reader's Arrow
    table when it made one, no Python string per cell); columns that are not all text as their ``str``."""
    names = chunk.table.column_names if chunk.table is not None else list(chunk.frame.columns)
    out = {}
    for name in names:
        arr = chunk.arrow(name)
        out[name] = arr if arr is not None else as_arrow_text(chunk.frame[name])
    return out


def as_arrow_text(values: pd.Series) -> pa.Array:
    """Object cells as Arrow text; cells that are not text (a caller's numbers) as their ``str``."""
    arr = _arrow(values)
    if arr is None:
        cells = [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
        arr = pa.array(cells, type=pa.string())
    return arr


def renamed_columns(source: dict[str, pa.Array], mapping: Mapping, n: int) -> dict[str, pa.Array]:
    """Columns under their canonical names (a column mapped to several under each), with the mapping's
    ``defaults`` in empty cells and for columns the file lacks (as ``Mapping.fill_defaults`` does for a frame)."""
    cols = {mapping.columns.get(name, name): arr for name, arr in source.items()}
    for column, targets in mapping.copies.items():  # a source column mapped to several canonical ones
        if column in cols:
            cols.update(dict.fromkeys(targets, cols[column]))
    for column, value in mapping.defaults.items():
        cols[column] = pc.fill_null(cols[column], str(value)) if column in cols else pa.array(np.full(n, str(value), dtype=object), type=pa.string())
    return cols


_EDGE_SPACE = np.zeros(256, dtype=bool)  # bytes that may begin or end whitespace: ASCII space and controls, and all beyond ASCII
_EDGE_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_EDGE_SPACE[0x80:] = True


def is_cancelled(status: np.ndarray) -> np.ndarray:
    return pd.Series(status, dtype=object).isin(("cancelled_by_recipient", "cancelled_by_provider")).to_numpy()


def stripped(arr: pa.Array) -> pa.Array:
    """Text with surrounding whitespace removed; empty cells null. Most columns have neither, which
    one look at each cell's first and last byte shows: then the column is kept as it is."""
    offsets, data = _buffers(arr)
    if len(data):
        nonempty = np.diff(offsets) > 0
        if not arr.null_count:  # the usual column: every cell present, so no mask to apply
            first, last = (offsets[:-1], offsets[1:] - 1) if nonempty.all() else (None, None)
        else:
            valid = is_present(arr)
            first, last = (offsets[:-1][valid], offsets[1:][valid] - 1) if np.array_equal(valid, nonempty) else (None, None)
        # no empty text (and no null holding any), and no cell begins or ends with a byte that may be whitespace
        if first is not None and last is not None and not (_EDGE_SPACE[data[first]].any() or _EDGE_SPACE[data[last]].any()):
            return arr
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(pc.binary_length(trimmed), 0), pa.scalar(None, pa.string()), trimmed)


def as_objects(arr: pa.Array) -> pd.Series:
    """Arrow text as an object Series (``str`` or None), one Python string per distinct value rather than per cell."""
    if arr.null_count == len(arr):
        return pd.Series(np.full(len(arr), None, dtype=object), dtype=object)
    enc = arr.dictionary_encode()
    uniques = np.array([*enc.dictionary.to_pylist(), None], dtype=object)
    codes = enc.indices.fill_null(len(uniques) - 1).to_numpy(zero_copy_only=False)
    return pd.Series(uniques[codes], dtype=object, copy=False)


@dataclass(frozen=True)
class Coded:
    """A text column as codes into its distinct values (-1 for an empty cell), so that each distinct value is
    mapped, checked and hashed once rather than each cell (the values of a visit log repeat: recipients, staff,
    categories, statuses, durations)."""

    codes: np.ndarray  # int64, -1 for an empty cell
    uniques: np.ndarray  # object: each distinct value once (str)
    dictionary: pa.Array | None = None  # the uniques as Arrow text, when made from Arrow

    @classmethod
    def of(cls, arr: pa.Array) -> Coded:
        """Arrow text (stripped, empty cells null) by its dictionary: no Python string per cell."""
        enc = arr.dictionary_encode()
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        uniques = np.empty(len(enc.dictionary), dtype=object)
        uniques[:] = enc.dictionary.to_pylist()
        return cls(codes, uniques, enc.dictionary)

    def has_personnummer(self) -> bool:
        """Whether some cell holds an identity number (``personnummer_in`` of each distinct value once)."""
        values = self.dictionary if self.dictionary is not None else pd.Series(self.uniques, dtype=object)
        return bool(personnummer_in(values).any())

    @classmethod
    def factorized(cls, values: np.ndarray | pd.Series) -> Coded:
        """Object cells (``str`` or None) by ``pd.factorize``."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        return cls(codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object))

    def __len__(self) -> int:
        return len(self.codes)

    def per_row(self, values: np.ndarray, missing: object = None) -> np.ndarray:
        """``values`` (one per distinct value) for each cell, ``missing`` for an empty cell."""
        values = np.asarray(values)
        table = np.empty(len(values) + 1, dtype=values.dtype if missing is not None else object)
        table[:-1] = values
        table[-1] = missing
        return table[self.codes]

    def objects(self) -> np.ndarray:
        """The cells as an object array (``str`` or None)."""
        return self.per_row(self.uniques)

    def series(self) -> pd.Series:
        return pd.Series(self.objects(), dtype=object, copy=False)

    def missing(self) -> np.ndarray:
        return self.codes < 0

    def isin(self, allowed: Iterable[str]) -> np.ndarray:
        """Cells holding one of ``allowed`` (an empty cell: False)."""
        ok = set(allowed)
        return np.append(np.array([u in ok for u in self.uniques], dtype=bool), False)[self.codes]

    def take(self, rows: np.ndarray) -> Coded:
        return Coded(self.codes[rows], self.uniques)

    def remapped(self, uniques: np.ndarray) -> Coded:
        """The cells with each distinct value replaced by ``uniques`` (None: an empty cell), merged where two
        become one."""
        codes, merged = pd.factorize(np.asarray(uniques, dtype=object), use_na_sentinel=True)
        return Coded(np.append(codes, -1)[self.codes], np.asarray(merged, dtype=object))

    def mapped(self, table: dict[str, str]) -> Coded:
        """Source values → canonical values (as :func:`mapped_values`)."""
        return self.remapped(np.array([table.get(u, u) for u in self.uniques], dtype=object))

    def filled(self, value: str) -> Coded:
        """Empty cells as ``value``."""
        hit = np.flatnonzero(self.uniques == value) if len(self.uniques) else np.zeros(0, np.int64)
        uniques = self.uniques if len(hit) else np.append(self.uniques, value)
        at = int(hit[0]) if len(hit) else len(self.uniques)
        return Coded(np.where(self.codes < 0, at, self.codes), uniques)

    def or_else(self, other: Coded) -> Coded:
        """Each empty cell filled from ``other``'s cell in the same row."""
        codes = np.where(self.codes >= 0, self.codes, np.where(other.codes >= 0, other.codes + len(self.uniques), -1))
        return Coded(codes, np.concatenate([self.uniques, other.uniques])).remapped_uniques()

    def remapped_uniques(self) -> Coded:
        """The same cells with distinct values that are equal merged."""
        return self.remapped(self.uniques)

    def categorical(self, rows: np.ndarray) -> pd.Categorical:
        """The cells of ``rows`` as ``pd.Categorical`` (NaN for an empty cell), its categories the values they hold in
        the order met (as ``pd.factorize`` gives them)."""
        codes, used = pd.factorize(self.codes[rows])
        held = used >= 0
        new = np.where(held, np.cumsum(held) - 1, -1)
        return pd.Categorical.from_codes(new[codes] if len(codes) else codes, pd.Index(self.uniques[used[held]], dtype=object))


def canonical_coded(cells: Coded, on: np.ndarray) -> Coded:
    """:func:`canonical_ids` of coded cells: the same cells when no distinct value has the shape of an identity
    number (the usual ids, looked at once each), else the canonical forms (which depend on each row's date) coded."""
    if not shaped_ids(cells.uniques).any():
        return cells
    return Coded.factorized(canonical_ids(cells.objects(), on))


def split_staff_coded(cells: Coded, separator: str) -> tuple[Coded, Coded]:
    """:func:`split_staff` of coded cells, each distinct value split once."""
    firsts = cells.uniques.copy()
    seconds = np.full(len(firsts), None, dtype=object)
    for i, value in enumerate(cells.uniques.tolist()):
        if separator in str(value):
            parts = [x.strip() for x in str(value).split(separator)]
            firsts[i] = parts[0] or None
            seconds[i] = parts[1] or None if len(parts) > 1 else None
    return cells.remapped(firsts), cells.remapped(seconds)


def is_present(arr: pa.Array) -> np.ndarray:
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _pnr_screen(arr: pa.Array) -> np.ndarray:
    """Cells that may hold a personnummer: a superset of what ``find_personnummer`` finds, cheaply.

    numpy passes over Arrow's byte buffer find where the pattern's ASCII forms may
    be (four digits with at least six more before them in one run of digits, blanks,
    ``-`` and ``+``: :func:`_ascii_candidates`), and the bytes beyond ASCII (other
    Unicode digits, blanks and dashes); only the cells holding one get the RE2
    pattern, and only the cells it flags are checked exactly (dates, Luhn) in
    Python. Times (``2024-03-10 08:00``), durations and short ids never reach RE2.
    """
    n = len(arr)
    offsets, data = _buffers(arr)
    m = len(data)
    if arr.null_count == n or m < 10:
        return np.zeros(n, dtype=bool)
    # in reused memory: fresh temporaries of a column's size cost more in page faults than the passes themselves
    byte, d, r2, r4, r6 = _scratch(m)
    d = np.less(np.subtract(data, np.uint8(48), out=byte), 10, out=d)  # an ASCII digit (bytes below '0' wrap around)
    r2 = np.logical_and(d[:-1], d[1:], out=r2[: m - 1])  # r2[i]: digits at i and i + 1
    r4 = np.logical_and(r2[:-2], r2[2:], out=r4[: m - 3])
    ascii_ends = _ascii_candidates(data, offsets, r4, d, r6) if m >= 10 and r4.any() else np.zeros(0, np.int64)
    wide_bytes = np.greater_equal(data, 0x80, out=d)
    wide_count = int(np.count_nonzero(wide_bytes))
    if wide_count > n // 2:  # text with å, ä, ö in most cells: each distinct value once, when they repeat
        enc = arr.dictionary_encode()
        if len(enc.dictionary) < n // 4:
            hit = pc.match_substring_regex(enc.dictionary, _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
            return np.append(hit, False)[enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)]
    starts = [np.flatnonzero(wide_bytes) if wide_count else np.zeros(0, np.int64)]
    starts.append(ascii_ends)
    flagged = np.zeros(n, dtype=bool)  # cells where the ASCII form starts, or with a byte beyond ASCII
    for at in starts:
        flagged[np.searchsorted(offsets, at, side="right") - 1] = True
    cells = np.flatnonzero(flagged)
    maybe = np.zeros(n, dtype=bool)
    if len(cells) > n // 2:
        maybe[:] = pc.match_substring_regex(arr, _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
    elif len(cells):
        maybe[cells] = pc.match_substring_regex(arr.take(pa.array(cells)), _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
    return maybe


def _run_byte(byte: np.ndarray) -> np.ndarray:
    """Bytes that may stand in a number written in ASCII: digits, space, tab, ``-`` and ``+``."""
    return np.less(byte - np.uint8(48), 10) | (byte == 32) | (byte == 9) | (byte == 45) | (byte == 43)


def _ascii_candidates(data: np.ndarray, offsets: np.ndarray, r4: np.ndarray, digit: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Where a number written in ASCII (``YYMMDD-NNNC``, ``580505 7774``, ``19720516 - 2014``,
    ``1972-05-16-2014``) may end: four digits ending a run of digits (or their cell), with six bytes of
    digits and separators (space, tab, ``-``, ``+``) before them in their cell, and at least six digits
    among the 17 bytes of that run before them (eight digits, two dashes, a separator of seven).

    ``r4[i]``: four digits from ``i``; ``digit``: the ASCII digits; ``scratch``: a bool array of ``len(data)``.
    Each test narrows the positions the next one gathers, so a column of times or short ids costs two passes
    and a few gathers."""
    m = len(data)
    ends = np.logical_not(digit[4:], out=scratch[: m - 4])
    ends = np.logical_and(r4[: m - 4], ends, out=ends)
    cell_ends = offsets[1:] - 4
    cell_ends = cell_ends[(cell_ends >= 6) & (cell_ends < m - 4)]
    ends[cell_ends[r4[cell_ends]]] = True  # four digits that end their cell, the next one starting with a digit
    fours = np.flatnonzero(ends[6:]) + 6
    if m >= 10 and r4[m - 4]:
        fours = np.append(fours, m - 4)
    for k in (3, 1, 2, 4, 5, 6):  # 3 first: a time's ':' before its year
        fours = fours[_run_byte(data[fours - k])]
    if not len(fours):
        return fours
    cell = np.searchsorted(offsets, fours, side="right") - 1
    start, end = offsets[cell], offsets[cell + 1]
    keep = (fours - start >= 6) & ((fours + 4 == end) | ~digit[np.minimum(fours + 4, m - 1)])
    fours, start = fours[keep], start[keep]
    back = np.arange(1, 18)
    pos = fours[:, None] - back[None, :]
    inside = pos >= start[:, None]
    byte = data[np.maximum(pos, 0)]
    digits = np.less(byte - np.uint8(48), 10) & inside
    run = _run_byte(byte) & inside
    length = np.where(run.all(axis=1), len(back), np.argmin(run, axis=1))  # bytes of the run before the position
    counted = np.cumsum(digits, axis=1)[np.arange(len(fours)), np.maximum(length - 1, 0)]
    return fours[(length > 0) & (counted >= 6)]


_SCRATCH = threading.local()


def _scratch(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Five byte arrays of ``m`` (one uint8, four bool), kept per thread and grown as needed."""
    held = getattr(_SCRATCH, "arrays", None)
    if held is None or len(held[0]) < m:
        size = max(m, 1 << 20)
        held = _SCRATCH.arrays = (np.empty(size, np.uint8), *(np.empty(size, bool) for _ in range(4)))
    return held[0][:m], held[1][:m], held[2][:m], held[3][:m], held[4][:m]


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's offsets (rebased to 0) and bytes, without copying the bytes."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]] if arr.buffers()[2] is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data


def personnummer_in(values: pa.Array | pd.Series) -> np.ndarray:
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


def mapped_values(values: pd.Series, table: dict[str, str]) -> pd.Series:
    """Source values → canonical values, looked up once per distinct value."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    lookup = np.array([table.get(u, u) for u in uniques] + [None], dtype=object)
    return pd.Series(lookup[codes], index=values.index, dtype=object)


#: the dates an import reads (docs/mapping.md): a date or time outside these years is quarantined, not stored
DATE_WINDOW = (1900, 2100)
_WINDOW_START = np.datetime64(f"{DATE_WINDOW[0]}-01-01T00:00:00", "s")
_WINDOW_END = np.datetime64(f"{DATE_WINDOW[1] + 1}-01-01T00:00:00", "s")  # exclusive


def outside_window(times: np.ndarray) -> np.ndarray:
    """The dates or times read (not NaT) that lie outside :data:`DATE_WINDOW` (e.g. 0001-01-01, 9999-12-31)."""
    t = np.asarray(times).astype("datetime64[s]")
    return ~np.isnat(t) & ((t < _WINDOW_START) | (t >= _WINDOW_END))


def window_reason(column: str) -> str:
    """The quarantine reason for a date of ``column`` outside :data:`DATE_WINDOW`."""
    return f"{column} outside the years {DATE_WINDOW[0]}-{DATE_WINDOW[1]}"


def parse_times(values: pd.Series | pa.Array, mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Text → UTC ``datetime64[s]`` and a mask of cells that were present but could not be read.

    Times without an offset are local in the mapping's zone, DST-correct; a
    local time that does not exist (the spring change) is not read rather than
    guessed, and one in the repeated autumn hour is not read either (see
    :func:`parse_local_times`, which resolves it). ``values``: stripped text,
    empty cells null.
    """
    out, bad, repeated = parse_local_times(values, mapping)
    out[repeated] = np.datetime64("NaT")
    return out, bad | repeated


def parse_local_times(values: pd.Series | pa.Array, mapping: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`parse_times`, but a local time in the repeated autumn hour (e.g. 2024-10-27 02:30 in
    Stockholm, which happens twice) is read as its *first* occurrence and flagged in the third mask, so the
    caller can apply its rule (the visit import: an end takes the second occurrence when the first would
    precede its start; README, importing visit logs) and count it.

    Cells in the usual fixed-width forms (``YYYY-MM-DD HH:MM[:SS]``, also with
    ``T``) are read with numpy on Arrow's bytes; all others as pandas reads them.
    """
    arr = values if isinstance(values, pa.Array) else as_arrow_text(values)
    n = len(arr)
    present = is_present(arr)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    repeated = np.zeros(n, dtype=bool)
    if not present.any():
        return out, np.zeros(n, dtype=bool), repeated
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
        utc = zoned.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")
        twice = np.isnat(utc)
        if twice.any():  # not read: does not exist, or exists twice — the first occurrence of those that exist twice
            first = pd.DatetimeIndex(local[naive][twice]).tz_localize(mapping.timezone, ambiguous=np.ones(int(twice.sum()), dtype=bool), nonexistent="NaT")
            utc[twice] = first.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")
            at = np.flatnonzero(naive)[twice]
            repeated[at] = ~np.isnat(utc[twice])
        out[naive] = utc
    bad = present & np.isnat(out)
    return out, bad, repeated


# the forms read on the fast path, by the mapping's date format (None: ISO 8601): the separator between date and
# time, and the cell lengths (16: no seconds, 19: with seconds)
_FIXED_FORMS: dict[str | None, tuple[bytes, tuple[int, ...]]] = {
    None: (b" T", (16, 19)),
    "%Y-%m-%d %H:%M": (b" ", (16,)),
    "%Y-%m-%d %H:%M:%S": (b" ", (19,)),
    "%Y-%m-%dT%H:%M": (b"T", (16,)),
    "%Y-%m-%dT%H:%M:%S": (b"T", (19,)),
}
_DIGITS = {16: [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15], 19: [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]}
_MARKS = {16: [(4, b"-"), (7, b"-"), (13, b":")], 19: [(4, b"-"), (7, b"-"), (13, b":"), (16, b":")]}


# the calendar of the years read on the fast path: each year's first day (days since 1970), leap years, and each
# month's length and first day within its year (a common year's twelve months, then a leap year's)
_FIRST_YEAR = 1678
_YEAR_START = (np.arange(_FIRST_YEAR, 2263) - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
_IS_LEAP = (np.diff(_YEAR_START) == 366).astype(np.int64)
_MONTH_LENGTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_MONTH_START = np.concatenate([np.cumsum(_MONTH_LENGTH[:12]) - _MONTH_LENGTH[:12], np.cumsum(_MONTH_LENGTH[12:]) - _MONTH_LENGTH[12:]])


def _fixed_width_local_times(arr: pa.Array, date_format: str | None, out: np.ndarray) -> np.ndarray:
    """Read the cells in a fixed-width form (``YYYY-MM-DD HH:MM[:SS]``, the separator as the format says) into ``out``
    (naive local times); the mask of cells read.

    The cells of one length are a matrix of bytes (a view of Arrow's buffer when every present cell has that length,
    the usual column), checked position by position (ASCII digits, ``-``, ``:``) and read with numpy. A cell of the
    right form but an impossible date or time (2024-02-30, 25:00) is left to the general path, which rejects it as
    pandas does.
    """
    form = _FIXED_FORMS.get(date_format)
    n = len(arr)
    mask = np.zeros(n, dtype=bool)
    if form is None or arr.null_count == n:
        return mask
    separators, widths = form
    offsets, data = _buffers(arr)
    lengths = np.diff(offsets)
    for width in widths:
        rows = np.flatnonzero(lengths == width)
        if not len(rows):
            continue
        if len(rows) * width == len(data):  # every present cell has this length: the bytes are the matrix
            cells = data.reshape(len(rows), width)
        else:
            cells = data[offsets[rows][:, None] + np.arange(width)]
        d = (cells[:, _DIGITS[width]] - np.uint8(48)).T.astype(np.int16)  # a row per digit (bytes below '0' wrap: > 9)
        ok = (d.max(axis=0) < 10) & np.isin(cells[:, 10], np.frombuffer(separators, np.uint8))
        for at, mark in _MARKS[width]:
            ok &= cells[:, at] == mark[0]
        year = (d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]).astype(np.int64)
        month, day, hour, minute = (d[k] * 10 + d[k + 1] for k in (4, 6, 8, 10))
        second = d[12] * 10 + d[13] if width == 19 else np.int16(0)
        # years pandas' nanosecond times hold, as the general path
        ok &= (year >= _FIRST_YEAR) & (year <= 2261) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59)
        year_at = np.where(ok, year - _FIRST_YEAR, 0)
        month_at = _IS_LEAP[year_at] * 12 + np.where(ok, month - 1, 0)
        ok &= day <= _MONTH_LENGTH[month_at]  # the day exists in its month
        days = _YEAR_START[year_at] + _MONTH_START[month_at] + day - 1  # since 1970-01-01
        seconds = (days * 86400 + hour.astype(np.int64) * 3600 + minute * 60 + second).astype("datetime64[s]")
        if ok.all():
            out[rows] = seconds
            mask[rows] = True
        else:
            out[rows[ok]] = seconds[ok]
            mask[rows[ok]] = True
    return mask


def parse_minutes(values: pd.Series | pa.Array, unit: str, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """Durations in the declared unit → minutes, and a mask of cells not in that unit.

    A value in another unit's form ("0:30" in a decimal-hours column, "0.5" in
    an h:mm column) is ambiguous and rejected, never reinterpreted.
    """
    if isinstance(values, pa.Array):  # durations repeat: few distinct strings
        coded = Coded.of(values)
        codes, uniques = coded.codes, coded.uniques
        if len(uniques) >= len(values) // 2:
            values = coded.series()
    else:
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


def negative_minutes(values: pd.Series | pa.Array, decimal: str) -> np.ndarray:
    """Cells that are a negative number or ``-h:mm`` (a duration below zero: wrong, not in another unit)."""
    arr = values if isinstance(values, pa.Array) else as_arrow_text(values)
    number = r"^\s*-\s*(\d+(" + ("," if decimal == "," else "\\.") + r"\d+)?|\d+:[0-5]\d)\s*$"
    return pc.match_substring_regex(arr, number).fill_null(False).to_numpy(zero_copy_only=False)


def split_staff(cells: pd.Series, separator: str) -> tuple[pd.Series, pd.Series]:
    """The first and second staff id of each cell ("A|B"); cells without the separator are split by none."""
    first, second = split_staff_coded(Coded.factorized(cells.to_numpy(dtype=object)), separator)
    return pd.Series(first.objects(), index=cells.index, dtype=object), pd.Series(second.objects(), index=cells.index, dtype=object)

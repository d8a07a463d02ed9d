"""The compact stored state of the service-history events (docs/events.md, "Stored encoding").

An event stored under its compact topic (``ersattning.store.encoding.COMPACT_TOPICS``)
has this state, little-endian, driven by the class's schema (:func:`event_schema`):

- a 4-byte header: format (2; states of format 1 are still read), flags (bit 0: *wide*
  times; bit 1: *narrow* ints), the class version, and k, the number of stored fields
  (the first k of the schema without ``originator_topic``, which follows from the
  class). Fields are only ever appended to a class, so an older event has fewer fields
  and the library's ``upcast_vN_vN+1`` adds them;
- the fixed part, fields in schema order: a datetime as u4 seconds since 1970 UTC
  (wide: i8 microseconds), a date as i4 days since 1970, an int as i4 (narrow: i2; an
  event is narrow when all its ints fit; null: the type's minimum), an enum as u1 (its
  index in the enum's declaration order; 255: null), a UUID as 16 bytes;
- the variable part, fields in schema order: a str as a u1 prefix and its bytes — 0–251:
  that many bytes of UTF-8; 252: 16 bytes follow that are 32 lowercase hex digits (a
  pseudonym); 253: the same value as the str field just before it; 254: null; 255: a u4
  length follows — and a tuple of str as a u1 count and each string so (never 253).
  Format 1 had only inline lengths 0–253, null and the long form.

Rows of one topic and header have their fixed fields at the same offsets, so the
columnar decoder gathers them with numpy and walks the strings with one
vectorised step per string slot (:func:`decode_columns`). One event at a time
(the library's mapper) uses :func:`encode_state` / :func:`decode_state`; many at
once (bulk appends) :func:`encode_columns`. The legacy JSON states decode into
the same columns (:func:`decode_json_columns`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from ersattning.store.encoding import CLASS_VERSION, DATA_KEY, ORIGINATOR_TOPIC, StoredField, event_schema

FORMAT_1 = 1  # the first format: strings only inline, null or long; still read
FORMAT = 2  # written now
FORMATS = (FORMAT_1, FORMAT)
WIDE = 0x01  # flag: datetimes as i8 microseconds
NARROW = 0x02  # flag: ints as i2
HEADER = 4
NULL_I4 = -(2**31)
NULL_I2 = -(2**15)
NULL_ENUM = 255
STR_HEX = 252  # format 2: 16 bytes follow, read as 32 lowercase hex digits
STR_REPEAT = 253  # format 2: the value of the str field just before
STR_NULL = 254
STR_LONG = 255
_LOWER_HEX = re.compile("[0-9a-f]{32}")
U4_MAX = 2**32 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_MICRO = timedelta(microseconds=1)

#: Field kinds and the width of the fixed ones (datetimes: not wide, 8 when wide; ints: 2 when narrow).
_FIXED_WIDTH = {"datetime": 4, "date": 4, "int": 4, "enum": 1, "uuid": 16}


def _inline_max(fmt: int) -> int:
    """The first prefix byte of a string that is not its length."""
    return STR_NULL if fmt == FORMAT_1 else STR_HEX


def field_kind(f: StoredField) -> str:
    tp = f.python_type
    if tp is datetime:
        return "datetime"
    if tp is date:
        return "date"
    if tp is int:
        return "int"
    if tp is UUID:
        return "uuid"
    if tp is str:
        return "str"
    if tp is tuple:
        if f.item is not str:
            raise TypeError(f"field {f.name!r}: only tuples of str are stored compactly")
        return "tuple"
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return "enum"
    raise TypeError(f"field {f.name!r}: the compact encoding does not support {tp!r}")


@dataclass(frozen=True)
class Layout:
    """The stored fields of one event class, and where they go."""

    event_class: type
    fields: tuple[StoredField, ...]  # schema order, without originator_topic
    kinds: tuple[str, ...]
    class_version: int
    originator_topic: str | None
    repeat_of: tuple[int | None, ...]  # for a str field right after another str field: that field's index

    def fixed(self, k: int, flags: int) -> tuple[list[tuple[int, int, int]], int]:
        """(field index, offset, width) of the fixed fields among the first ``k``, and the fixed part's width."""
        out, at = [], HEADER
        for i in range(k):
            kind = self.kinds[i]
            if kind in _FIXED_WIDTH:
                w = _FIXED_WIDTH[kind]
                if kind == "datetime" and flags & WIDE:
                    w = 8
                elif kind == "int" and flags & NARROW:
                    w = 2
                out.append((i, at, w))
                at += w
        return out, at

    def variable(self, k: int) -> list[int]:
        return [i for i in range(k) if self.kinds[i] in ("str", "tuple")]


@cache
def layout(event_class: type) -> Layout:
    schema = event_schema(event_class)
    fields = tuple(f for f in schema.fields if f.name != ORIGINATOR_TOPIC)
    if len(fields) > 255 or schema.class_version > 255:
        raise TypeError(f"{event_class.__qualname__}: too many fields or versions for the compact header")
    kinds = tuple(field_kind(f) for f in fields)
    variable = [i for i, kind in enumerate(kinds) if kind in ("str", "tuple")]
    repeat_of: list[int | None] = [None] * len(fields)
    for before, i in zip(variable, variable[1:], strict=False):
        if kinds[before] == kinds[i] == "str":
            repeat_of[i] = before
    return Layout(event_class, fields, kinds, schema.class_version, schema.originator_topic, tuple(repeat_of))


@cache
def enum_codes(enum: type[StrEnum]) -> dict[str, int]:
    """An enum member's stored code: its index in declaration order (append new members at the end)."""
    return {m.value: i for i, m in enumerate(enum)}


@cache
def enum_members(enum: type[StrEnum]) -> tuple[StrEnum, ...]:
    """The members by stored code."""
    return tuple(enum)


# -- one event -------------------------------------------------------------------------


def _micros(name: str, v: datetime) -> int:
    if not isinstance(v, datetime) or v.tzinfo is None or v.utcoffset() is None:
        raise ValueError(f"field {name!r}: expected a timezone-aware datetime, got {v!r}")
    return (v - _EPOCH) // _MICRO


def _needs_wide(us: int) -> bool:
    return us % 1_000_000 != 0 or not 0 <= us // 1_000_000 <= U4_MAX


def _wide_rows(us: np.ndarray) -> np.ndarray:
    """Per value, :func:`_needs_wide`: microseconds stored as 8 bytes rather than 4 bytes of whole seconds."""
    return (us % 1_000_000 != 0) | (us < 0) | (us // 1_000_000 > U4_MAX)


def _i4(name: str, v: int | None) -> int:
    if v is None:
        return NULL_I4
    if not NULL_I4 < int(v) < 2**31:
        raise ValueError(f"field {name!r}: {v} does not fit the stored 32-bit integer")
    return int(v)


def _fits_i2(v: int) -> bool:
    return v == NULL_I4 or NULL_I2 < v < 2**15


def _str_bytes(v: str | None) -> bytes:
    """A string as format 2 stores it; 32 lowercase hex digits (a pseudonym) as their 16 bytes."""
    if v is None:
        return bytes((STR_NULL,))
    s = str(v)
    if len(s) == 32 and _LOWER_HEX.fullmatch(s):
        return bytes((STR_HEX,)) + bytes.fromhex(s)
    b = s.encode()
    return bytes((len(b),)) + b if len(b) < STR_HEX else bytes((STR_LONG,)) + struct.pack("<I", len(b)) + b


def _tuple_bytes(name: str, v: Sequence[str]) -> bytes:
    if len(v) > 255:
        raise ValueError(f"field {name!r}: more than 255 items cannot be stored")
    return bytes((len(v),)) + b"".join(_str_bytes(x) for x in v)


def _uuid_bytes(v: Any) -> bytes:
    if isinstance(v, UUID):
        return v.bytes
    return UUID(v.decode() if isinstance(v, bytes) else str(v)).bytes


def encode_state(event_class: type, state: Mapping[str, Any]) -> bytes:
    """The compact state of one event from its field values (the library's event ``__dict__``)."""
    lay = layout(event_class)
    micros = {f.name: _micros(f.name, state[f.name]) for f, k in zip(lay.fields, lay.kinds, strict=True) if k == "datetime"}
    ints = {f.name: _i4(f.name, state[f.name]) for f, k in zip(lay.fields, lay.kinds, strict=True) if k == "int"}
    wide = any(_needs_wide(us) for us in micros.values())
    narrow = bool(ints) and all(_fits_i2(v) for v in ints.values())  # the flag only where there are ints
    fixed = [bytes((FORMAT, (WIDE if wide else 0) | (NARROW if narrow else 0), lay.class_version, len(lay.fields)))]
    var: list[bytes] = []
    for f, kind, before in zip(lay.fields, lay.kinds, lay.repeat_of, strict=True):
        v = state[f.name]
        if kind == "datetime":
            us = micros[f.name]
            fixed.append(struct.pack("<q", us) if wide else struct.pack("<I", us // 1_000_000))
        elif kind == "date":
            fixed.append(struct.pack("<i", NULL_I4 if v is None else (v - _EPOCH_DAY).days))
        elif kind == "int":
            n = ints[f.name]
            fixed.append(struct.pack("<h", NULL_I2 if n == NULL_I4 else n) if narrow else struct.pack("<i", n))
        elif kind == "enum":
            fixed.append(bytes((NULL_ENUM if v is None else enum_codes(f.python_type)[f.python_type(v).value],)))
        elif kind == "uuid":
            fixed.append(_uuid_bytes(v))
        elif kind == "str":
            same = before is not None and v is not None and v == state[lay.fields[before].name]
            var.append(bytes((STR_REPEAT,)) if same else _str_bytes(v))
        else:
            var.append(_tuple_bytes(f.name, v))
    return b"".join(fixed) + b"".join(var)


def _read_str(data: bytes, at: int, fmt: int) -> tuple[str | None, int]:
    n = data[at]
    if n == STR_NULL:
        return None, at + 1
    if n == STR_LONG:
        (n,) = struct.unpack_from("<I", data, at + 1)
        at += 4
    elif n >= _inline_max(fmt):
        if n == STR_HEX:
            return data[at + 1 : at + 17].hex(), at + 17
        raise ValueError("a repeated string where there is none before it")
    return data[at + 1 : at + 1 + n].decode(), at + 1 + n


def _check_header(event_class: type, fmt: int) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"{event_class.__qualname__}: not a compact state (format {fmt}; this version reads formats {', '.join(map(str, FORMATS))})")


def decode_state(event_class: type, data: bytes) -> dict[str, Any]:
    """The field values of one compact state, with ``originator_topic`` (Created events) and
    ``class_version`` (the version it was written at: the library's mapper upcasts from it)."""
    lay = layout(event_class)
    if len(data) < HEADER:
        raise ValueError(f"{event_class.__qualname__}: a compact state shorter than its header")
    fmt, flags, version, k = data[0], data[1], data[2], data[3]
    _check_header(event_class, fmt)
    wide, narrow = bool(flags & WIDE), bool(flags & NARROW)
    state: dict[str, Any] = {}
    fixed, at = lay.fixed(k, flags)
    for i, o, w in fixed:
        f, kind = lay.fields[i], lay.kinds[i]
        if kind == "datetime":
            state[f.name] = _EPOCH + (_MICRO * struct.unpack_from("<q", data, o)[0] if wide else timedelta(seconds=struct.unpack_from("<I", data, o)[0]))
        elif kind == "int" and narrow:
            (n,) = struct.unpack_from("<h", data, o)
            state[f.name] = None if n == NULL_I2 else n
        elif kind in ("date", "int"):
            (n,) = struct.unpack_from("<i", data, o)
            state[f.name] = None if n == NULL_I4 else (_EPOCH_DAY + timedelta(days=n) if kind == "date" else n)
        elif kind == "enum":
            state[f.name] = None if data[o] == NULL_ENUM else enum_members(f.python_type)[data[o]]
        else:
            state[f.name] = UUID(bytes=bytes(data[o : o + w]))
    for i in lay.variable(k):
        f, before = lay.fields[i], lay.repeat_of[i]
        if lay.kinds[i] == "str":
            if fmt != FORMAT_1 and data[at] == STR_REPEAT and before is not None:
                state[f.name], at = state[lay.fields[before].name], at + 1
            else:
                state[f.name], at = _read_str(data, at, fmt)
        else:
            items = []
            count, at = data[at], at + 1
            for _ in range(count):
                s, at = _read_str(data, at, fmt)
                items.append(s)
            state[f.name] = tuple(items)
    if lay.originator_topic is not None:
        state[ORIGINATOR_TOPIC] = lay.originator_topic
    state[CLASS_VERSION] = version
    return state


# -- many events at once -----------------------------------------------------------------

_FRAGMENT_CACHE_MAX = 200_000


def _factorize(values: Any) -> tuple[np.ndarray, list[Any]]:
    if isinstance(values, pd.Categorical):
        return np.asarray(values.codes, dtype=np.int64), list(values.categories)
    seq = values if isinstance(values, (np.ndarray, pd.Series, pd.Index)) else pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(seq, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), list(uniques)


def _fragments(values: Any, encode: Any, cache: dict[Any, bytes] | None) -> tuple[np.ndarray, list[bytes], list[Any]]:
    """Each distinct value's encoding once (remembered in ``cache`` across batches); codes < 0 for missing;
    and the distinct values."""
    codes, uniques = _factorize(values)
    if cache is None:
        return codes, [encode(u) for u in uniques], uniques
    if len(cache) > _FRAGMENT_CACHE_MAX:
        cache.clear()
    frags = []
    for u in uniques:
        f = cache.get(u)
        if f is None:
            f = cache[u] = encode(u)
        frags.append(f)
    return codes, frags, uniques


def _same_values(codes: np.ndarray, uniques: list[Any], before: tuple[np.ndarray, list[Any]]) -> np.ndarray:
    """Rows whose value (not missing) equals the one in ``before`` (codes and distinct values of another column)."""
    before_codes, before_uniques = before
    if not uniques or not before_uniques:
        return np.zeros(len(codes), dtype=bool)
    where = pd.Index(before_uniques, dtype=object).get_indexer(pd.Index(uniques, dtype=object))  # each distinct value in before, or -1
    return (codes >= 0) & (where[np.maximum(codes, 0)] == before_codes) & (before_codes >= 0)


def _with_null(name: str, optional: bool, codes: np.ndarray, frags: list[bytes], null: bytes) -> tuple[np.ndarray, list[bytes]]:
    if (codes < 0).any():
        if not optional:
            raise ValueError(f"field {name!r} is required but missing in some rows")
        frags = [*frags, null]
        codes = np.where(codes < 0, len(frags) - 1, codes)
    return codes, frags


def _int_column(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """An int field's values as int64 (0 where missing) and where they are missing."""
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    missing = s.isna().to_numpy()
    return (s.fillna(0) if missing.any() else s).to_numpy().astype(np.int64), missing


def _column_micros(name: str, values: Any) -> np.ndarray:
    us = np.asarray(values).astype("datetime64[us]")
    if np.isnat(us).any():
        raise ValueError(f"field {name!r}: a required datetime is missing (NaT)")
    return us.astype(np.int64)


def _uuid_block(name: str, values: Any) -> np.ndarray:
    """(n, 16) raw bytes of ids given as 32-hex strings (str or bytes) or UUIDs."""
    arr = np.asarray(values) if not isinstance(values, pd.Categorical) else None
    if arr is not None and arr.dtype.kind in "SU" and arr.dtype.itemsize in (32, 128):
        raw = _raw_from_hex(arr.astype("S32").tobytes().decode("ascii"), len(arr))
        if raw is not None:
            return raw
    codes, uniques = _factorize(values)
    if (codes < 0).any():
        raise ValueError(f"field {name!r} is required but missing in some rows")
    return _uuid_table(uniques)[codes]


def _uuid_table(uniques: list[Any]) -> np.ndarray:
    """(len, 16) raw bytes of distinct ids: 32-hex text in one C call (an import's recipient ids, ~1 µs each
    through ``UUID``), anything else one at a time (which names a bad one)."""
    if all(isinstance(u, str) and len(u) == 32 for u in uniques):
        raw = _raw_from_hex("".join(uniques), len(uniques))
        if raw is not None:
            return raw
    return np.frombuffer(b"".join(_uuid_bytes(u) for u in uniques), dtype=np.uint8).reshape(-1, 16)


def _raw_from_hex(text: str, n: int) -> np.ndarray | None:
    """(n, 16) raw bytes of ``n`` ids written back to back as 32 hex digits each; None unless it is exactly
    that (``bytes.fromhex`` also skips spaces, which would shift every later id)."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, 16) if len(raw) == 16 * n else None


class ColumnEncoder:
    """Encodes columns of one event class into compact states, remembering encoded values across batches."""

    def __init__(self, event_class: type) -> None:
        self.layout = layout(event_class)
        self._caches: dict[str, dict[Any, bytes]] = {}

    def encode(self, n: int, columns: Mapping[str, Any]) -> tuple[bytes, np.ndarray]:
        """The states of ``n`` events as one buffer and ``n + 1`` int64 offsets.

        ``columns`` holds one array per stored field: datetimes as UTC ``datetime64``,
        dates as ``datetime64[D]`` (NaT for None), ints, enums as members or values,
        UUIDs as 32-hex text or UUIDs, strings, tuples of strings.
        """
        lay = self.layout
        k = len(lay.fields)
        micros: dict[int, np.ndarray] = {}
        ints: dict[int, np.ndarray] = {}  # int64 values, NULL_I4 for missing
        blocks: dict[int, np.ndarray] = {}  # fixed fields other than datetimes and ints: (n, w) uint8
        var: list[tuple[np.ndarray, np.ndarray]] = []  # per variable field: codes, fragments (object array)
        strings: dict[int, tuple[np.ndarray, list[Any]]] = {}  # per str field: codes and distinct values
        for i, (f, kind) in enumerate(zip(lay.fields, lay.kinds, strict=True)):
            values = columns[f.name]
            if len(values) != n:
                raise ValueError(f"{lay.event_class.__qualname__}: column {f.name!r} has {len(values)} rows, expected {n}")
            if kind == "datetime":
                micros[i] = _column_micros(f.name, values)
            elif kind == "date":
                days = np.asarray(values).astype("datetime64[D]")
                missing = np.isnat(days)
                if missing.any() and not f.optional:
                    raise ValueError(f"field {f.name!r} is required but missing in some rows")
                d = np.where(missing, NULL_I4, days.astype(np.int64))
                if ((d <= NULL_I4) & ~missing).any() or (d >= 2**31).any():
                    raise ValueError(f"field {f.name!r}: a date out of the stored range")
                blocks[i] = d.astype("<i4").view(np.uint8).reshape(n, 4)
            elif kind == "int":
                v, missing = _int_column(values)
                if missing.any() and not f.optional:
                    raise ValueError(f"field {f.name!r} is required but missing in some rows")
                if ((v <= NULL_I4) | (v >= 2**31)).any():
                    raise ValueError(f"field {f.name!r}: a value does not fit the stored 32-bit integer")
                ints[i] = np.where(missing, NULL_I4, v) if missing.any() else v
            elif kind == "enum":
                codes, frags, _ = _fragments(values, lambda u, e=f.python_type: bytes((enum_codes(e)[e(u).value],)), self._caches.setdefault(f.name, {}))
                codes, frags = _with_null(f.name, f.optional, codes, frags, bytes((NULL_ENUM,)))
                blocks[i] = np.frombuffer(b"".join(frags), dtype=np.uint8)[codes].reshape(n, 1)
            elif kind == "uuid":
                blocks[i] = _uuid_block(f.name, values)
            else:
                encode = _str_bytes if kind == "str" else (lambda u, name=f.name: _tuple_bytes(name, u))
                codes, frags, uniques = _fragments(values, encode, self._caches.setdefault(f.name, {}))
                before = lay.repeat_of[i]
                same = _same_values(codes, uniques, strings[before]) if before is not None else None
                if kind == "str":
                    strings[i] = (codes, uniques)
                codes, frags = _with_null(f.name, f.optional, codes, frags, bytes((STR_NULL,)))
                if same is not None and same.any():
                    frags = [*frags, bytes((STR_REPEAT,))]
                    codes = np.where(same, len(frags) - 1, codes)
                pieces_of = np.empty(len(frags), dtype=object)
                pieces_of[:] = frags
                var.append((codes, pieces_of))
        flags = np.zeros(n, dtype=np.uint8)
        for us in micros.values():
            flags |= _wide_rows(us).astype(np.uint8) * WIDE
        if ints:
            narrow = np.ones(n, dtype=bool)
            for v in ints.values():
                narrow &= (v == NULL_I4) | ((v > NULL_I2) & (v < 2**15))
            flags |= narrow.astype(np.uint8) * NARROW
        # per row: its fixed part (rows of one header together), then its strings, joined in C
        pieces = np.empty((n, 1 + len(var)), dtype=object)
        fixed_len = np.empty(n, dtype=np.int64)
        for flag in np.unique(flags).tolist():
            rows = np.flatnonzero(flags == flag)
            spots, width = lay.fixed(k, flag)
            block = np.empty((len(rows), width), dtype=np.uint8)
            block[:, :HEADER] = (FORMAT, flag, lay.class_version, k)
            for i, o, w in spots:
                if i in micros:
                    us = micros[i][rows]
                    block[:, o : o + w] = (us if flag & WIDE else us // 1_000_000).astype("<i8" if flag & WIDE else "<u4").view(np.uint8).reshape(-1, w)
                elif i in ints:
                    v = ints[i][rows]
                    if flag & NARROW:
                        v = np.where(v == NULL_I4, NULL_I2, v)
                    block[:, o : o + w] = v.astype("<i2" if flag & NARROW else "<i4").view(np.uint8).reshape(-1, w)
                else:
                    block[:, o : o + w] = blocks[i][rows]
            pieces[rows, 0] = block.view(f"V{width}").ravel().tolist()
            fixed_len[rows] = width
        lengths = fixed_len
        for j, (codes, pieces_of) in enumerate(var):
            pieces[:, 1 + j] = pieces_of[codes]
            lengths = lengths + np.fromiter(map(len, pieces_of), dtype=np.int64, count=len(pieces_of))[codes]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return b"".join(pieces.ravel().tolist()), offsets


_COLUMN_ENCODERS: dict[type, ColumnEncoder] = {}


def encode_columns(event_class: type, n: int, columns: Mapping[str, Any]) -> tuple[bytes, np.ndarray]:
    """The compact states of ``n`` events of ``event_class`` (see :meth:`ColumnEncoder.encode`)."""
    enc = _COLUMN_ENCODERS.get(event_class)
    if enc is None:
        enc = _COLUMN_ENCODERS[event_class] = ColumnEncoder(event_class)
    return enc.encode(n, columns)


# -- columnar decoding ---------------------------------------------------------------------

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def arrow_type(f: StoredField, wide: bool = False) -> pa.DataType:
    """The column type of a field in the decoded table (both formats)."""
    kind = field_kind(f)
    return {
        "datetime": pa.timestamp("us" if wide else "s"),
        "date": pa.date32(),
        "int": pa.int64(),
        "enum": pa.string(),
        "uuid": pa.string(),
        "str": pa.string(),
        "tuple": pa.list_(pa.string()),
    }[kind]


def table_schema(event_class: type, wide: bool = False) -> pa.Schema:
    """The columns :func:`decode_columns` and :func:`decode_json_columns` give for ``event_class``."""
    fields = layout(event_class).fields
    return pa.schema([*((f.name, arrow_type(f, wide)) for f in fields), (CLASS_VERSION, pa.int64())])


def _buffer(states: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    lens = np.fromiter(map(len, states), dtype=np.int64, count=len(states))
    starts = np.zeros(len(states), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    return np.frombuffer(b"".join(states), dtype=np.uint8), starts


def _gather(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The bytes of many slices of ``buf``, one after another."""
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=np.uint8)
    ends = np.cumsum(lens)
    return buf[np.repeat(starts - (ends - lens), lens) + np.arange(total)]


@dataclass
class _Strings:
    """One string slot of many rows: where each string's stored bytes start, how many (16 for a packed hex
    one), whether it is there, which are packed hex (None: none), and where the next slot starts."""

    start: np.ndarray
    lens: np.ndarray
    valid: np.ndarray
    hex: np.ndarray | None
    after: np.ndarray

    def where(self, rows: np.ndarray, other: _Strings) -> _Strings:
        """``other`` in ``rows``, this elsewhere (the position after stays this one's)."""

        def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.where(rows, b, a)

        packed = None if self.hex is None and other.hex is None else pick(_flags(self.hex, len(rows)), _flags(other.hex, len(rows)))
        return _Strings(pick(self.start, other.start), pick(self.lens, other.lens), pick(self.valid, other.valid), packed, self.after)


def _flags(mask: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool) if mask is None else mask


def _strings(buf: np.ndarray, at: np.ndarray, fmt: int) -> tuple[_Strings, np.ndarray | None]:
    """The strings starting at ``at``, and the rows that repeat the string before (format 2; None: none)."""
    first = buf[at].astype(np.int64)
    inline = _inline_max(fmt)
    lens = np.where(first < inline, first, 0)
    start = at + 1
    long = np.flatnonzero(first == STR_LONG)
    if len(long):
        four = buf[at[long, None] + np.arange(1, 5)]
        lens[long] = np.ascontiguousarray(four).view("<u4").ravel()
        start = start.copy()
        start[long] += 4
    packed = repeat = None
    if fmt != FORMAT_1 and (first >= STR_HEX).any():  # a marker, or null or long: look closer
        packed, repeat = first == STR_HEX, first == STR_REPEAT
        lens[packed] = 16
        packed = packed if packed.any() else None
        repeat = repeat if repeat.any() else None
    return _Strings(start, lens, first != STR_NULL, packed, start + lens), repeat


def _hex_text(raw: np.ndarray) -> np.ndarray:
    """(m, 32) lowercase hex digits of (m, 16) bytes."""
    text = np.empty((len(raw), 32), dtype=np.uint8)
    text[:, 0::2] = _HEX[raw >> 4]
    text[:, 1::2] = _HEX[raw & 15]
    return text


def _string_array(buf: np.ndarray, s: _Strings) -> pa.Array:
    lens = s.lens if s.hex is None else np.where(s.hex, 32, s.lens)
    offsets: np.ndarray = np.zeros(len(lens) + 1, dtype=np.int32 if lens.sum() < 2**31 else np.int64)
    np.cumsum(lens, out=offsets[1:])
    if s.hex is None:
        data = _gather(buf, s.start, lens)
    else:
        packed = np.flatnonzero(s.hex)
        data = np.empty(int(offsets[-1]), dtype=np.uint8)
        plain = ~s.hex
        plain_lens = lens[plain]
        ends = np.cumsum(plain_lens)
        within = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - plain_lens, plain_lens)
        data[np.repeat(offsets[:-1][plain], plain_lens) + within] = buf[np.repeat(s.start[plain], plain_lens) + within]
        data[offsets[packed].astype(np.int64)[:, None] + np.arange(32)] = _hex_text(buf[s.start[packed][:, None] + np.arange(16)])
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    nulls = int((~s.valid).sum())
    bitmap = pa.py_buffer(np.packbits(s.valid, bitorder="little")) if nulls else None
    arr = pa.Array.from_buffers(typ, len(lens), [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls)
    return arr if typ == pa.string() else arr.cast(pa.string())


def _hex_array(raw: np.ndarray) -> pa.Array:
    m = len(raw)
    offsets = np.arange(0, 32 * m + 1, 32, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), m, [None, pa.py_buffer(offsets), pa.py_buffer(_hex_text(raw))])


def _group_table(lay: Layout, buf: np.ndarray, starts: np.ndarray, k: int, fmt: int, flags: int, version: int) -> dict[str, pa.Array]:
    m = len(starts)
    spots, width = lay.fixed(k, flags)
    fixed = buf[starts[:, None] + np.arange(width)]
    cols: dict[str, pa.Array] = {}
    for i, o, w in spots:
        f, kind = lay.fields[i], lay.kinds[i]
        raw = np.ascontiguousarray(fixed[:, o : o + w])
        if kind == "datetime":
            wide = bool(flags & WIDE)
            cols[f.name] = pa.array(raw.view("<i8" if wide else "<u4").ravel().astype(np.int64), pa.timestamp("us" if wide else "s"))
        elif kind in ("date", "int"):
            narrow = kind == "int" and bool(flags & NARROW)
            v = raw.view("<i2").ravel().astype(np.int32) if narrow else raw.view("<i4").ravel()
            null = v == (NULL_I2 if narrow else NULL_I4)
            cols[f.name] = pa.array(v, pa.int32(), mask=null if null.any() else None).cast(pa.date32() if kind == "date" else pa.int64())
        elif kind == "enum":
            codes = raw.ravel()
            null = codes == NULL_ENUM
            values = pa.array([m_.value for m_ in enum_members(f.python_type)], pa.string())
            cols[f.name] = values.take(pa.array(codes, pa.uint8(), mask=null if null.any() else None))
        else:
            cols[f.name] = _hex_array(raw)
    at = starts + width
    previous: _Strings | None = None  # the str slot just before, for repeats
    for i in lay.variable(k):
        f = lay.fields[i]
        if lay.kinds[i] == "str":
            s, repeat = _strings(buf, at, fmt)
            if repeat is not None:
                if previous is None or lay.repeat_of[i] is None:
                    raise ValueError(f"{lay.event_class.__qualname__}: field {f.name!r} repeats a string where there is none before it")
                s = s.where(repeat, previous)
            cols[f.name] = _string_array(buf, s)
            at, previous = s.after, s
            continue
        previous = None
        count = buf[at].astype(np.int64)
        at = at + 1
        list_offsets = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(count, out=list_offsets[1:])
        total = int(list_offsets[-1])
        items = _Strings(np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64), np.empty(total, dtype=bool), None, at)
        for j in range(int(count.max()) if m else 0):
            rows = np.flatnonzero(count > j)
            s, repeat = _strings(buf, at[rows], fmt)
            if repeat is not None:
                raise ValueError(f"{lay.event_class.__qualname__}: an item of field {f.name!r} repeats a string")
            pos = list_offsets[rows] + j
            items.start[pos], items.lens[pos], items.valid[pos] = s.start, s.lens, s.valid
            if s.hex is not None:
                if items.hex is None:
                    items.hex = np.zeros(total, dtype=bool)
                items.hex[pos] = s.hex
            at[rows] = s.after
        cols[f.name] = pa.ListArray.from_arrays(pa.array(list_offsets.astype(np.int32)), _string_array(buf, items))
    cols[CLASS_VERSION] = pa.array(np.full(m, version, dtype=np.int64))
    return cols


def decode_columns(event_class: type, states: Sequence[bytes]) -> pa.Table:
    """Compact states of one class as a table: one column per stored field (datetimes as naive UTC
    timestamps, seconds, or microseconds when a wide row is among them; UUIDs as 32-hex text; enums as
    their values; tuples as lists; dates as date32; ints as int64) and ``class_version``.
    Fields an older event lacks are null. States of both formats may be mixed: rows are decoded in groups
    of one header (format, flags, version, k), whose fixed fields share offsets."""
    lay = layout(event_class)
    n = len(states)
    buf, starts = _buffer(states)
    head = buf[starts[:, None] + np.arange(HEADER)].astype(np.int64) if n else np.empty((0, HEADER), dtype=np.int64)
    bad = ~np.isin(head[:, 0], FORMATS)
    if bad.any():
        _check_header(event_class, int(head[np.argmax(bad), 0]))
    key = ((head[:, 0] * 256 + head[:, 1]) * 256 + head[:, 2]) * 256 + head[:, 3]
    groups = np.unique(key)
    schema = table_schema(event_class, wide=bool((head[:, 1] & WIDE).any()))
    tables, order = [], []
    for g in groups.tolist() or [None]:
        rows = np.arange(n) if g is None else np.flatnonzero(key == g)
        fmt, flags, version, k = (FORMAT, 0, lay.class_version, len(lay.fields)) if g is None else (g >> 24, (g >> 16) & 255, (g >> 8) & 255, g & 255)
        cols = _group_table(lay, buf, starts[rows], min(k, len(lay.fields)), fmt, flags, version)
        arrays = [cols[name].cast(typ) if name in cols else pa.nulls(len(rows), typ) for name, typ in zip(schema.names, schema.types, strict=True)]
        tables.append(pa.Table.from_arrays(arrays, schema=schema))
        order.append(rows)
    if len(tables) == 1:
        return tables[0]
    table = pa.concat_tables(tables)
    return table.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))


def encoder_columns(event_class: type, table: pa.Table) -> dict[str, Any]:
    """A decoded table (:func:`decode_columns`, :func:`decode_json_columns`) as the columns
    :func:`encode_columns` takes: decoding then encoding gives the states back."""
    lay = layout(event_class)
    cols: dict[str, Any] = {}
    for f, kind in zip(lay.fields, lay.kinds, strict=True):
        col = table.column(f.name)
        if kind == "datetime":
            cols[f.name] = col.to_numpy().astype("datetime64[us]")
        elif kind == "date":
            cols[f.name] = pc.cast(col, pa.timestamp("s")).to_numpy().astype("datetime64[D]")
        elif kind == "int":
            cols[f.name] = pd.Series(col.to_numpy(zero_copy_only=False)) if col.null_count else col.to_numpy()
        elif kind == "tuple":
            cols[f.name] = pd.Series([tuple(x) for x in col.to_pylist()], dtype=object)
        else:
            cols[f.name] = col.to_numpy(zero_copy_only=False)
    return cols


def columns_table(event_class: type, n: int, columns: Mapping[str, Any], rows: np.ndarray | None = None, *, dictionary: bool = False) -> pa.Table:
    """The columns :meth:`ColumnEncoder.encode` takes, as the table :func:`decode_columns` gives for the
    states it encodes them into, without encoding and decoding them: an import folds what it writes
    from its own columns (tested equal for every visit event class). The values are the ones the encoder
    accepted: nothing is checked again. ``rows``: the rows to take, in that order (default all).

    ``dictionary``: ids, enums, strings and lists of strings as dictionary arrays (int32 codes into the
    column's distinct values, which may include some no taken row uses), the same values once cast to
    plain strings (tested). No string is made per row: the import's feed folds and writes them as codes."""
    lay = layout(event_class)
    pick = (lambda a: a) if rows is None else (lambda a: a[rows])
    micros = {f.name: pick(_column_micros(f.name, columns[f.name])) for f, kind in zip(lay.fields, lay.kinds, strict=True) if kind == "datetime"}
    wide = any(bool(_wide_rows(us).any()) for us in micros.values())
    schema = table_schema(event_class, wide)
    arrays: list[pa.Array] = []
    for f, kind in zip(lay.fields, lay.kinds, strict=True):
        values = columns[f.name]
        if kind == "datetime":
            us = micros[f.name]
            arrays.append(pa.array(us if wide else us // 1_000_000, pa.timestamp("us" if wide else "s")))
        elif kind == "date":
            days = pick(np.asarray(values).astype("datetime64[D]"))
            missing = np.isnat(days)
            arrays.append(pa.array(days.astype(np.int64).astype(np.int32), pa.int32(), mask=missing if missing.any() else None).cast(pa.date32()))
        elif kind == "int":
            v, missing = (pick(a) for a in _int_column(values))
            arrays.append(pa.array(v, pa.int64(), mask=missing if missing.any() else None))
        elif kind == "uuid":
            if dictionary:
                codes, distinct_raw = _uuid_codes(_uuid_block(f.name, values))
                arrays.append(coded_array(pick(codes), _hex_array(distinct_raw)))
            else:
                arrays.append(_hex_array(pick(_uuid_block(f.name, values))))
        else:
            codes, uniques = _factorize(values)
            codes = pick(codes)
            if kind == "enum":
                distinct = pa.array([f.python_type(u).value for u in uniques], pa.string())
            elif kind == "str":
                distinct = pa.array([None if u is None else str(u) for u in uniques], pa.string())
            else:
                distinct = pa.array([[None if x is None else str(x) for x in u] for u in uniques], pa.list_(pa.string()))
            if not dictionary:
                arrays.append(distinct.take(pa.array(codes, pa.int64(), mask=codes < 0)))
            elif kind == "tuple":
                arrays.append(_coded_lists(codes, distinct))
            else:
                arrays.append(coded_array(codes, distinct))
    arrays.append(pa.array(np.full(n if rows is None else len(rows), lay.class_version, dtype=np.int64)))
    if dictionary:
        return pa.Table.from_arrays(arrays, names=schema.names)
    return pa.Table.from_arrays(arrays, schema=schema)


def plain_table(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-coded columns (``columns_table(..., dictionary=True)``) as plain values."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        elif pa.types.is_list(t) and pa.types.is_dictionary(t.value_type):
            t = pa.list_(t.value_type.value_type)
        fields.append(f.with_type(t))
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


def _uuid_codes(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of (n, 16) id bytes and the distinct ids' bytes: hashed on their first 8 bytes (one uint64 hash
    table), checked against the other 8 (two distinct ids sharing the first 8 bytes take the slow way)."""
    halves = np.ascontiguousarray(raw).view(np.uint64).reshape(-1, 2)
    codes, _ = pd.factorize(halves[:, 0])
    distinct = np.empty((int(codes.max()) + 1 if len(codes) else 0, 16), dtype=np.uint8)
    distinct[codes] = raw
    if not (distinct.view(np.uint64)[codes, 1] == halves[:, 1]).all():
        uniq, inverse = np.unique(np.ascontiguousarray(raw).view("V16").ravel(), return_inverse=True)
        return inverse.astype(np.int64), np.frombuffer(uniq.tobytes(), dtype=np.uint8).reshape(-1, 16)
    return codes.astype(np.int64, copy=False), distinct


def coded_array(codes: np.ndarray, distinct: pa.Array) -> pa.DictionaryArray:
    """Rows as codes into ``distinct`` (code < 0 or a null distinct value: null), as a dictionary array."""
    if distinct.null_count:
        valid = ~np.asarray(distinct.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        renumber = np.where(valid, np.cumsum(valid) - 1, -1)
        codes = np.where(codes >= 0, renumber[np.maximum(codes, 0)], -1)
        distinct = distinct.filter(pa.array(valid))
    missing = codes < 0
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), pa.int32(), mask=missing if missing.any() else None), distinct)


def _coded_lists(codes: np.ndarray, distinct: pa.ListArray) -> pa.ListArray:
    """Rows as codes into distinct lists of strings: lists of dictionary-coded strings (code < 0: null)."""
    flat = distinct.flatten()
    encoded = flat.dictionary_encode() if len(flat) else pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))
    values = encoded.dictionary
    element_codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = distinct.offsets.to_numpy().astype(np.int64)
    valid = codes >= 0
    row = np.where(valid, codes, 0)
    lens = np.where(valid, np.diff(starts)[row] if len(starts) > 1 else 0, 0)
    offsets = np.zeros(len(codes) + 1, dtype=np.int32)
    np.cumsum(lens, out=offsets[1:])
    taken = np.repeat(starts[row] - offsets[:-1], lens) + np.arange(int(offsets[-1]))
    items = coded_array(element_codes[taken], values)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items, mask=pa.array(~valid) if not valid.all() else None)


# -- the legacy JSON, into the same columns ---------------------------------------------------


def utc_seconds(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """ISO-8601 strings with offsets → naive UTC timestamps in seconds (null stays null).

    The common form written by the legacy encoder, ``YYYY-MM-DDTHH:MM:SS+00:00``, is
    cast by Arrow directly; anything else (other offsets, fractions) goes through pandas.
    """
    lengths = pc.utf8_length(values)
    plain = pc.and_(pc.equal(lengths, 25), pc.ends_with(values, "+00:00"))
    if pc.all(pc.or_(plain, pc.is_null(values))).as_py() in (True, None):
        naive = pc.utf8_slice_codeunits(values, 0, 19)
        out = naive.cast(pa.timestamp("s"))
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
    s = pd.to_datetime(pd.Series(values.to_numpy(zero_copy_only=False), dtype=object), utc=True, format="ISO8601")
    return pa.array(s.dt.tz_localize(None).to_numpy(dtype="datetime64[s]"), pa.timestamp("s"))


def decode_json_columns(event_class: type, states: Sequence[bytes]) -> pa.Table:
    """Legacy JSON states of one class as the table :func:`decode_columns` gives (datetimes in seconds)."""
    lay = layout(event_class)
    schema = event_schema(event_class).arrow_schema()
    if CLASS_VERSION not in schema.names:
        schema = schema.append(pa.field(CLASS_VERSION, pa.int64()))
    parsed = pajson.read_json(
        pa.BufferReader(b"\n".join(states)),
        # blocks of a few MB let Arrow parse on both cores
        read_options=pajson.ReadOptions(block_size=4 << 20, use_threads=True),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    arrays, names = [], []
    for f, kind in zip(lay.fields, lay.kinds, strict=True):
        col = parsed.column(f.name)
        if pa.types.is_struct(col.type):
            col = pa.chunked_array([c.field(DATA_KEY) for c in col.chunks], type=col.type.field(DATA_KEY).type)
        if kind == "datetime":
            arr: Any = utc_seconds(col)
        elif kind == "date":
            arr = col.cast(pa.date32())
        else:
            arr = col.cast(arrow_type(f))
        arrays.append(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
        names.append(f.name)
    arrays.append(parsed.column(CLASS_VERSION).fill_null(1).combine_chunks())
    names.append(CLASS_VERSION)
    return pa.Table.from_arrays(arrays, names=names)


__all__ = ["ColumnEncoder", "coded_array", "columns_table", "plain_table", "decode_columns", "decode_json_columns", "decode_state", "encode_columns", "encode_state", "encoder_columns", "enum_codes", "layout", "table_schema"]

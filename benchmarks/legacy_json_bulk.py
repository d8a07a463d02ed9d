"""The legacy bulk encoder (the library's JSON under long topics), kept only as the benchmarks' baseline.

This is the encoder of ``ersattning/store/bulk.py`` as it was before the compact encoding
(docs/events.md, "Stored encoding"): stores written by it are what "legacy"
means, and ``bench_encoding.py`` measures it beside the compact encoder in the
same run. Nothing in the package uses it.

The library turns each event object into JSON one at a time (~25–45k events/s
here). For large synthetic regions and imports we build the stored state of a
whole column batch in a ``uint8`` matrix instead: constant JSON pieces are
broadcast, datetimes and integers are written as ASCII digits with numpy
arithmetic, and low-cardinality values (codes, enums, ids) are encoded once per
distinct value and gathered. Variable-width values are padded with spaces,
which JSON ignores, so every row has the same width.

The result decodes with the library's own transcoder into exactly the event the
aggregate's command method would have produced (tested in test_bulk.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd

from ersattning.store.bulk import Arena
from ersattning.store.encoding import CLASS_VERSION, ORIGINATOR_TOPIC, StoredField, event_schema, type_tag, wrapped_prefix

_HEX32 = re.compile(r"[0-9a-f]{32}")
_SPACE = ord(" ")
_ZERO = ord("0")


def _value_encoder(field: StoredField) -> Callable[[Any], str]:
    """Python value -> its JSON text in the stored encoding, for fields encoded once per distinct value."""
    tp, tag = field.python_type, field.tag
    if tp is str:
        return lambda v: json.dumps(str(v), ensure_ascii=False)
    if tp is UUID:
        # ids already in the library's form (32 lower-case hex digits) need no parsing
        prefix = wrapped_prefix(tag or "")
        return lambda v: prefix + '"%s"}' % (v if isinstance(v, str) and _HEX32.fullmatch(v) else UUID(str(v)).hex)
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        enum: type[StrEnum] = tp
        prefix = wrapped_prefix(tag or "")
        return lambda v: prefix + json.dumps(enum(v).value) + "}"
    if field.item is not None:
        inner = _value_encoder(StoredField(field.name, field.item, False))
        prefix = wrapped_prefix(tag or "")
        return lambda v: prefix + "[" + ",".join(inner(x) for x in v) + "]}"
    raise TypeError(f"bulk encoding does not support field type {tp!r}")


def _digits(block: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    """Write non-negative ints zero-padded to ``width`` ASCII digits at ``col``."""
    v = values.astype(np.int64, copy=False)
    for j in range(width - 1, -1, -1):
        block[:, col + j] = _ZERO + (v % 10)
        v = v // 10


def _ymd(block: np.ndarray, col: int, days: np.ndarray) -> None:
    """YYYY-MM-DD of ``datetime64[D]`` values at ``col`` (10 characters); each distinct day is written once."""
    if len(days) > 1024:
        distinct, inverse = np.unique(days, return_inverse=True)
        if len(distinct) < len(days) // 4:
            table = np.empty((len(distinct), 10), dtype=np.uint8)
            _ymd(table, 0, distinct)
            block[:, col : col + 10] = table[inverse]
            return
    months = days.astype("datetime64[M]")
    _digits(block, col, months.astype(np.int64) // 12 + 1970, 4)
    block[:, col + 4] = ord("-")
    _digits(block, col + 5, months.astype(np.int64) % 12 + 1, 2)
    block[:, col + 7] = ord("-")
    _digits(block, col + 8, (days - months.astype("datetime64[D]")).astype(np.int64) + 1, 2)


def _constant(n: int, text: bytes) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (n, len(text)))


_DATETIME_PREFIX = (wrapped_prefix(type_tag(datetime) or "") + '"').encode()
_DATE_PREFIX = (wrapped_prefix(type_tag(date) or "") + '"').encode()


def _datetime_block(values: Any) -> list[np.ndarray]:
    """``{"_type_":"datetime_iso","_data_":"YYYY-MM-DDTHH:MM:SS+00:00"}`` per row (UTC), as pieces:
    the constant prefix and suffix (broadcast views) around the 19 characters of the time."""
    ts = np.asarray(values).astype("datetime64[s]")
    if np.isnat(ts).any():
        raise ValueError("bulk encoding: a required datetime is missing (NaT)")
    prefix, suffix = _DATETIME_PREFIX, b'+00:00"}'
    n = len(ts)
    block = np.empty((n, 19), dtype=np.uint8)
    c = 0
    days = ts.astype("datetime64[D]")
    sec = (ts - days.astype("datetime64[s]")).astype(np.int64)
    _ymd(block, c, days)
    block[:, c + 10] = ord("T")
    _digits(block, c + 11, sec // 3600, 2)
    block[:, c + 13] = ord(":")
    _digits(block, c + 14, (sec // 60) % 60, 2)
    block[:, c + 16] = ord(":")
    _digits(block, c + 17, sec % 60, 2)
    return [_constant(n, prefix), block, _constant(n, suffix)]


def _date_block(values: Any, field: StoredField) -> np.ndarray:
    """``{"_type_":"date_iso","_data_":"YYYY-MM-DD"}``, or ``null`` padded, per row."""
    days = np.asarray(values).astype("datetime64[D]")
    missing = np.isnat(days)
    if missing.any() and not field.optional:
        raise ValueError(f"bulk encoding: field {field.name!r} is required but missing in some rows")
    prefix = _DATE_PREFIX
    n = len(days)
    block = np.empty((n, len(prefix) + 12), dtype=np.uint8)
    block[:, : len(prefix)] = _constant(n, prefix)
    _ymd(block, len(prefix), np.where(missing, np.datetime64("1970-01-01"), days))
    block[:, -2:] = _constant(n, b'"}')
    if missing.any():
        null = np.full(block.shape[1], _SPACE, dtype=np.uint8)
        null[:4] = np.frombuffer(b"null", dtype=np.uint8)
        block[missing] = null
    return block


def _int_block(values: Any) -> np.ndarray:
    """Right-aligned integers padded with leading spaces: ``" 30"``, ``"-5"``."""
    v = np.asarray(values).astype(np.int64)
    mag = np.abs(v)
    width = len(str(int(mag.max()))) + 1 if len(v) else 1
    ndig = 1 + sum((mag >= 10**k).astype(np.int64) for k in range(1, width))
    block = np.full((len(v), width), _SPACE, dtype=np.uint8)
    m = mag.copy()
    for j in range(width - 1, -1, -1):
        from_right = width - 1 - j
        digit = from_right < ndig
        block[digit, j] = _ZERO + (m[digit] % 10)
        block[(v < 0) & (from_right == ndig), j] = ord("-")
        m //= 10
    return block


_FRAGMENT_CACHE_MAX = 200_000


def _value_block(values: Any, field: StoredField, encode_value: Callable[[Any], str], cache: dict[Any, bytes] | None = None) -> np.ndarray:
    """Encode each distinct value once (remembered in ``cache`` across batches), then gather rows by code."""
    if isinstance(values, pd.Categorical):
        codes, uniques = values.codes, list(values.categories)
    else:
        seq = values if isinstance(values, (np.ndarray, pd.Series, pd.Index)) else pd.Series(list(values), dtype=object)
        codes, uniques = pd.factorize(seq, use_na_sentinel=True)
        uniques = list(uniques)
    if cache is None:
        frags = [encode_value(u).encode() for u in uniques]
    else:
        if len(cache) > _FRAGMENT_CACHE_MAX:
            cache.clear()
        frags = []
        for u in uniques:
            f = cache.get(u)
            if f is None:
                f = cache[u] = encode_value(u).encode()
            frags.append(f)
    if (codes < 0).any():
        if not field.optional:
            raise ValueError(f"bulk encoding: field {field.name!r} is required but missing in some rows")
        frags.append(b"null")
        codes = np.where(codes < 0, len(frags) - 1, codes)
    width = max((len(f) for f in frags), default=4)
    # NUL-padded fixed width in one C call; JSON never holds a NUL byte, so NUL → space pads exactly
    table = np.array(frags, dtype=f"S{width}").view(np.uint8).reshape(len(frags), width).copy()
    table[table == 0] = _SPACE
    return table[codes]


class EventEncoder:
    """Encodes columns of one event class into the library's stored-state JSON."""

    def __init__(self, event_class: type) -> None:
        schema = event_schema(event_class)
        self.event_class = event_class
        self.topic = schema.topic
        self.fields = schema.fields
        self.class_version = schema.class_version
        self.originator_topic = schema.originator_topic
        # fields encoded once per distinct value: their encoders, and per field value → its JSON, kept across batches
        self._encoders = {f.name: _value_encoder(f) for f in self.fields if f.python_type not in (datetime, date, int)}
        self._fragments: dict[str, dict[Any, bytes]] = {}

    def encode(self, n: int, columns: Mapping[str, Any], arena: Arena | None = None) -> np.ndarray:
        """Return an ``S``-dtype array of ``n`` stored states (in ``arena``'s memory when given).

        ``columns`` holds one array per event field; ``timestamp`` defaults to
        ``recorded_at`` (as the command methods do). Datetimes are UTC
        ``datetime64``; dates ``datetime64[D]`` (NaT for None).
        """
        cols = dict(columns)
        cols.setdefault("timestamp", cols.get("recorded_at"))
        if self.originator_topic is not None:
            cols[ORIGINATOR_TOPIC] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [self.originator_topic])
        expected = {f.name for f in self.fields}
        unknown = set(cols) - expected
        if unknown:
            raise ValueError(f"{self.event_class.__qualname__}: unknown columns {sorted(unknown)}")
        blocks: list[np.ndarray] = []  # (n, width) each; constants as broadcast views (row stride 0)
        for i, f in enumerate(self.fields):
            if f.name not in cols or cols[f.name] is None:
                raise ValueError(f"{self.event_class.__qualname__}: missing column {f.name!r}")
            values = cols[f.name]
            if len(values) != n:
                raise ValueError(f"{self.event_class.__qualname__}: column {f.name!r} has {len(values)} rows, expected {n}")
            blocks.append(_constant(n, ("{" if i == 0 else ",").encode() + json.dumps(f.name).encode() + b":"))
            if f.python_type is datetime:
                blocks.extend(_datetime_block(values))
            elif f.python_type is date:
                blocks.append(_date_block(values, f))
            elif f.python_type is int:
                blocks.append(_int_block(values))
            else:
                blocks.append(_value_block(values, f, self._encoders[f.name], self._fragments.setdefault(f.name, {})))
        end = b',"%s":%d}' % (CLASS_VERSION.encode(), self.class_version) if self.class_version > 1 else b"}"
        blocks.append(_constant(n, end))
        # The constant pieces form one template row, copied to every row at once; the
        # varying pieces are then written into their columns (much faster than a concatenate).
        widths = np.array([b.shape[1] for b in blocks])
        starts = np.concatenate(([0], np.cumsum(widths)[:-1]))
        template = np.empty(int(widths.sum()), dtype=np.uint8)
        varying = []
        for b, c, w in zip(blocks, starts.tolist(), widths.tolist(), strict=True):
            if b.strides[0] == 0:
                template[c : c + w] = b[0] if n else 0
            else:
                varying.append((b, c, w))
        out = arena.take(n * len(template)).reshape(n, len(template)) if arena is not None else np.empty((n, len(template)), dtype=np.uint8)
        out[:] = template
        for b, c, w in varying:
            out[:, c : c + w] = b
        return out.view(f"S{out.shape[1]}").ravel()


_ENCODERS: dict[type, EventEncoder] = {}


def encoder_for(event_class: type) -> EventEncoder:
    enc = _ENCODERS.get(event_class)
    if enc is None:
        enc = _ENCODERS[event_class] = EventEncoder(event_class)
    return enc

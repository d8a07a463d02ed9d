"""Parquet: every value as text (see the package docstring for the forms)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ersattning.ingest.readers.chunk import (
    Chunk,
    as_path,
    check_file,
    header_names,
    object_column,
    read_error,
    text_column,
    text_frame,
)

if TYPE_CHECKING:
    import pyarrow as pa


def read_parquet(path: str | os.PathLike, *, chunk_rows: int = 200_000) -> Iterator[Chunk]:
    """Stream a Parquet file as chunks of text cells (see the module docstring for how values become text)."""
    import pyarrow.parquet as pq

    path = as_path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    check_file(path)
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ... for non-Parquet files
        raise read_error(path, f"not a Parquet file ({e})") from None
    columns = header_names(path, schema.names)
    for field, name in zip(schema, columns, strict=True):
        _converter(path, name, field.type)  # unsupported column types fail before the first chunk
    return _read_parquet(path, chunk_rows, columns)


def _read_parquet(path: str, chunk_rows: int, columns: list[str]) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001
        raise read_error(path, f"not a Parquet file ({e})") from None
    with pf:
        first_row = 1
        pending: list = []
        held = 0
        batches = pf.iter_batches(batch_size=chunk_rows)
        while True:
            try:
                batch = next(batches, None)
            except Exception as e:  # noqa: BLE001 - a corrupt page, a truncated file
                raise read_error(path, f"cannot read rows {first_row + held} and after ({e})", first_row + held) from None
            if batch is not None and batch.num_rows:
                pending.append(batch)
                held += batch.num_rows
            while held >= chunk_rows or (batch is None and held):
                table = pa.Table.from_batches(pending)
                take = min(held, chunk_rows)
                part, rest = table.slice(0, take), table.slice(take)
                chunk = _parquet_chunk(path, first_row, columns, part)
                chunk.fraction = min(1.0, (first_row - 1 + take) / pf.metadata.num_rows) if pf.metadata.num_rows else None
                yield chunk
                first_row += take
                pending, held = rest.to_batches(), rest.num_rows
            if batch is None:
                return


def _parquet_chunk(path: str, first_row: int, columns: list[str], table: pa.Table) -> Chunk:
    data = [_converter(path, name, col.type)(col.combine_chunks()) for name, col in zip(columns, table.columns, strict=True)]
    n = table.num_rows
    return Chunk(
        path=path, first_row=first_row, frame=text_frame(columns, data), lines=np.arange(first_row, first_row + n, dtype=np.int64)
    )


def _converter(path: str, name: str, typ: pa.DataType) -> Callable[[pa.Array], np.ndarray]:
    """A function from a pyarrow Array of type ``typ`` to an object ndarray of str/None."""
    import pyarrow as pa
    import pyarrow.types as t

    def pylist(fmt: Callable[[Any], str]) -> Callable[[pa.Array], np.ndarray]:
        return lambda arr: object_column([None if v is None else fmt(v) for v in arr.to_pylist()])

    if t.is_dictionary(typ):
        inner = _converter(path, name, typ.value_type)
        return lambda arr: inner(arr.dictionary_decode())
    if t.is_string(typ) or t.is_large_string(typ) or (hasattr(t, "is_string_view") and t.is_string_view(typ)):
        return lambda arr: text_column(arr.to_pylist())
    if t.is_null(typ):
        return lambda arr: np.full(len(arr), None, dtype=object)
    if t.is_integer(typ):
        return lambda arr: object_column(arr.cast(pa.string()).to_pylist())
    if t.is_boolean(typ):
        return pylist(lambda v: "true" if v else "false")
    if t.is_float16(typ):
        return pylist(lambda v: str(np.float16(v)))
    if t.is_float32(typ):
        return pylist(lambda v: str(np.float32(v)))
    if t.is_floating(typ) or t.is_decimal(typ):
        return pylist(str)
    if t.is_timestamp(typ):
        return lambda arr: _iso_timestamps(arr, typ)
    if t.is_date(typ):
        return lambda arr: _iso_dates(arr)
    if t.is_time(typ):
        return pylist(lambda v: v.isoformat())
    if t.is_duration(typ):
        return pylist(lambda v: pd.Timedelta(v).isoformat())
    raise read_error(path, f"column {name!r} has type {typ}, which cannot be read as text cells")


def _iso_dates(arr: pa.Array) -> np.ndarray:
    import pyarrow as pa

    days = arr.cast(pa.date32()).cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out = np.full(len(arr), None, dtype=object)
    if valid.any():
        out[valid] = np.datetime_as_string(days[valid].astype("int64").astype("datetime64[D]"), unit="D").astype(object)
    return out


def _iso_timestamps(arr: pa.Array, typ: pa.TimestampType) -> np.ndarray:
    """ISO 8601 text: wall time in the column's zone with its offset when tz-aware; fraction only when non-zero."""
    import pyarrow as pa
    import pyarrow.compute as pc

    unit = typ.unit
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out = np.full(len(arr), None, dtype=object)
    if not valid.any():
        return out
    # fill_null before to_numpy: with nulls it would give float64 and lose nanoseconds
    utc = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)[valid]
    if typ.tz is not None:
        wall = pc.local_timestamp(arr).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)[valid]
    else:
        wall = utc
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    stamps = wall.astype(f"datetime64[{unit}]")
    text = np.datetime_as_string(stamps, unit="s").astype(object)
    if unit != "s":
        fractional = wall % per_second != 0
        if fractional.any():
            text[fractional] = np.datetime_as_string(stamps[fractional], unit=unit).astype(object)
    if typ.tz is not None:
        offsets = (wall - utc) // per_second
        distinct, inverse = np.unique(offsets, return_inverse=True)
        suffix = np.array([_offset_text(int(o)) for o in distinct], dtype=object)[inverse]
        text = text + suffix
    out[valid] = text
    return out


def _offset_text(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")

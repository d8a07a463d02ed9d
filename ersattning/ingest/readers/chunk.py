"""Chunk, the unit every reader yields, and ReadError; helpers the readers share (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa


BLOCK_BYTES = 1 << 20  # what the readers read at a time


class ReadError(Exception):
    """A file that cannot be read as asked; the message names the file (and the line when known)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


def read_error(path: str, what: str, line: int | None = None) -> ReadError:
    where = path if line is None else f"{path}, line {line}"
    return ReadError(f"{where}: {what}", path=path, line=line)


@dataclass
class Chunk:
    """Consecutive rows of one file, as text, with where each row came from.

    A reader that has the cells as Arrow strings (plain CSV) gives ``table`` and ``frame=None``: the frame is then
    made from the table on first use (and kept), so a consumer of Arrow arrays never pays for Python strings.
    """

    _frame_value: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)  # first: set before frame
    path: str
    first_row: int  # 1-based data row number of the first row (a header is not counted)
    frame: pd.DataFrame  # object columns of str or None, named as in the file (a property: see _chunk_frame)
    lines: np.ndarray  # int64, 1-based physical line of each row
    fraction: float | None = None  # how much of the file had been read when the chunk was handed out (0–1), if known
    table: pa.Table | None = None  # the same cells as Arrow string columns (null for an empty cell), if the reader had them

    @property
    def first_line(self) -> int:
        """The physical line of the first row."""
        return int(self.lines[0])

    def __len__(self) -> int:
        return self.table.num_rows if self._frame_value is None and self.table is not None else len(self.frame)

    def arrow(self, name: str) -> pa.Array | None:
        """Column ``name`` as one Arrow string array (null for an empty cell), or None if its cells are not all text.

        One accessor for both kinds of chunks: the reader's Arrow column when there is one, else the frame's column
        converted. KeyError if there is no such column.
        """
        import pyarrow as pa

        if self.table is not None:
            return self.table.column(name).combine_chunks()
        values = self.frame[name].to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
        return pa.array(values, type=pa.string(), from_pandas=True)


def _chunk_frame(self: Chunk) -> pd.DataFrame:
    """The frame, made from the Arrow table on first use: object columns of str or None, as the pandas path gives."""
    if self._frame_value is None:
        if self.table is None:
            raise ValueError("a Chunk needs a frame or a table")
        data = [col.to_numpy(zero_copy_only=False) for col in self.table.columns]
        self._frame_value = text_frame(self.table.column_names, data)
    return self._frame_value


def _set_chunk_frame(self: Chunk, frame: pd.DataFrame | None) -> None:
    self._frame_value = frame


# A property over the dataclass field (set after @dataclass, so the generated __init__ assigns through it):
# Chunk(..., frame=...) and subclasses keep working, and a chunk made from a table materialises its frame lazily.
Chunk.frame = property(_chunk_frame, _set_chunk_frame)


def text_frame(columns: list[str], data: list[np.ndarray]) -> pd.DataFrame:
    # dtype=object keeps None as None (pandas 3 would otherwise infer its str dtype, with NaN).
    return pd.DataFrame(dict(zip(columns, data, strict=True)), columns=columns, dtype=object)


def object_column(values: list) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def text_column(values: list) -> np.ndarray:
    """Strings (or None) as an object array, empty strings as None."""
    arr = object_column(values)
    if len(arr):
        arr[arr == ""] = None
    return arr


def header_names(path: str, raw: Iterable[str], line: int = 1) -> list[str]:
    names = [str(n).lstrip("\ufeff").strip() for n in raw]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise read_error(path, f"duplicate column name {n!r} in the header", line)
        seen.add(n)
    return names


def as_path(path: str | os.PathLike) -> str:
    return os.fspath(path)


def check_file(path: str) -> None:
    if not os.path.exists(path):
        raise read_error(path, "no such file")
    if os.path.isdir(path):
        raise read_error(path, "is a directory, not a file")

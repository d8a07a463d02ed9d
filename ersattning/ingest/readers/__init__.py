"""Rows out of the files people bring: CSV, Parquet and XES, streamed in chunks of raw text cells.

Researchers and finance officers bring historical service logs as Excel CSV
exports (Windows-1252, ``;``, decimal comma), UTF-8 CSV, Parquet files and XES
event logs from process-mining tools. This module only gets the rows out,
faithfully, and says exactly where each came from; mapping columns to the
domain and validating values is the importer's job, chunk by chunk.

Every reader yields :class:`Chunk` objects of at most ``chunk_rows`` rows (all
but the last exactly ``chunk_rows``), holding every cell as text (``str``, or
``None`` for an empty cell) and the physical line of each row, so that an
error found later can be reported as "FILE, line N". Memory stays flat in the
file size: about one chunk (plus, for XES, the events of one trace) is held.

Fast path for plain CSV: a file is *plain* when a pre-scan of its bytes (in
blocks, vectorised, bounded memory; about 1 ms per MB) finds UTF-8 (with or
without BOM) or Windows-1252 that all decodes, a ``;`` ``,`` or tab delimiter,
no ``"``, no NUL, no lone ``\\r``, and on every line (the header's too) the
header's number (at least one) of delimiters and some text. Such a file has one
record per line and nothing to unquote, pad or skip, so pyarrow's streaming CSV
parser reads it (one thread, every column text) straight into Arrow string
arrays, handed out as ``Chunk.table``; ``Chunk.frame`` is built from them only
when asked for. The chunks equal the general path's in every respect (cells,
columns, chunk sizes, row numbers, lines, ``fraction``); the scan decides before
the first chunk, and every other file (quotes, blank lines, short or long rows,
other encodings, bytes that do not decode) takes the general path, pandas' C
parser, unchanged.

Line numbers
    CSV: physical lines separated by ``\\n`` (``\\r\\n`` counts as one), as an
    editor numbers them; the header is line 1 unless blank lines precede it. A
    row's line is the line on which its record *starts*. Quoted cells that hold
    line breaks are counted exactly, not assumed away: pandas' C parser
    tokenizes with blank lines kept as records, so records and lines stay in
    step, and each record's line is the previous one's + 1 + the line breaks
    inside its cells (every such break was a line end in the file). Until the
    first quote character is read no cell can hold one, and lines are simply
    consecutive. Parquet: the row's index in the file + 1. XES: the line of the
    ``<event>`` start tag.

Choices (each one a place where a file could be read in more than one way):

* CSV cells keep their text exactly (no trimming, no decimal or date
  conversion); an empty cell (quoted or not) is ``None``. A line break inside
  a quoted cell is given as ``\\n`` (CRLF is normalised to LF; a lone ``\\r``
  inside a cell is kept). A row with fewer cells than the header is padded
  with ``None``; a row with more cells is a :class:`ReadError` at its line. A
  row without any text (a blank line, only whitespace, only delimiters — Excel
  writes ``;;;;`` for empty rows) is not a row: it gets no row number, but its
  lines are counted. Quoting is RFC 4180 (``"`` opens a quoted cell at the
  start of a cell, doubled inside it); as Excel and pandas do, a ``"`` inside
  an unquoted cell is text and text after a closing quote is appended
  (``"5" rör`` reads ``5 rör``). A quote left open at the end of the file is
  a ReadError at the line where its record starts. A file whose line ends are
  lone ``\\r`` (classic Mac OS) is a ReadError.
* Header names are stripped of a byte order mark and surrounding whitespace;
  duplicate names (also two empty ones) are a ReadError, since a column could
  not be told apart.
* Encodings: UTF-8 (with or without BOM), Windows-1252, and UTF-16 when the
  file starts with a UTF-16 byte order mark (Excel's "Unicode text", tab
  separated) or looks like UTF-16 without one (NUL in every other byte); any
  other encoding when forced by the caller. The sniffed encoding is chosen
  from the first 64 KiB: bytes further on that do not decode are a ReadError
  at their line, suggesting to force the encoding. A NUL character is a
  ReadError at its line; a ZIP file (an ``.xlsx`` renamed ``.csv``) is one too.
* Delimiter: the candidate among ``;`` ``,`` tab that splits the first 100
  records of the sample (quote-aware, with the csv module) into the same number
  of cells > 1, else the one whose counts agree most; ties go to the one giving
  the header most columns, then to the order ``;`` ``,`` tab. Decimal: ``,`` when the delimiter is not ``,`` and a data cell of the
  sample reads like ``\\d+,\\d+`` (so tab-separated Swedish exports too), else
  ``.``; reported only.
* Parquet values become text as ``str()`` of the Python value for numbers
  (``3``, ``0.5``; float32 by its shortest float32 text), ``true``/``false``
  for booleans, ISO 8601 for timestamps (``2024-03-04T08:00:00+01:00`` with
  the offset in the column's time zone when it has one; fractional seconds
  only on values that have them), ``YYYY-MM-DD`` for dates, ``HH:MM:SS[.f]``
  for times, ISO 8601 durations (``P0DT0H30M0S``) for durations; dictionary
  columns as their values. Binary and nested (list, struct, map) columns are a
  ReadError naming the column.
* XES: one row per ``<event>``. Columns: ``case:concept:name`` first, then
  every other trace attribute as ``case:<key>``, then every event attribute by
  its key, in first-seen order; the columns are found by a first pass over the
  file so that every chunk has the same columns. Values are the ``value``
  attribute's text exactly as written (dates are not re-formatted).
  Attributes of kinds string, date, int, float, boolean and id that are
  direct children of a trace or event are read; ``list`` and ``container``
  attributes, nested (meta-)attributes, log-level attributes and
  ``<global>`` defaults are skipped. An event attribute wins over a trace
  attribute of the same column name. Events directly under ``<log>`` get no
  case attributes. Namespaced (``xmlns=...``) and prefixed tags are accepted;
  ``.xes.gz`` (or any gzip-compressed XES) is decompressed on the fly.
"""

from __future__ import annotations

import csv as csv_module  # not `csv`: the package's csv submodule takes that name
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ersattning.ingest.readers.chunk import Chunk, ReadError, as_path, check_file, header_names, read_error, text_frame
from ersattning.ingest.readers.csv import SNIFF_BYTES, CsvDialect, read_general, sniff_csv
from ersattning.ingest.readers.csv_plain import read_plain, scan_plain
from ersattning.ingest.readers.parquet import read_parquet
from ersattning.ingest.readers.xes import read_xes

__all__ = ["SNIFF_BYTES", "SUFFIXES", "Chunk", "CsvDialect", "ReadError", "read_csv", "read_parquet", "read_rows", "read_rows_or_header", "read_xes", "sniff_csv"]

SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".xes": "xes", ".xes.gz": "xes"}


def read_csv(
    path: str | os.PathLike,
    *,
    chunk_rows: int = 200_000,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[Chunk]:
    """Stream a CSV file as chunks of text cells; encoding and delimiter are sniffed unless given.

    A plain file (see the module docstring) is read by pyarrow and its chunks carry ``table``; any other by pandas.
    """
    path = as_path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    dialect = sniff_csv(path, encoding=encoding, delimiter=delimiter)
    plain = scan_plain(path, dialect)
    if plain is not None:
        return read_plain(path, chunk_rows, dialect, plain)
    return read_general(path, chunk_rows, dialect)


def _suffix_kind(path: str) -> str | None:
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIXES[suffix]
    return None


def read_rows(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    chunk_rows: int = 200_000,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[Chunk]:
    """Read any supported file by ``kind`` ("csv", "parquet", "xes") or else by its suffix."""
    path = as_path(path)
    if kind is not None and kind not in ("csv", "parquet", "xes"):
        raise ValueError(f"kind must be 'csv', 'parquet' or 'xes', not {kind!r}")
    check_file(path)
    kind = kind or _suffix_kind(path)
    if kind is None:
        supported = " ".join(SUFFIXES)
        raise read_error(path, f"unknown kind of file; supported suffixes: {supported} (rename the file to one of them)")
    if kind == "csv":
        return read_csv(path, chunk_rows=chunk_rows, encoding=encoding, delimiter=delimiter)
    if kind == "parquet":
        return read_parquet(path, chunk_rows=chunk_rows)
    return read_xes(path, chunk_rows=chunk_rows)


def read_rows_or_header(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    chunk_rows: int = 200_000,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[Chunk]:
    """As :func:`read_rows`; a file without rows (a header only, even without a line break) gives one empty chunk
    with the header's columns, so an importer checks its required columns in an empty file too."""
    any_rows = False
    for chunk in read_rows(path, kind=kind, chunk_rows=chunk_rows, encoding=encoding, delimiter=delimiter):
        any_rows = True
        yield chunk
    if not any_rows:
        p = as_path(path)
        names = _header(p, kind or _suffix_kind(p), encoding, delimiter)
        frame = text_frame(names, [np.empty(0, dtype=object) for _ in names])
        yield Chunk(path=p, first_row=1, frame=frame, lines=np.empty(0, dtype=np.int64), fraction=1.0)


def _header(path: str, kind: str | None, encoding: str | None, delimiter: str | None) -> list[str]:
    """The column names of a file without rows (XES: none)."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if kind != "csv":
        return []
    dialect = sniff_csv(path, encoding=encoding, delimiter=delimiter)
    with open(path, encoding=dialect.encoding, newline="", errors="replace") as f:
        for line, row in enumerate(csv_module.reader(f, delimiter=dialect.delimiter), start=1):
            if any(cell.strip() for cell in row):
                return header_names(path, row, line)
    return []

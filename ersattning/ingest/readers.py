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

import codecs
import csv
import gzip
import io
import itertools
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.parsers import expat

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Chunk", "CsvDialect", "ReadError", "read_csv", "read_parquet", "read_rows", "read_xes", "sniff_csv"]

SNIFF_BYTES = 64 * 1024
_BLOCK_BYTES = 1 << 20
_DELIMITERS = (";", ",", "\t")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")

SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".xes": "xes", ".xes.gz": "xes"}


class ReadError(Exception):
    """A file that cannot be read as asked; the message names the file (and the line when known)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


def _error(path: str, what: str, line: int | None = None) -> ReadError:
    where = path if line is None else f"{path}, line {line}"
    return ReadError(f"{where}: {what}", path=path, line=line)


@dataclass
class Chunk:
    """Consecutive rows of one file, as text, with where each row came from.

    A reader that has the cells as Arrow strings (plain CSV) gives ``table`` and ``frame=None``: the frame is then
    made from the table on first use (and kept), so a consumer of Arrow arrays never pays for Python strings.
    """

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
        self._frame_value = _frame(self.table.column_names, data)
    return self._frame_value


def _set_chunk_frame(self: Chunk, frame: pd.DataFrame | None) -> None:
    self._frame_value = frame


# A property over the dataclass field (set after @dataclass, so the generated __init__ assigns through it):
# Chunk(..., frame=...) and subclasses keep working, and a chunk made from a table materialises its frame lazily.
Chunk.frame = property(_chunk_frame, _set_chunk_frame)  # type: ignore[assignment]


def _frame(columns: list[str], data: list[np.ndarray]) -> pd.DataFrame:
    # dtype=object keeps None as None (pandas 3 would otherwise infer its str dtype, with NaN).
    return pd.DataFrame(dict(zip(columns, data, strict=True)), columns=columns, dtype=object)


def _object_column(values: list) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _text_column(values: list) -> np.ndarray:
    """Strings (or None) as an object array, empty strings as None."""
    arr = _object_column(values)
    if len(arr):
        arr[arr == ""] = None
    return arr


def _header_names(path: str, raw: Iterable[str], line: int = 1) -> list[str]:
    names = [str(n).lstrip("\ufeff").strip() for n in raw]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise _error(path, f"duplicate column name {n!r} in the header", line)
        seen.add(n)
    return names


def _as_path(path: str | os.PathLike) -> str:
    return os.fspath(path)


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise _error(path, "no such file")
    if os.path.isdir(path):
        raise _error(path, "is a directory, not a file")


# --------------------------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class CsvDialect:
    encoding: str  # "utf-8-sig" or "cp1252" ("utf-16", "utf-16-le", "utf-16-be" for UTF-16 text), or what the user forced
    delimiter: str  # ";" or "," or "\t"
    decimal: str  # "," or "." — reported, not applied (cells stay text)


def _sniff_encoding(sample: bytes, complete: bool) -> str:
    if sample.startswith(_UTF8_BOM):
        return "utf-8-sig"
    if sample.startswith(_UTF16_BOMS):
        return "utf-16"
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if len(sample) >= 4 and max(even, odd) >= len(sample) // 4 and min(even, odd) == 0:
        return "utf-16-le" if odd else "utf-16-be"  # UTF-16 text without a byte order mark
    try:
        # final=False: a multi-byte character cut off by the end of the sample is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def _decode_sample(path: str, sample: bytes, encoding: str, complete: bool) -> str:
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    except LookupError:
        raise _error(path, f"unknown encoding {encoding!r}") from None
    return decoder.decode(sample, final=complete)


def _sample_records(text: str, delimiter: str, complete: bool, limit: int = 100) -> list[list[str]]:
    if not complete:  # the last line may be cut off
        cut = text.rfind("\n")
        text = text[: cut + 1] if cut >= 0 else text
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    records: list[list[str]] = []
    try:
        for rec in reader:
            if rec and not (len(rec) == 1 and not rec[0].strip()):
                records.append(rec)
                if len(records) >= limit:
                    break
    except csv.Error:
        pass
    if not complete and len(records) > 1:
        records = records[:-1]  # possibly a record cut inside a quoted cell
    return records


def _sniff_delimiter(text: str, complete: bool) -> str:
    best: tuple | None = None
    for rank, d in enumerate(_DELIMITERS):
        records = _sample_records(text, d, complete)
        if not records:
            continue
        counts = [len(r) for r in records]
        consistent = all(c == counts[0] for c in counts) and counts[0] > 1
        modal = max(set(counts), key=counts.count)
        agreement = counts.count(modal) / len(counts)
        # Consistent splitting first, then how well the counts agree, then the most header columns, then ; , tab.
        score = (consistent, agreement if modal > 1 else 0.0, counts[0], -rank)
        if best is None or score > best[0]:
            best = (score, d)
    if best is None or best[0][2] <= 1 and best[0][1] == 0.0:
        return ","  # one column (or nothing): any delimiter reads it the same
    return best[1]


def _sniff_decimal(text: str, delimiter: str, complete: bool) -> str:
    if delimiter == ",":
        return "."
    records = _sample_records(text, delimiter, complete)
    for rec in records[1:]:
        for cell in rec:
            if _DECIMAL_COMMA.fullmatch(cell.strip()):
                return ","
    return "."


def sniff_csv(path: str | os.PathLike, encoding: str | None = None, delimiter: str | None = None) -> CsvDialect:
    """Guess a CSV file's encoding, delimiter and decimal mark from its first 64 KiB (given values are kept)."""
    path = _as_path(path)
    _check_file(path)
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, not {delimiter!r}")
    try:
        with open(path, "rb") as fh:
            sample = fh.read(SNIFF_BYTES + 1)
    except OSError as e:
        raise _error(path, e.strerror or str(e)) from None
    complete = len(sample) <= SNIFF_BYTES
    sample = sample[:SNIFF_BYTES]
    if sample.startswith(b"PK\x03\x04"):
        raise _error(path, "is a ZIP archive (an Excel .xlsx workbook?), not a CSV text file; save it as CSV first")
    enc = encoding or _sniff_encoding(sample, complete)
    text = _decode_sample(path, sample, enc, complete)
    delim = delimiter or _sniff_delimiter(text, complete)
    return CsvDialect(encoding=enc, delimiter=delim, decimal=_sniff_decimal(text, delim, complete))


def _text_blocks(path: str, fh, encoding: str) -> Iterator[str]:
    """The file's text in blocks of whole lines ('\n'-terminated but the last), with CRLF turned into LF.

    Undecodable bytes and NUL characters are a ReadError at their line.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    lines_done = 0  # complete lines handed out so far
    while True:
        try:
            data = fh.read(_BLOCK_BYTES)
        except (OSError, EOFError, zlib.error) as e:
            raise _error(path, f"cannot be read: {e}", lines_done + 1) from None
        final = not data
        state = decoder.getstate()
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError as e:
            # The error offset is into (bytes buffered by the decoder + data); decode what precedes it to count lines.
            before = codecs.getincrementaldecoder(encoding)(errors="replace")
            before.setstate((b"", state[1]))
            good = before.decode((state[0] + data)[: e.start], False)
            line = lines_done + (pending + good).count("\n") + 1
            bad = e.object[e.start : e.end]
            raise _error(
                path,
                f"bytes {bad!r} cannot be decoded as {encoding} ({e.reason}); the file may be in another encoding "
                "— pass encoding= to force one (e.g. 'cp1252' for Excel on Swedish Windows, 'utf-8-sig')",
                line,
            ) from None
        text = pending + text
        cut = len(text) if final else text.rfind("\n") + 1
        pending = text[cut:]
        whole = text[:cut]
        if "\x00" in whole:
            line = lines_done + whole[: whole.index("\x00")].count("\n") + 1
            raise _error(path, f"contains a NUL character: not a text file, or not in the encoding {encoding!r}", line)
        if whole:
            lines_done += whole.count("\n")
            yield whole.replace("\r\n", "\n") if "\r" in whole else whole
        if final:
            return


_LEADING_BLANK = re.compile(r"(?:[ \t]*\n)*")


class _TextStream(io.TextIOBase):
    """Decoded, line-end-normalized text for pandas' C parser, minus blank lines before the header.

    Records whether a quote character has been handed out: until one has, no cell can hold a line break,
    so every record is exactly one line.
    """

    def __init__(self, path: str, fh, encoding: str) -> None:
        self._blocks = _text_blocks(path, fh, encoding)
        self._buf = ""
        self._started = False
        self.skipped_lines = 0  # blank lines before the header
        self.seen_quote = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while not self._buf:
            block = next(self._blocks, None)
            if block is None:
                return False
            if not self._started:
                blank = _LEADING_BLANK.match(block).end()
                self.skipped_lines += block.count("\n", 0, blank)
                block = block[blank:]
                self._started = bool(block)
            self._buf = block
        return True

    def read(self, size: int | None = -1) -> str:
        if not self._fill():
            return ""
        if size is None or size < 0 or size >= len(self._buf):
            out, self._buf = self._buf, ""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        if not self.seen_quote and '"' in out:
            self.seen_quote = True
        return out


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
    path = _as_path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    dialect = sniff_csv(path, encoding=encoding, delimiter=delimiter)
    plain = _scan_plain(path, dialect)
    if plain is not None:
        return _read_plain(path, chunk_rows, dialect, plain)
    return _read_csv(path, chunk_rows, dialect)


def _open_binary(path: str):
    try:
        return open(path, "rb")
    except OSError as e:
        raise _error(path, e.strerror or str(e)) from None


def _newlines(cells: np.ndarray) -> np.ndarray:
    """The line breaks inside each row's cells (object array of str/None, one row per record)."""
    out = np.zeros(len(cells), dtype=np.int64)
    for j in range(cells.shape[1]):
        col = cells[:, j]
        present = col[col != None]
        if "\n" in "".join(present):
            out += np.fromiter((v.count("\n") if v is not None else 0 for v in col), dtype=np.int64, count=len(col))
    return out


def _read_csv(path: str, chunk_rows: int, dialect: CsvDialect) -> Iterator[Chunk]:
    """pandas' C parser tokenizes (every cell as text, blank lines kept as records so that records and lines
    stay in step); each record's line is the previous record's line + 1 + the line breaks inside its cells."""
    with _open_binary(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        stream = _TextStream(path, fh, dialect.encoding)
        try:
            parts = pd.read_csv(
                stream,
                sep=dialect.delimiter,
                header=None,
                dtype=object,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,
                quotechar='"',
                doublequote=True,
                lineterminator="\n",
                engine="c",
                chunksize=chunk_rows,
            )
            columns: list[str] | None = None
            line = 0  # the line of the next record
            first_row = 1
            held: list[tuple[np.ndarray, np.ndarray]] = []  # rows read, not yet handed out, with their lines
            count = 0
            for part in parts:
                cells = part.to_numpy(dtype=object, copy=True)
                cells[pd.isna(cells)] = None  # empty cells (quoted or not) came as NaN
                spans = 1 + _newlines(cells) if stream.seen_quote else np.ones(len(cells), dtype=np.int64)
                if columns is None:
                    line = stream.skipped_lines + 1
                    columns = _csv_columns(path, cells[0], line)
                    line += int(spans[0])
                    cells, spans = cells[1:], spans[1:]
                starts = line + np.concatenate(([0], np.cumsum(spans[:-1]))).astype(np.int64)
                line += int(spans.sum())
                keep = ~_blank_rows(cells)
                if not keep.all():
                    cells, starts = cells[keep], starts[keep]
                if len(cells):
                    held.append((cells, starts))
                    count += len(cells)
                while count >= chunk_rows:
                    chunk_cells, chunk_lines, held, count = _take(held, chunk_rows)
                    # the parser is a part ahead of the rows handed out: scale the bytes read by the rows' share
                    done = first_row - 1 + chunk_rows
                    fraction = _read_fraction(fh, size)
                    yield _csv_chunk(path, first_row, columns, chunk_cells, chunk_lines, fraction * done / (done + count) if fraction is not None else None)
                    first_row += chunk_rows
        except pd.errors.EmptyDataError:
            raise _error(path, "empty file, no header row") from None
        except pd.errors.ParserError as e:
            _locate_csv_error(path, dialect, str(e))
            raise _error(path, f"malformed CSV: {e}") from None  # pragma: no cover - located above
        if count:
            chunk_cells, chunk_lines, held, count = _take(held, count)
            yield _csv_chunk(path, first_row, columns, chunk_cells, chunk_lines, 1.0)


def _csv_columns(path: str, header: np.ndarray, line: int) -> list[str]:
    names = ["" if v is None else v for v in header]
    if any("\r" in n for n in names):
        raise _error(path, "has line ends of a lone carriage return (classic Mac OS); convert it to CRLF or LF line ends", line)
    return _header_names(path, names, line)


def _blank_rows(cells: np.ndarray) -> np.ndarray:
    """Rows without any text: a blank line, a line of only delimiters, a line of only whitespace."""
    present = (cells != None).sum(axis=1)
    blank = present == 0
    lone = np.flatnonzero((present == 1) & (cells[:, 0] != None))
    for i in lone:
        if not cells[i, 0].strip():
            blank[i] = True
    return blank


def _take(held: list[tuple[np.ndarray, np.ndarray]], n: int):
    cells = np.concatenate([c for c, _ in held]) if len(held) > 1 else held[0][0]
    lines = np.concatenate([s for _, s in held]) if len(held) > 1 else held[0][1]
    rest = [(cells[n:], lines[n:])] if len(cells) > n else []
    return cells[:n], lines[:n], rest, len(cells) - n


def _locate_csv_error(path: str, dialect: CsvDialect, message: str) -> None:
    """Read the file again record by record with the csv module to name the line of pandas' complaint."""
    with _open_binary(path) as fh:
        stream = _TextStream(path, fh, dialect.encoding)
        lines = itertools.chain.from_iterable(io.StringIO(b, newline="\n") for b in iter(lambda: stream.read(_BLOCK_BYTES), ""))
        reader = csv.reader(lines, delimiter=dialect.delimiter, quotechar='"', doublequote=True, strict=False)
        ncol = None
        prev = start = 0
        try:
            for rec in reader:
                start = stream.skipped_lines + prev + 1
                prev = reader.line_num
                if ncol is None:
                    ncol = len(rec)
                elif len(rec) > ncol:
                    raise _error(path, f"{len(rec)} cells in a row, more than the {ncol} columns of the header", start)
        except csv.Error as e:
            raise _error(path, f"malformed CSV: {e}", stream.skipped_lines + prev + 1) from None
        if "EOF inside string" in message:  # the last record is the one whose quote never closed
            raise _error(path, "malformed CSV: a quoted cell is not closed before the end of the file", start)


def _read_fraction(fh, size: int) -> float | None:
    """Bytes read from the file so far over its size (the parser reads a little ahead of the rows it hands out)."""
    try:
        return min(1.0, fh.tell() / size) if size else None
    except (OSError, ValueError):
        return None


def _csv_chunk(path: str, first_row: int, columns: list[str], cells: np.ndarray, lines: np.ndarray, fraction: float | None = None) -> Chunk:
    frame = pd.DataFrame(cells, columns=columns, dtype=object)
    return Chunk(path=path, first_row=first_row, frame=frame, lines=np.asarray(lines, dtype=np.int64), fraction=fraction)


# ------------------------------------------------------------------------------------ CSV fast path

_PLAIN_ENCODINGS = {"utf-8": "utf8", "utf-8-sig": "utf8", "cp1252": "cp1252"}  # Python's codec name: pyarrow's
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")  # bytes Python's cp1252 codec cannot decode


@dataclass(frozen=True)
class _Plain:
    """What the pre-scan of a plain CSV file learnt."""

    header: list[str]  # the header line's cells, as written
    rows: int  # data rows (every line after the header is one)
    size: int  # bytes
    block: int  # the general path's read size (_BLOCK_BYTES) at the scan
    ended: np.ndarray  # int64: ended[k] = lines whose end is within the first (k + 1) * block bytes
    longest: int  # bytes of the longest line (pyarrow's block must hold a whole line)

    def fraction(self, done: int, chunk_rows: int) -> float:
        """Chunk.fraction as the general path gives it: the bytes its parser has read (whole blocks), with its parts
        of chunk_rows records (the header is the first) one part ahead, times the rows handed out over those parsed."""
        if done >= self.rows:
            return 1.0
        parsed = min(done + chunk_rows - 1, self.rows)  # also the line index (header: 0) of the last record parsed
        read = min(self.size, (int(np.searchsorted(self.ended, parsed + 1)) + 1) * self.block)
        return min(1.0, read / self.size) * done / parsed


def _is_plain(path: str | os.PathLike, dialect: CsvDialect) -> bool:
    """Whether read_csv takes the fast path for this file (see _scan_plain)."""
    return _scan_plain(_as_path(path), dialect) is not None


def _scan_plain(path: str, dialect: CsvDialect) -> _Plain | None:
    """The header and layout of a *plain* CSV file, or None if the file is not plain.

    Plain: UTF-8 (with or without BOM) or Windows-1252 bytes that all decode, a ``;`` ``,`` or tab delimiter, no
    ``"``, no NUL, no lone CR (nor a CR ending the file), and every line (the header's too, the last one with or
    without a line end) has the header's number (> 0) of delimiters and some text (a line of only delimiters, or only
    a blank first cell, is not plain). Such a file has one record per line and nothing to unquote, pad or skip, so
    pyarrow's parser reads it exactly as the general path does. One pass over the bytes in blocks, every check
    vectorised (numpy, bytes.find), in bounded memory.
    """
    try:
        codec = codecs.lookup(dialect.encoding).name
    except LookupError:
        return None
    if codec not in _PLAIN_ENCODINGS or dialect.delimiter not in _DELIMITERS:
        return None
    cell_codec = "cp1252" if codec == "cp1252" else "utf-8"
    delim = ord(dialect.delimiter)
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except OSError:
        return None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        block = _BLOCK_BYTES
        buf = bytearray(2 * block)  # the unfinished last line of a block is moved to the front
        view = np.frombuffer(buf, dtype=np.uint8)
        scratch = np.empty(len(buf), dtype=bool), np.empty(len(buf), dtype=bool)
        held = offset = lines = longest = 0  # held: bytes carried over; offset: the file offset of buf[0]
        header: list[str] | None = None
        ncut = 0  # delimiters per line
        ended: list[np.ndarray] = []
        while True:
            if len(buf) - held < block + 1:  # a line longer than the buffer: a bigger one
                grown = bytearray(2 * len(buf))
                grown[:held] = buf[:held]
                buf, view = grown, np.frombuffer(grown, dtype=np.uint8)
                scratch = np.empty(len(buf), dtype=bool), np.empty(len(buf), dtype=bool)
            try:
                got = fh.readinto(memoryview(buf)[held : held + block])
            except OSError:
                return None
            n = held + got
            if got:
                end = buf.rfind(b"\n", 0, n) + 1
                if not end:
                    held = n
                    continue
            elif not n:
                break
            else:  # the last line, without a line end
                if buf[n - 1] == 13:
                    return None  # a CR ending the file is text to the general path, a line end to pyarrow's
                buf[n] = 10
                end = n = n + 1
            a = view[:end]
            if buf.find(b'"', 0, end) >= 0 or buf.find(b"\0", 0, end) >= 0:
                return None
            if a.max() >= 0x80:
                if codec == "cp1252":
                    if any(buf.find(b, 0, end) >= 0 for b in _CP1252_UNDEFINED):
                        return None
                elif not _valid_utf8(memoryview(buf)[:end]):
                    return None
            if header is None:
                first = buf.find(b"\n")
                text = buf[:first].decode("utf-8-sig" if cell_codec == "utf-8" else cell_codec)
                header = text.removesuffix("\r").split(dialect.delimiter)
                ncut = len(header) - 1
                if not ncut:
                    return None
            is_delim, is_nl = np.equal(a, delim, out=scratch[0][:end]), np.equal(a, 10, out=scratch[1][:end])
            nlines = int(np.count_nonzero(is_nl))
            seps = np.flatnonzero(np.logical_or(is_delim, is_nl, out=is_delim))
            if len(seps) != (ncut + 1) * nlines:
                return None
            seps = seps.reshape(nlines, ncut + 1)
            nl = seps[:, ncut]
            if not (a[nl] == 10).all():  # then each line holds exactly ncut delimiters
                return None
            cr = a[nl - 1] == 13
            if np.count_nonzero(np.equal(a, 13, out=scratch[1][:end])) != np.count_nonzero(cr):
                return None  # a CR not before a LF
            starts = np.concatenate(([0], nl[:-1] + 1))
            if _blank_line(buf, a, starts, seps, nl - cr, cell_codec):
                return None
            longest = max(longest, int((nl - starts).max()) + 1)
            marks = np.arange((offset // block + 1) * block, offset + end + 1, block)
            ended.append(lines + np.searchsorted(offset + nl + 1, marks, side="right"))
            lines += nlines
            if not got:
                break
            held = n - end
            buf[:held] = buf[end:n]
            offset += end
    if header is None:
        return None
    ended_at = np.concatenate(ended).astype(np.int64)
    return _Plain(header=header, rows=lines - 1, size=size, block=block, ended=ended_at, longest=longest)


def _valid_utf8(data: memoryview) -> bool:
    """Whether the bytes are valid UTF-8 (as strict as Python's codec), checked by Arrow without a copy."""
    import pyarrow as pa

    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _blank_line(buf: bytearray, a: np.ndarray, starts: np.ndarray, seps: np.ndarray, ends: np.ndarray, codec: str) -> bool:
    """Whether a line has no text: every cell but the first empty, the first empty or only whitespace."""
    k = seps.shape[1] - 1
    rest_empty = np.flatnonzero((seps[:, k - 1] - seps[:, 0] == k - 1) & (ends - seps[:, k - 1] == 1))
    if not len(rest_empty):
        return False
    first, after = starts[rest_empty], seps[rest_empty, 0]
    if (first == after).any():
        return True
    lead = a[first]
    unsure = (lead <= 0x20) | (lead >= 0x7F)  # a printable ASCII first byte is text; others are decoded
    return any(not buf[s:e].decode(codec).strip() for s, e in zip(first[unsure], after[unsure], strict=True))


def _read_plain(path: str, chunk_rows: int, dialect: CsvDialect, plain: _Plain) -> Iterator[Chunk]:
    """pyarrow's streaming CSV parser, single-threaded, every column text; a plain file's row i (0-based) is on
    line i + 2 and fills chunks exactly as the general path does."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = _header_names(path, plain.header)
    if not plain.rows:
        return
    names = [f"c{i}" for i in range(len(columns))]  # the header is read by the scan: pyarrow skips it
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                use_threads=False,
                block_size=max(_BLOCK_BYTES, 4 * plain.longest),  # a whole line (up to 3 UTF-8 bytes per cp1252 byte)
                skip_rows=1,
                column_names=names,
                encoding=_PLAIN_ENCODINGS[codecs.lookup(dialect.encoding).name],
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter, quote_char=False, double_quote=False, escape_char=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), null_values=[""], strings_can_be_null=True, check_utf8=False
            ),
        )
        with reader:
            first_row = 1
            pending: list[pa.RecordBatch] = []
            held = 0
            for batch in itertools.chain(reader, [None]):
                if batch is not None:
                    pending.append(batch)
                    held += batch.num_rows
                while held >= chunk_rows or (batch is None and held):
                    table = pa.Table.from_batches(pending, schema=reader.schema)
                    take = min(held, chunk_rows)
                    part = table.slice(0, take).rename_columns(columns)
                    lines = np.arange(first_row + 1, first_row + 1 + take, dtype=np.int64)
                    fraction = plain.fraction(first_row - 1 + take, chunk_rows)
                    yield Chunk(path=path, first_row=first_row, frame=None, lines=lines, fraction=fraction, table=part)
                    first_row += take
                    rest = table.slice(take)
                    pending, held = rest.to_batches(), rest.num_rows
    except (pa.ArrowException, OSError, UnicodeError) as e:  # the file changed since the scan, or cannot be read
        raise _error(path, f"cannot be read: {e}") from None


# ----------------------------------------------------------------------------------------- Parquet


def read_parquet(path: str | os.PathLike, *, chunk_rows: int = 200_000) -> Iterator[Chunk]:
    """Stream a Parquet file as chunks of text cells (see the module docstring for how values become text)."""
    import pyarrow.parquet as pq

    path = _as_path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    _check_file(path)
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ... for non-Parquet files
        raise _error(path, f"not a Parquet file ({e})") from None
    columns = _header_names(path, schema.names)
    for field, name in zip(schema, columns, strict=True):
        _converter(path, name, field.type)  # unsupported column types fail before the first chunk
    return _read_parquet(path, chunk_rows, columns)


def _read_parquet(path: str, chunk_rows: int, columns: list[str]) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001
        raise _error(path, f"not a Parquet file ({e})") from None
    with pf:
        first_row = 1
        pending: list = []
        held = 0
        batches = pf.iter_batches(batch_size=chunk_rows)
        while True:
            try:
                batch = next(batches, None)
            except Exception as e:  # noqa: BLE001 - a corrupt page, a truncated file
                raise _error(path, f"cannot read rows {first_row + held} and after ({e})", first_row + held) from None
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


def _parquet_chunk(path: str, first_row: int, columns: list[str], table) -> Chunk:
    data = [_converter(path, name, col.type)(col.combine_chunks()) for name, col in zip(columns, table.columns, strict=True)]
    n = table.num_rows
    return Chunk(
        path=path, first_row=first_row, frame=_frame(columns, data), lines=np.arange(first_row, first_row + n, dtype=np.int64)
    )


def _converter(path: str, name: str, typ):
    """A function from a pyarrow Array of type ``typ`` to an object ndarray of str/None."""
    import pyarrow as pa
    import pyarrow.types as t

    def pylist(fmt):
        return lambda arr: _object_column([None if v is None else fmt(v) for v in arr.to_pylist()])

    if t.is_dictionary(typ):
        inner = _converter(path, name, typ.value_type)
        return lambda arr: inner(arr.dictionary_decode())
    if t.is_string(typ) or t.is_large_string(typ) or (hasattr(t, "is_string_view") and t.is_string_view(typ)):
        return lambda arr: _text_column(arr.to_pylist())
    if t.is_null(typ):
        return lambda arr: np.full(len(arr), None, dtype=object)
    if t.is_integer(typ):
        return lambda arr: _object_column(arr.cast(pa.string()).to_pylist())
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
    raise _error(path, f"column {name!r} has type {typ}, which cannot be read as text cells")


def _iso_dates(arr) -> np.ndarray:
    import pyarrow as pa

    days = arr.cast(pa.date32()).cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out = np.full(len(arr), None, dtype=object)
    if valid.any():
        out[valid] = np.datetime_as_string(days[valid].astype("int64").astype("datetime64[D]"), unit="D").astype(object)
    return out


def _iso_timestamps(arr, typ) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------- XES

_XES_VALUES = frozenset({"string", "date", "int", "float", "boolean", "id"})


class _XesStop(Exception):
    pass


def _local(tag: str) -> str:
    return tag.rpartition(":")[2]


def _open_xes(path: str):
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller's with
        magic = fh.read(2)
        fh.seek(0)
    except OSError as e:
        raise _error(path, e.strerror or str(e)) from None
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb"), fh
    return fh, fh


def _xes_parser(start, end):
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    return parser


def _xes_parse(path: str, parser) -> Iterator[None]:
    """Feed the file to an expat parser; yields after each block so the caller can hand out finished rows."""
    stream, raw = _open_xes(path)
    with raw, stream:
        while True:
            try:
                data = stream.read(_BLOCK_BYTES)
            except (OSError, EOFError, zlib.error) as e:
                raise _error(path, f"cannot be read: {e}", parser.CurrentLineNumber) from None
            try:
                parser.Parse(data, not data)
            except expat.ExpatError as e:
                raise _error(path, f"malformed XML: {expat.ErrorString(e.code)} (column {e.offset + 1})", e.lineno) from None
            except _XesStop as e:
                raise _error(path, str(e), parser.CurrentLineNumber) from None
            yield
            if not data:
                return


def _xes_columns(path: str) -> list[str]:
    """First pass: every column in first-seen order (case columns first)."""
    stack: list[str] = []
    case_keys: dict[str, None] = {"case:concept:name": None}
    event_keys: dict[str, None] = {}

    def start(tag, attrs):
        local = _local(tag)
        if not stack and local != "log":
            raise _XesStop(f"not an XES log: the root element is <{tag}>, not <log>")
        parent = stack[-1] if stack else None
        stack.append(local)
        if local in _XES_VALUES and "key" in attrs:
            if parent == "event" and len(stack) >= 2:
                event_keys.setdefault(attrs["key"], None)
            elif parent == "trace":
                case_keys.setdefault("case:" + attrs["key"], None)

    def end(tag):
        stack.pop()

    for _ in _xes_parse(path, _xes_parser(start, end)):
        pass
    return list(case_keys) + [k for k in event_keys if k not in case_keys]


def read_xes(path: str | os.PathLike, *, chunk_rows: int = 200_000) -> Iterator[Chunk]:
    """Stream an IEEE 1849 XES event log (optionally gzip-compressed) as one row per event."""
    path = _as_path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    _check_file(path)
    return _read_xes(path, chunk_rows)


def _read_xes(path: str, chunk_rows: int) -> Iterator[Chunk]:
    columns = _xes_columns(path)
    stack: list[str] = []
    done: list[tuple[int, dict]] = []  # finished events: (line, cells)
    trace: dict | None = None  # case cells of the open trace
    trace_events: list[tuple[int, dict]] = []
    event: dict | None = None
    event_line = 0

    def start(tag, attrs):
        nonlocal trace, event, event_line
        local = _local(tag)
        parent = stack[-1] if stack else None
        stack.append(local)
        if local in _XES_VALUES:
            key = attrs.get("key")
            if key is None:
                return
            value = attrs.get("value") or None
            if parent == "event" and event is not None:
                event[key] = value
            elif parent == "trace" and trace is not None:
                trace["case:" + key] = value
        elif local == "event" and parent in ("trace", "log"):
            event = {}
            event_line = parser.CurrentLineNumber
        elif local == "trace" and parent == "log":
            trace = {}
            trace_events.clear()

    def end(tag):
        nonlocal trace, event
        local = stack.pop()
        if local == "event" and event is not None and stack and stack[-1] in ("trace", "log"):
            if stack[-1] == "trace":
                trace_events.append((event_line, event))
            else:
                done.append((event_line, event))
            event = None
        elif local == "trace" and trace is not None and stack and stack[-1] == "log":
            for line, cells in trace_events:
                done.append((line, {**trace, **cells}))
            trace_events.clear()
            trace = None

    parser = _xes_parser(start, end)
    first_row = 1
    for _ in _xes_parse(path, parser):
        while len(done) >= chunk_rows:
            part = done[:chunk_rows]
            del done[:chunk_rows]
            yield _xes_chunk(path, first_row, columns, part)
            first_row += len(part)
    if done:
        yield _xes_chunk(path, first_row, columns, done)


def _xes_chunk(path: str, first_row: int, columns: list[str], events: list[tuple[int, dict]]) -> Chunk:
    data = [_object_column([cells.get(c) for _, cells in events]) for c in columns]
    lines = np.fromiter((line for line, _ in events), dtype=np.int64, count=len(events))
    return Chunk(path=path, first_row=first_row, frame=_frame(columns, data), lines=lines)


# ----------------------------------------------------------------------------------------- dispatch


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
    path = _as_path(path)
    if kind is not None and kind not in ("csv", "parquet", "xes"):
        raise ValueError(f"kind must be 'csv', 'parquet' or 'xes', not {kind!r}")
    _check_file(path)
    kind = kind or _suffix_kind(path)
    if kind is None:
        supported = " ".join(SUFFIXES)
        raise _error(path, f"unknown kind of file; supported suffixes: {supported} (or pass kind=)")
    if kind == "csv":
        return read_csv(path, chunk_rows=chunk_rows, encoding=encoding, delimiter=delimiter)
    if kind == "parquet":
        return read_parquet(path, chunk_rows=chunk_rows)
    return read_xes(path, chunk_rows=chunk_rows)

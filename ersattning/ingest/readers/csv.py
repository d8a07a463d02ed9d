"""CSV: sniffing the encoding, delimiter and decimal mark, and the general reader (pandas' C parser).

See the package docstring for the choices and for how lines are counted.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pandas as pd

from ersattning.ingest.readers.chunk import BLOCK_BYTES, Chunk, as_path, check_file, header_names, read_error

SNIFF_BYTES = 64 * 1024
DELIMITERS = (";", ",", "\t")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


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
        raise read_error(path, f"unknown encoding {encoding!r}") from None
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
    for rank, d in enumerate(DELIMITERS):
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
    path = as_path(path)
    check_file(path)
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, not {delimiter!r}")
    try:
        with open(path, "rb") as fh:
            sample = fh.read(SNIFF_BYTES + 1)
    except OSError as e:
        raise read_error(path, e.strerror or str(e)) from None
    complete = len(sample) <= SNIFF_BYTES
    sample = sample[:SNIFF_BYTES]
    if sample.startswith(b"PK\x03\x04"):
        raise read_error(path, "is a ZIP archive (an Excel .xlsx workbook?), not a CSV text file; save it as CSV first")
    enc = encoding or _sniff_encoding(sample, complete)
    text = _decode_sample(path, sample, enc, complete)
    delim = delimiter or _sniff_delimiter(text, complete)
    return CsvDialect(encoding=enc, delimiter=delim, decimal=_sniff_decimal(text, delim, complete))


def _text_blocks(path: str, fh: BinaryIO, encoding: str) -> Iterator[str]:
    """The file's text in blocks of whole lines ('\n'-terminated but the last), with CRLF turned into LF.

    Undecodable bytes and NUL characters are a ReadError at their line.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    lines_done = 0  # complete lines handed out so far
    while True:
        try:
            data = fh.read(BLOCK_BYTES)
        except (OSError, EOFError, zlib.error) as e:
            raise read_error(path, f"cannot be read: {e}", lines_done + 1) from None
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
            raise read_error(
                path,
                f"bytes {bad!r} cannot be decoded as {encoding} ({e.reason}); the file may be in another encoding "
                "— name it with encoding: in the --mapping file (e.g. cp1252 for Excel on Swedish Windows, utf-8-sig)",
                line,
            ) from None
        text = pending + text
        cut = len(text) if final else text.rfind("\n") + 1
        pending = text[cut:]
        whole = text[:cut]
        if "\x00" in whole:
            line = lines_done + whole[: whole.index("\x00")].count("\n") + 1
            raise read_error(path, f"contains a NUL character: not a text file, or not in the encoding {encoding!r}", line)
        if whole:
            lines_done += whole.count("\n")
            yield whole.replace("\r\n", "\n") if "\r" in whole else whole
        if final:
            return


_LEADING_BLANK = re.compile(r"(?:[ \t]*\n)*")


class TextStream(io.TextIOBase):
    """Decoded, line-end-normalized text for pandas' C parser, minus blank lines before the header.

    Records whether a quote character has been handed out: until one has, no cell can hold a line break,
    so every record is exactly one line.
    """

    def __init__(self, path: str, fh: BinaryIO, encoding: str) -> None:
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
                leading = _LEADING_BLANK.match(block)
                blank = leading.end() if leading else 0  # the pattern matches every text (maybe empty)
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


def open_binary(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise read_error(path, e.strerror or str(e)) from None


def _newlines(cells: np.ndarray) -> np.ndarray:
    """The line breaks inside each row's cells (object array of str/None, one row per record)."""
    out = np.zeros(len(cells), dtype=np.int64)
    for j in range(cells.shape[1]):
        col = cells[:, j]
        present = col[col != None]  # noqa: E711 (elementwise)
        if "\n" in "".join(present):
            out += np.fromiter((v.count("\n") if v is not None else 0 for v in col), dtype=np.int64, count=len(col))
    return out


def read_general(path: str, chunk_rows: int, dialect: CsvDialect) -> Iterator[Chunk]:
    """pandas' C parser tokenizes (every cell as text, blank lines kept as records so that records and lines
    stay in step); each record's line is the previous record's line + 1 + the line breaks inside its cells."""
    with open_binary(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        stream = TextStream(path, fh, dialect.encoding)
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
            raise read_error(path, "empty file, no header row") from None
        except pd.errors.ParserError as e:
            _locate_csv_error(path, dialect, str(e))
            raise read_error(path, f"malformed CSV: {e}") from None  # pragma: no cover - located above
        if count and columns is not None:  # rows are held only after the header
            chunk_cells, chunk_lines, held, count = _take(held, count)
            yield _csv_chunk(path, first_row, columns, chunk_cells, chunk_lines, 1.0)


def _csv_columns(path: str, header: np.ndarray, line: int) -> list[str]:
    names = ["" if v is None else v for v in header]
    if any("\r" in n for n in names):
        raise read_error(path, "has line ends of a lone carriage return (classic Mac OS); convert it to CRLF or LF line ends", line)
    return header_names(path, names, line)


def _blank_rows(cells: np.ndarray) -> np.ndarray:
    """Rows without any text: a blank line, a line of only delimiters, a line of only whitespace."""
    present = (cells != None).sum(axis=1)  # noqa: E711 (elementwise)
    blank = present == 0
    lone = np.flatnonzero((present == 1) & (cells[:, 0] != None))  # noqa: E711
    for i in lone:
        if not cells[i, 0].strip():
            blank[i] = True
    return blank


def _take(held: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]], int]:
    cells = np.concatenate([c for c, _ in held]) if len(held) > 1 else held[0][0]
    lines = np.concatenate([s for _, s in held]) if len(held) > 1 else held[0][1]
    rest = [(cells[n:], lines[n:])] if len(cells) > n else []
    return cells[:n], lines[:n], rest, len(cells) - n


def _locate_csv_error(path: str, dialect: CsvDialect, message: str) -> None:
    """Read the file again record by record with the csv module to name the line of pandas' complaint."""
    with open_binary(path) as fh:
        stream = TextStream(path, fh, dialect.encoding)
        lines = itertools.chain.from_iterable(io.StringIO(b, newline="\n") for b in iter(lambda: stream.read(BLOCK_BYTES), ""))
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
                    raise read_error(path, f"{len(rec)} cells in a row, more than the {ncol} columns of the header", start)
        except csv.Error as e:
            raise read_error(path, f"malformed CSV: {e}", stream.skipped_lines + prev + 1) from None
        if "EOF inside string" in message:  # the last record is the one whose quote never closed
            raise read_error(path, "malformed CSV: a quoted cell is not closed before the end of the file", start)


def _read_fraction(fh: BinaryIO, size: int) -> float | None:
    """Bytes read from the file so far over its size (the parser reads a little ahead of the rows it hands out)."""
    try:
        return min(1.0, fh.tell() / size) if size else None
    except (OSError, ValueError):
        return None


def _csv_chunk(path: str, first_row: int, columns: list[str], cells: np.ndarray, lines: np.ndarray, fraction: float | None = None) -> Chunk:
    frame = pd.DataFrame(cells, columns=columns, dtype=object)
    return Chunk(path=path, first_row=first_row, frame=frame, lines=np.asarray(lines, dtype=np.int64), fraction=fraction)


# ------------------------------------------------------------------------------------ CSV fast path

"""The fast path for plain CSV: a vectorised pre-scan of the bytes, then pyarrow's streaming parser.

See the package docstring for what makes a file plain; its chunks equal the general path's.
"""

from __future__ import annotations

import codecs
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ersattning.ingest.readers.chunk import BLOCK_BYTES, Chunk, as_path, header_names, read_error
from ersattning.ingest.readers.csv import DELIMITERS, CsvDialect

_PLAIN_ENCODINGS = {"utf-8": "utf8", "utf-8-sig": "utf8", "cp1252": "cp1252"}  # Python's codec name: pyarrow's
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")  # bytes Python's cp1252 codec cannot decode


@dataclass(frozen=True)
class PlainLayout:
    """What the pre-scan of a plain CSV file learnt."""

    header: list[str]  # the header line's cells, as written
    rows: int  # data rows (every line after the header is one)
    size: int  # bytes
    block: int  # the general path's read size (BLOCK_BYTES) at the scan
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


def is_plain(path: str | os.PathLike, dialect: CsvDialect) -> bool:
    """Whether read_csv takes the fast path for this file (see scan_plain)."""
    return scan_plain(as_path(path), dialect) is not None


def scan_plain(path: str, dialect: CsvDialect) -> PlainLayout | None:
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
    if codec not in _PLAIN_ENCODINGS or dialect.delimiter not in DELIMITERS:
        return None
    cell_codec = "cp1252" if codec == "cp1252" else "utf-8"
    delim = ord(dialect.delimiter)
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except OSError:
        return None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        block = BLOCK_BYTES
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
            found = np.flatnonzero(np.logical_or(is_delim, is_nl, out=is_delim))
            if len(found) != (ncut + 1) * nlines:
                return None
            seps = found.reshape(nlines, ncut + 1)
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
    return PlainLayout(header=header, rows=lines - 1, size=size, block=block, ended=ended_at, longest=longest)


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


def read_plain(path: str, chunk_rows: int, dialect: CsvDialect, plain: PlainLayout) -> Iterator[Chunk]:
    """pyarrow's streaming CSV parser, single-threaded, every column text; a plain file's row i (0-based) is on
    line i + 2 and fills chunks exactly as the general path does."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = header_names(path, plain.header)
    if not plain.rows:
        return
    names = [f"c{i}" for i in range(len(columns))]  # the header is read by the scan: pyarrow skips it
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                use_threads=False,
                block_size=max(BLOCK_BYTES, 4 * plain.longest),  # a whole line (up to 3 UTF-8 bytes per cp1252 byte)
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
        raise read_error(path, f"cannot be read: {e}") from None

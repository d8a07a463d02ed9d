"""What a file says about itself that a mapping may leave out: its decimal mark, and how its staff cells
separate two names. The importers of every kind and ``ersattning inspect`` use the same rules (docs/mapping.md).

Decimal mark (``decimal:`` in a mapping, when it is not given): a CSV file's first 64 KiB are read; ``,``
when a cell there is a number written with a decimal comma (``78,0``), ``.`` when cells are written with a
decimal point and none with a comma, and with no such number in the sample ``,`` for a file separated by
``;`` or tab (a Swedish Excel export) and ``.`` for one separated by ``,``. Parquet and XES give numbers
as ``0.5``: ``.``. The mark found is named in the import's summary.

Staff cells (``staff_separator:``, default ``|``): a cell holding ``A, B``, ``A; B``, ``A/B``, ``A & B``,
``A + B`` or ``A och B`` may name two staff members or one (``Ström, Lena``). When the mapping does not
declare the separator and such a cell is found, the import stops and says which separators were seen and
which key to set, rather than storing one staff member and leaving the second one's time unpaid.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ersattning.ingest.cells import Coded, as_arrow_text, stripped
from ersattning.ingest.mapping import PROCESS_MINING_NAMES, Mapping
from ersattning.ingest.readers import SNIFF_BYTES, Chunk, ReadError, sniff_csv
from ersattning.ingest.report import ImportError_, ImportReport

DEFAULT_STAFF_SEPARATOR = "|"
STAFF_SEPARATORS: dict[str, re.Pattern[str]] = {
    ",": re.compile(r"\S\s*,\s*\S"),
    ";": re.compile(r"\S\s*;\s*\S"),
    "/": re.compile(r"\S\s*/\s*\S"),
    "&": re.compile(r"\S\s*&\s*\S"),
    "+": re.compile(r"\S\s*\+\s*\S"),
    " och ": re.compile(r"\S\s+och\s+\S"),
}
"""Candidate separators between two staff names (the key's value → how it shows in a cell)."""

_ANY_SEPARATOR = r"\S\s*[,;/&+]\s*\S|\S\s+och\s+\S"  # any of STAFF_SEPARATORS (RE2)
_COMMA_NUMBER = re.compile(r"[+-]?\d+,\d+")
_POINT_NUMBER = re.compile(r"[+-]?\d+\.\d+")
_CSV_SUFFIXES = (".csv", ".txt")


def decimal_in(cells: Iterable[str], delimiter: str | None) -> tuple[str, bool]:
    """The decimal mark of numbers written in ``cells``, and whether a number showed it (else the default by
    ``delimiter``: ``,`` for ``;`` or tab, ``.`` otherwise)."""
    comma = point = False
    for cell in cells:
        text = cell.strip()
        comma = comma or bool(_COMMA_NUMBER.fullmatch(text))
        point = point or bool(_POINT_NUMBER.fullmatch(text))
        if comma:
            break
    if comma:
        return ",", True
    if point:
        return ".", True
    return ("," if delimiter in (";", "\t") else "."), False


def file_decimal(path: str, mapping: Mapping) -> str:
    """The decimal mark of the numbers in ``path``: the mapping's ``decimal``, else the file's (module docstring)."""
    if mapping.decimal:
        return mapping.decimal
    return file_decimal_found(path, mapping.encoding, mapping.delimiter)[0]


def file_decimal_found(path: str, encoding: str | None, delimiter: str | None) -> tuple[str, bool]:
    """The file's decimal mark and whether a number in its sample showed it (module docstring)."""
    if not str(path).lower().endswith(_CSV_SUFFIXES):
        return ".", False
    try:
        stat = os.stat(path)
    except OSError:
        return ".", False
    return _csv_decimal(str(path), stat.st_mtime_ns, stat.st_size, encoding, delimiter)


@lru_cache(maxsize=64)
def _csv_decimal(path: str, _mtime_ns: int, _size: int, encoding: str | None, delimiter: str | None) -> tuple[str, bool]:
    """A CSV file's decimal mark from its first 64 KiB (cached per file version: every chunk asks)."""
    try:
        dialect = sniff_csv(path, encoding=encoding, delimiter=delimiter)
        with open(path, encoding=dialect.encoding, errors="replace", newline="") as f:
            text = f.read(SNIFF_BYTES)
    except (ReadError, OSError, LookupError):
        return ".", False
    if len(text) >= SNIFF_BYTES:  # the last line may be cut off
        text = text[: text.rfind("\n") + 1]
    try:
        records = list(csv.reader(io.StringIO(text), delimiter=dialect.delimiter))[1:]
    except csv.Error:
        records = []
    if dialect.delimiter == ",":  # numbers with a decimal comma would have to be quoted: the point is taken
        return decimal_in((c for rec in records for c in rec if "," not in c), ",")
    return decimal_in((c for rec in records for c in rec), dialect.delimiter)


def note_decimal(report: ImportReport, path: str, mapping: Mapping, decimal: str, cells: pa.Array | pd.Series) -> None:
    """Count, in the summary, the numbers read with a decimal mark the mapping did not declare."""
    if mapping.decimal:
        return
    arr = cells if isinstance(cells, pa.Array) else as_arrow_text(cells)
    pattern = (_COMMA_NUMBER if decimal == "," else _POINT_NUMBER).pattern
    n = int(pc.sum(pc.match_substring_regex(pc.utf8_trim_whitespace(arr), f"^{pattern}$").fill_null(False).cast(pa.int64())).as_py() or 0)
    if n:
        report.notes[f"numbers read with the decimal mark {decimal!r} found in {Path(path).name} (declare decimal: in the mapping to change it)"] += n


def separators_in(values: Iterable[object]) -> dict[str, int]:
    """Candidate staff separators (``STAFF_SEPARATORS``) and how many of ``values`` hold each, most first;
    values that hold the default ``|`` are split by it and not counted."""
    found: dict[str, int] = {}
    for value in values:
        if not isinstance(value, str) or DEFAULT_STAFF_SEPARATOR in value:
            continue
        for sep, pattern in STAFF_SEPARATORS.items():
            if pattern.search(value):
                found[sep] = found.get(sep, 0) + 1
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))


def staff_column(chunk: Chunk, mapping: Mapping, canonical: str) -> str | None:
    """The chunk's name of the column the mapping takes as ``canonical`` (None when it has none)."""
    names = chunk.table.column_names if chunk.table is not None else [str(c) for c in chunk.frame.columns]
    mapped = [source for source, target in mapping.columns.items() if target == canonical]
    process_mining = [k for k, v in PROCESS_MINING_NAMES.items() if v == canonical]
    return next((c for c in [*mapped, canonical, *process_mining] if c in names), None)


def require_staff_separator(chunk: Chunk, mapping: Mapping, canonical: str = "staff") -> None:
    """Stop when staff cells may hold two names and the mapping does not say how they are separated (module
    docstring); the message names the file, the first such line, the column, the candidates and the key to set."""
    if "staff_separator" in mapping.model_fields_set or not len(chunk):
        return
    column = staff_column(chunk, mapping, canonical)
    if column is None:
        return
    arr = chunk.arrow(column)
    cells = Coded.of(stripped(arr if arr is not None else as_arrow_text(chunk.frame[column])))
    if cells.dictionary is None or not pc.any(pc.match_substring_regex(cells.dictionary, _ANY_SEPARATOR)).as_py():
        return  # the usual column: no distinct value holds a candidate (one vectorised look)
    found = separators_in(cells.uniques.tolist())
    if not found:
        return
    hit = np.array([isinstance(v, str) and DEFAULT_STAFF_SEPARATOR not in v and any(STAFF_SEPARATORS[s].search(v) for s in found) for v in cells.uniques.tolist()])
    row = int(np.flatnonzero(np.append(hit, False)[cells.codes])[0])
    shown = " or ".join(repr(s) for s in found)
    best = next(iter(found))
    raise ImportError_(
        f"{chunk.path}, line {int(chunk.lines[row])}: column {column!r} ({canonical}) holds {sum(found.values())} distinct value(s) "
        f"with {shown} between names, and the mapping declares no staff_separator: only the first staff member would be "
        f"stored and the second one's time left unpaid. Declare it in the mapping: staff_separator: {best!r} (or "
        f"staff_separator: '|' if such a cell names one person); `ersattning inspect {Path(chunk.path).name}` proposes it. "
        f"The import stopped before rows {chunk.first_row:,}… of this file were written."
    )

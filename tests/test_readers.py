"""Reading the files people bring: golden exports read back cell by cell, sniffing, chunking, located errors."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning.ingest import readers
from ersattning.ingest.readers import (
    Chunk,
    CsvDialect,
    ReadError,
    csv_plain,
    read_csv,
    read_parquet,
    read_rows,
    read_xes,
    sniff_csv,
    xes,
)
from ersattning.ingest.readers import csv as csv_general
from ersattning.ingest.readers.csv import read_general

DATA = Path(__file__).parent / "data"


@contextlib.contextmanager
def _block_bytes(n: int) -> Iterator[None]:
    """The readers' block size set to ``n`` bytes (small blocks: every boundary case in a short file)."""
    with mock.patch.object(csv_general, "BLOCK_BYTES", n), mock.patch.object(csv_plain, "BLOCK_BYTES", n), mock.patch.object(xes, "BLOCK_BYTES", n):
        yield


def _all(chunks: Iterable[Chunk]) -> tuple[pd.DataFrame, list[int]]:
    """All chunks as one frame (fresh index) and the line of every row; checks the chunks fit together."""
    chunks = list(chunks)
    assert chunks, "no chunks"
    expected_first = 1
    for c in chunks:
        assert isinstance(c, Chunk)
        assert c.first_row == expected_first
        assert c.lines.dtype == np.int64 and len(c.lines) == len(c.frame) == len(c)
        assert list(c.frame.columns) == list(chunks[0].frame.columns)
        assert all(c.frame[col].dtype == object for col in c.frame.columns)
        for col in c.frame.columns:
            assert all(v is None or (isinstance(v, str) and v != "") for v in c.frame[col]), col
        expected_first += len(c)
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    return frame, [int(x) for c in chunks for x in c.lines]


def _rows(frame: pd.DataFrame) -> list[list[str | None]]:
    return [list(r) for r in frame.itertuples(index=False, name=None)]


# ----------------------------------------------------------------------------- golden files, read back exactly

EXCEL_COLUMNS = [
    "Brukare", "Utförare", "Besök", "Insats", "Planerad start", "Planerad tid (h)",
    "Utförd start", "Utförd tid (h)", "Personal", "Status", "Registrering",
]  # fmt: skip
EXCEL_ROWS = [
    ["B1001", "Hemtjänst Söder", "V-24-0001", "Omvårdnad", "2024-03-04 08:00", "0,5", "2024-03-04 08:05", "0,5", "Åsa K", "Utförd", "Mobil"],
    ["B1001", "Hemtjänst Söder", "V-24-0002", "Städ", "2024-03-05 13:00", "1,25", "2024-03-05 13:10", "1,25", "Åsa K|Örjan L", "Utförd", "Mobil"],
    ["B1002", "Hemtjänst Söder", "V-24-0003", "Inköp", "2024-03-06 10:00", "1", None, None, None, "Avbokad av brukare", None],
    ["B1003", "Omsorg Norr AB", "V-24-0004", "Måltid", "2024-03-06 11:30", "0,75", "2024-03-06 11:40", "0,5", "Örjan L", "Utförd", "Manuell"],
    ["B1003", "Omsorg Norr AB", "V-24-0005", "Tillsyn", "2024-03-07 22:00", "0,25", "2024-03-07 22:05", "0,25", "Göran Ä", "Utförd", "Manuell; efterregistrerad"],
]  # fmt: skip

BOM_COLUMNS = [
    "recipient", "provider", "visit_id", "category", "planned_start", "planned_end", "actual_start",
    "actual_end", "staff", "status", "cancelled_at", "registration", "recorded_at",
]  # fmt: skip
BOM_ROWS = [
    ["R-001", "P-SODER", "V-0001", "personal_care", "2024-03-04T08:00:00+01:00", "2024-03-04T08:30:00+01:00",
     "2024-03-04T08:03:00+01:00", "2024-03-04T08:31:00+01:00", "S-17", "performed", None, "mobile", "2024-03-04T08:31:05+01:00"],
    ["R-001", "P-SODER", "V-0002", "cleaning", "2024-03-05T13:00:00+01:00", "2024-03-05T14:15:00+01:00",
     "2024-03-05T13:10:00+01:00", "2024-03-05T14:20:00+01:00", "S-17|S-22", "performed", None, "nfc", "2024-03-05T14:20:12+01:00"],
    ["R-002", "P-NORR", "V-0003", "shopping", "2024-03-05T10:00:00+01:00", "2024-03-05T11:00:00+01:00",
     None, None, None, "cancelled", "2024-03-05T07:12:00+01:00", None, "2024-03-05T07:12:00+01:00"],
    ["R-003", "P-NORR", "V-0004", "personal_care", "2024-03-31T12:00:00+02:00", "2024-03-31T12:45:00+02:00",
     "2024-03-31T12:02:00+02:00", "2024-03-31T12:40:00+02:00", "Lind, Anna", "performed", None, "manual", "2024-04-02T09:15:00+02:00"],
]  # fmt: skip

MIXED_COLUMNS = ["Brukare", "Besök", "Planerad start", "Tid", "Personal"]
MIXED_ROWS = [
    ["B1001", "V-1", "2024-03-04 08:00", "0.5", "Åsa K"],
    ["B1001", "V-2", "2024-03-04 12:00", "0,75", "Åsa K"],
    ["B1002", "V-3", "2024-03-05 09:00", "0:30", "Örjan L"],
    ["B1002", "V-4", "2024-03-05 14:00", "1:15", "Örjan L"],
    ["B1003", "V-5", "2024-03-06 10:00", "1", "Göran Ä"],
]

PARQUET_COLUMNS = ["recipient", "visit_id", "planned_start", "minutes", "staff"]
PARQUET_ROWS = [
    ["R-001", "V-0001", "2024-03-04T08:00:00+01:00", "30", "S-17"],
    ["R-001", "V-0002", "2024-03-05T13:00:00+01:00", "75", "S-17|S-22"],
    ["R-002", "V-0003", "2024-03-05T10:00:00+01:00", "60", None],
    ["R-003", "V-0004", "2024-03-31T12:00:00+02:00", "45", "Lind, Anna"],
]

XES_COLUMNS = [
    "case:concept:name", "case:ersattning:provider", "case:ersattning:birth_year",
    "concept:name", "lifecycle:transition", "time:timestamp", "org:resource",
    "ersattning:category", "ersattning:minutes", "ersattning:cancelled", "ersattning:distance_km",
]  # fmt: skip
XES_ROWS = [
    [
        "B1001",
        "Hemtjänst Söder",
        "1938",
        "Omvårdnad",
        "start",
        "2024-03-04T08:03:00.000+01:00",
        "Åsa K",
        "personal_care",
        None,
        None,
        None,
    ],
    [
        "B1001",
        "Hemtjänst Söder",
        "1938",
        "Omvårdnad",
        "complete",
        "2024-03-04T08:31:00.000+01:00",
        "Åsa K",
        "personal_care",
        "28",
        None,
        None,
    ],
    [
        "B1001",
        "Hemtjänst Söder",
        "1938",
        "Städ",
        "complete",
        "2024-03-05T14:20:00.000+01:00",
        "Örjan L",
        "cleaning",
        "70",
        None,
        None,
    ],
    [
        "B1002",
        "Omsorg Norr AB",
        None,
        "Inköp",
        "ate_abort",
        "2024-03-05T07:12:00.000+01:00",
        None,
        "shopping",
        None,
        "true",
        None,
    ],
    [
        "B1002",
        "Omsorg Norr AB",
        None,
        "Måltid",
        "complete",
        "2024-03-31T12:40:00.000+02:00",
        "Lind, Anna",
        "personal_care",
        "38",
        None,
        "2.5",
    ],
]
XES_LINES = [27, 34, 42, 60, 67]  # the lines of the <event> tags in tests/data/log.xes

GOLDEN = [
    ("visits_excel_sv.csv", EXCEL_COLUMNS, EXCEL_ROWS, [2, 3, 4, 5, 6]),
    ("visits_utf8_bom.csv", BOM_COLUMNS, BOM_ROWS, [2, 3, 4, 5]),
    ("visits_mixed_units.csv", MIXED_COLUMNS, MIXED_ROWS, [2, 3, 4, 5, 6]),
    ("visits.parquet", PARQUET_COLUMNS, PARQUET_ROWS, [1, 2, 3, 4]),
    ("log.xes", XES_COLUMNS, XES_ROWS, XES_LINES),
]


@pytest.mark.parametrize(("name", "columns", "rows", "lines"), GOLDEN, ids=[g[0] for g in GOLDEN])
@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 1000])
def test_golden_file_read_back_exactly(name: str, columns: list[str], rows: list[list[str | None]], lines: list[int], chunk_rows: int) -> None:
    chunks = list(read_rows(DATA / name, chunk_rows=chunk_rows))
    assert [len(c) for c in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    assert 1 <= len(chunks[-1]) <= chunk_rows
    assert all(c.path == str(DATA / name) for c in chunks)
    frame, got_lines = _all(chunks)
    assert list(frame.columns) == columns
    assert _rows(frame) == rows
    assert got_lines == lines


def test_golden_files_are_what_they_claim() -> None:
    raw = (DATA / "visits_excel_sv.csv").read_bytes()
    assert b"Utf\xf6rare" in raw and b"\r\n" in raw  # Windows-1252 and Excel's line ends
    assert (DATA / "visits_utf8_bom.csv").read_bytes().startswith(b"\xef\xbb\xbfrecipient,")
    # written from timestamp[s, tz=Europe/Stockholm]; Parquet has no second unit, so it is stored (and read) as ms
    pf = pq.ParquetFile(DATA / "visits.parquet")
    assert pf.schema_arrow.field("planned_start").type == pa.timestamp("ms", tz="Europe/Stockholm")
    assert pf.metadata.num_row_groups == 2  # chunks are cut across row groups
    assert 'xmlns="http://www.xes-standard.org/"' in (DATA / "log.xes").read_text(encoding="utf-8")


def test_xes_line_numbers_are_the_event_tags() -> None:
    text = (DATA / "log.xes").read_text(encoding="utf-8").splitlines()
    assert [i + 1 for i, line in enumerate(text) if line.strip() == "<event>"] == XES_LINES


def test_chunk_first_line_and_csv_row_numbers() -> None:
    chunks = list(read_csv(DATA / "visits_excel_sv.csv", chunk_rows=2))
    assert [(c.first_row, c.first_line) for c in chunks] == [(1, 2), (3, 4), (5, 6)]
    assert [c.lines.tolist() for c in chunks] == [[2, 3], [4, 5], [6]]


# ----------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("name", "dialect"),
    [
        ("visits_excel_sv.csv", CsvDialect(encoding="cp1252", delimiter=";", decimal=",")),
        ("visits_utf8_bom.csv", CsvDialect(encoding="utf-8-sig", delimiter=",", decimal=".")),
        ("visits_mixed_units.csv", CsvDialect(encoding="utf-8-sig", delimiter=";", decimal=",")),
    ],
)
def test_sniff_golden(name: str, dialect: CsvDialect) -> None:
    assert sniff_csv(DATA / name) == dialect


def test_sniff_keeps_what_the_caller_forces() -> None:
    d = sniff_csv(DATA / "visits_excel_sv.csv", encoding="latin-1", delimiter=",")
    assert d == CsvDialect(encoding="latin-1", delimiter=",", decimal=".")


@pytest.mark.parametrize(
    ("text", "delimiter", "decimal"),
    [
        ("a\tb\tc\n1\t2,5\t3\n4\t5\t6\n", "\t", ","),
        ("a,b,c\n1,2.5,3\n", ",", "."),
        ('a;b;c\n"x,y";1.5;z\n', ";", "."),
        ('name,"note; more",n\n"Lind; Anna",x,1\n', ",", "."),
        ("a;b\n1;2\n", ";", "."),
        ("only\nvalue\n", ",", "."),
    ],
)
def test_sniff_delimiter_and_decimal(tmp_path: Path, text: str, delimiter: str, decimal: str) -> None:
    p = tmp_path / "x.csv"
    p.write_text(text, encoding="utf-8")
    d = sniff_csv(p)
    assert (d.delimiter, d.decimal) == (delimiter, decimal)


def test_sniff_decimal_comma_not_fooled_by_commas_in_a_semicolon_header(tmp_path: Path) -> None:
    # the header is skipped: a Swedish header "Tid, h" is not a decimal
    p = tmp_path / "x.csv"
    p.write_text("Brukare;Tid 1,5\nB1;2\n", encoding="utf-8")
    assert sniff_csv(p).decimal == "."


def test_sniff_utf8_character_cut_by_the_sample_end(tmp_path: Path) -> None:
    # 'å' (2 bytes in UTF-8) straddles byte 65536: still UTF-8, not cp1252
    body = "a;b\n" + "x;" + "y" * (readers.SNIFF_BYTES - 7) + "å\n" + "x;y\n"
    p = tmp_path / "x.csv"
    p.write_bytes(body.encode("utf-8"))
    assert sniff_csv(p).encoding == "utf-8-sig"


def test_utf16_excel_unicode_text(tmp_path: Path) -> None:
    p = tmp_path / "unicode.txt"
    p.write_bytes("Brukare\tTid (h)\r\nB1001\t0,5\r\nB1002\t1,25\r\n".encode("utf-16"))
    assert sniff_csv(p) == CsvDialect(encoding="utf-16", delimiter="\t", decimal=",")
    frame, lines = _all(read_rows(p))
    assert list(frame.columns) == ["Brukare", "Tid (h)"]
    assert _rows(frame) == [["B1001", "0,5"], ["B1002", "1,25"]]
    assert lines == [2, 3]


# ----------------------------------------------------------------------------- CSV details


def _write(tmp_path: Path, text: str, name: str = "x.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_embedded_newlines_and_blank_lines_keep_true_line_numbers(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        '\r\n'
        '  \r\n'
        'Brukare;Anteckning;Tid\r\n'
        'B1;"ringde på\r\nvar inte hemma";0,5\r\n'
        '\r\n'
        'B2;"""citat""; och semikolon";1\r\n'
        'B3;"tre\nrader\nhär";2\r\n'
        ';;\r\n'
        '   \r\n'
        '"";;""\r\n'
        'B4;sista;\r\n'
        'B5;"två\nrader";"x\ry"',
    )  # fmt: skip
    frame, lines = _all(read_csv(p, chunk_rows=2))
    assert list(frame.columns) == ["Brukare", "Anteckning", "Tid"]
    assert _rows(frame) == [
        ["B1", "ringde på\nvar inte hemma", "0,5"],  # CRLF inside a quoted cell is given as LF
        ["B2", '"citat"; och semikolon', "1"],
        ["B3", "tre\nrader\nhär", "2"],
        ["B4", "sista", None],
        ["B5", "två\nrader", "x\ry"],
    ]
    assert lines == [4, 7, 8, 14, 15]


def test_rows_without_text_are_not_rows(tmp_path: Path) -> None:
    frame, lines = _all(read_csv(_write(tmp_path, "a;b\n;\n1;\n \t\n;2\n\n")))
    assert _rows(frame) == [["1", None], [None, "2"]]
    assert lines == [3, 5]


def test_lone_carriage_returns_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"x\.csv, line 1: has line ends of a lone carriage return"):
        list(read_csv(_write(tmp_path, "a;b\r1;2\r3;4\r")))


def test_cells_keep_their_text_exactly(tmp_path: Path) -> None:
    p = _write(tmp_path, "\ufeff  Brukare ; Tid \nB1 ; 007\n  ;1e3\nNA;null\n")
    frame, _ = _all(read_csv(p))
    assert list(frame.columns) == ["Brukare", "Tid"]
    assert _rows(frame) == [["B1 ", " 007"], ["  ", "1e3"], ["NA", "null"]]


def test_short_row_is_padded_with_none(tmp_path: Path) -> None:
    frame, lines = _all(read_csv(_write(tmp_path, "a;b;c\n1;2;3\n4\n5;6\n")))
    assert _rows(frame) == [["1", "2", "3"], ["4", None, None], ["5", "6", None]]
    assert lines == [2, 3, 4]


def test_header_only_gives_no_chunks(tmp_path: Path) -> None:
    assert list(read_csv(_write(tmp_path, "a;b;c\r\n"))) == []


def test_ragged_row_names_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, 'a;b;c\n1;2;3\n"x\ny";2;3\n4;5;6;7\n8;9;10\n')
    with pytest.raises(ReadError, match=r"x\.csv, line 5: 4 cells in a row, more than the 3 columns") as e:
        list(read_csv(p, chunk_rows=1))
    assert (e.value.path, e.value.line) == (str(p), 5)


def test_unterminated_quote_names_the_line_where_the_record_starts(tmp_path: Path) -> None:
    p = _write(tmp_path, '\na;b\n1;2\n\n3;"open\n4;5\n6;7\n')
    with pytest.raises(ReadError, match=r"x\.csv, line 5: malformed CSV: a quoted cell is not closed") as e:
        list(read_csv(p, chunk_rows=1))
    assert e.value.line == 5


def test_text_after_a_closing_quote_is_read_leniently(tmp_path: Path) -> None:
    # as Excel, pandas and the csv module read it: the quotes are dropped, the rest is kept
    frame, _ = _all(read_csv(_write(tmp_path, 'a;b\n1;2\n"5" rör;2\n')))
    assert _rows(frame) == [["1", "2"], ["5 rör", "2"]]


def test_quote_inside_an_unquoted_cell_is_text(tmp_path: Path) -> None:
    frame, _ = _all(read_csv(_write(tmp_path, 'a;b\nrör 5";2\n')))
    assert _rows(frame) == [['rör 5"', "2"]]


def test_duplicate_header_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"x\.csv, line 1: duplicate column name 'Tid'"):
        list(read_csv(_write(tmp_path, "Tid;Brukare; Tid\n1;2;3\n")))


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"x\.csv: empty file"):
        list(read_csv(_write(tmp_path, "")))


def test_undecodable_bytes_name_file_and_line(tmp_path: Path) -> None:
    # clean UTF-8 for more than the 64 KiB sniffed, then one Windows-1252 'ö' on line 5002
    head = "Brukare;Personal\n" + "".join(f"B{i:05d};Anna Lind\n" for i in range(5000))
    assert len(head.encode()) > readers.SNIFF_BYTES
    p = tmp_path / "late.csv"
    p.write_bytes(head.encode("utf-8") + "B99999;Örjan L\n".encode("cp1252") + b"B1;x\n")
    assert sniff_csv(p).encoding == "utf-8-sig"
    with pytest.raises(ReadError, match=r"late\.csv, line 5002: bytes b'\\xd6' cannot be decoded as utf-8-sig.*encoding: in the --mapping file") as e:
        list(read_csv(p, chunk_rows=500))
    assert e.value.line == 5002
    frame, _ = _all(read_csv(p, encoding="cp1252"))
    assert frame["Personal"].iloc[-2] == "Örjan L"


def test_undecodable_bytes_line_across_small_blocks(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes("a;b\nå;1\nä;2\n".encode() + b"\xf6;3\n")
    with _block_bytes(3), pytest.raises(ReadError, match=r"line 4: ") as e:
        list(read_csv(p, encoding="utf-8"))
    assert e.value.line == 4


def test_forced_wrong_encoding_on_excel_export(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"visits_excel_sv\.csv, line 1: bytes b'\\xf6'"):
        list(read_csv(DATA / "visits_excel_sv.csv", encoding="utf-8"))


def test_nul_byte_is_an_error_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"x\.csv, line 3: contains a NUL character"):
        list(read_csv(_write(tmp_path, "a;b\n1;2\n3\x00;4\n5;6\n")))
    with pytest.raises(ReadError, match=r"x\.csv, line 3: contains a NUL character"):
        list(read_csv(_write(tmp_path, "a;b\n1;2\n3\x00;4")))


def test_excel_workbook_named_csv_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "besok.csv"
    p.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)))
    with pytest.raises(ReadError, match=r"besok\.csv: is a ZIP archive \(an Excel \.xlsx workbook\?\)"):
        read_rows(p)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom(tmp_path: Path, encoding: str) -> None:
    p = _write(tmp_path, "Brukare\tTid\r\nB1\t0,5\r\n", encoding=encoding)
    assert sniff_csv(p) == CsvDialect(encoding=encoding, delimiter="\t", decimal=",")
    assert _rows(_all(read_csv(p))[0]) == [["B1", "0,5"]]


# ----------------------------------------------------------------------------- chunking property

CELL = st.text(alphabet=st.sampled_from(list('ab ;,\t"\nåäöÖé0,5')), max_size=6)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]], str, str, list[bool], str]:
    ncol = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(CELL, min_size=ncol, max_size=ncol), max_size=12))
    delimiter = draw(st.sampled_from([";", ",", "\t"]))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    blanks = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    return [f"c{i}" for i in range(ncol)], rows, delimiter, terminator, blanks, encoding


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=csv_files(), chunk_rows=st.integers(1, 7), block=st.integers(1, 40))
def test_any_chunking_gives_the_same_rows_and_lines(tmp_path: Path, spec: Any, chunk_rows: int, block: int) -> None:
    header, rows, delimiter, terminator, blanks, encoding = spec
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=terminator)
    writer.writerow(header)
    expected_lines = []
    for row, blank in zip(rows, blanks, strict=True):
        if blank:
            out.write(terminator)
        expected_lines.append(out.getvalue().count("\n") + 1)
        writer.writerow(row)
    p = tmp_path / "gen.csv"
    p.write_bytes(out.getvalue().encode(encoding))
    expected = [[c if c != "" else None for c in row] for row in rows]
    # a row without text (every cell empty, or only a blank first cell) is not a row
    keep = [any(row[1:]) or bool(row[0].strip()) for row in rows]
    expected = [r for r, k in zip(expected, keep, strict=True) if k]
    expected_lines = [x for x, k in zip(expected_lines, keep, strict=True) if k]

    with _block_bytes(block):
        small = list(read_csv(p, chunk_rows=chunk_rows, delimiter=delimiter))
    big = list(read_csv(p, chunk_rows=1000, delimiter=delimiter))
    if not expected:
        assert small == [] and big == []
        return
    assert all(len(c) == chunk_rows for c in small[:-1])
    f_small, l_small = _all(small)
    f_big, l_big = _all(big)
    pd.testing.assert_frame_equal(f_small, f_big)
    assert l_small == l_big == expected_lines
    assert list(f_big.columns) == header
    assert _rows(f_big) == expected


# ----------------------------------------------------------------------------- CSV fast path (plain files)

# Text of plain cells: Swedish letters, digits, spaces (also at the edges), whitespace Python strips (NBSP, tab,
# vertical tab, information separators), punctuation; UTF-8 files also get characters Windows-1252 lacks.
CP1252_CHARS = list("abzABZåäöÅÄÖéü€‰0129 .-:/()'#\\\t\x0b\x1f\xa0")
UTF8_CHARS = CP1252_CHARS + list("łß中😀\u2028\u3000\ufeff")


def _text(chunk: Chunk, name: str) -> pa.Array:
    """The chunk's column as Arrow text (the test fails if it is not all text)."""
    arr = chunk.arrow(name)
    assert arr is not None
    return arr


def _outcome(chunks: Iterable[Chunk]) -> list[Chunk] | tuple[str, int | None]:
    try:
        return list(chunks)
    except ReadError as e:
        return (str(e), e.line)


def _assert_same_chunks(fast: list[Chunk], general: list[Chunk]) -> None:
    assert len(fast) == len(general)
    for f, g in zip(fast, general, strict=True):
        assert f.table is not None and g.table is None
        assert len(f) == len(g) and f._frame_value is None  # len() does not make the frame
        assert (f.path, f.first_row, f.lines.tolist()) == (g.path, g.first_row, g.lines.tolist())
        assert f.fraction == pytest.approx(g.fraction, rel=1e-12)
        assert f.table.column_names == list(g.frame.columns)
        assert all(t == pa.string() for t in f.table.schema.types)
        for name in f.table.column_names:
            assert _text(f, name).equals(g.arrow(name))
        pd.testing.assert_frame_equal(f.frame, g.frame)


@st.composite
def plain_csv_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]], str, str, str, bool]:
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    delimiter = draw(st.sampled_from([";", ",", "\t"]))
    chars = [c for c in (CP1252_CHARS if encoding == "cp1252" else UTF8_CHARS) if c != delimiter]
    text = st.text(alphabet=st.sampled_from(chars), max_size=6)
    ncol = draw(st.integers(2, 5))
    header = [f"{a}{i}{b}" for i, (a, b) in enumerate(draw(st.lists(st.tuples(text, text), min_size=ncol, max_size=ncol)))]
    rows = draw(st.lists(st.lists(text, min_size=ncol, max_size=ncol), max_size=15))
    for row in rows:
        if not any(row[1:]) and not row[0].strip():
            row[0] += "x"  # a line without text is not plain
    return header, rows, delimiter, encoding, draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=plain_csv_files(), chunk_rows=st.integers(1, 7), block=st.one_of(st.integers(1, 64), st.just(1 << 20)))
def test_plain_csv_fast_path_gives_what_the_general_path_gives(tmp_path: Path, spec: Any, chunk_rows: int, block: int) -> None:
    header, rows, delimiter, encoding, terminator, final_newline = spec
    text = terminator.join(delimiter.join(r) for r in [header, *rows]) + (terminator if final_newline else "")
    p = tmp_path / "plain.csv"
    p.write_bytes(text.encode(encoding))
    with _block_bytes(block):
        dialect = sniff_csv(p, encoding=encoding, delimiter=delimiter)
        assert csv_plain.is_plain(p, dialect)
        fast = _outcome(read_csv(p, chunk_rows=chunk_rows, encoding=encoding, delimiter=delimiter))
        general = _outcome(read_general(str(p), chunk_rows, dialect))
    if isinstance(general, tuple):  # two header names alike once stripped
        assert fast == general
        return
    assert not isinstance(fast, tuple)
    _assert_same_chunks(fast, general)
    if rows:
        frame, lines = _all(fast)
        assert _rows(frame) == [[c if c != "" else None for c in r] for r in rows]  # untrimmed, empty is None
        assert lines == list(range(2, len(rows) + 2))
        assert fast[-1].fraction == 1.0


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ('a;b\n1;"2"\n', "utf-8"),  # a quote
        ('a;b\n1;x"y\n', "utf-8"),  # a quote inside a cell is text, but only the general path says so
        ("a;b\n1;2\n\n3;4\n", "utf-8"),  # a blank line
        ("\na;b\n1;2\n", "utf-8"),  # a blank line before the header
        ("a;b\n1;2\n\n", "utf-8"),  # a blank line at the end
        ("a;b\n1;2\n;\n", "utf-8"),  # a line of only delimiters
        ("a;b\n1;2\n \t;\n", "utf-8"),  # only a blank first cell
        ("a;b\n1;2\n\xa0;\n", "cp1252"),  # only a blank first cell (NBSP)
        ("a;b;c\n1;2;3\n4\n5;6\n", "utf-8"),  # short rows
        ("a;b\n1;2;3\n", "utf-8"),  # a long row (an error)
        ("a;b\r1;2\r", "utf-8"),  # lone CRs (an error)
        ("a;b\n1;2\r", "utf-8"),  # a CR ending the file is text
        ("a;b\n1;x\ry\n", "utf-8"),  # a CR inside a cell
        ("a;b\n1;2\x00\n", "utf-8"),  # NUL (an error)
        ("a\n1\n2\n", "utf-8"),  # one column
        ("a;b\n1;2\n", "utf-16"),  # not UTF-8 nor Windows-1252
    ],
)
def test_files_that_are_not_plain_take_the_general_path(tmp_path: Path, text: str, encoding: str) -> None:
    p = _write(tmp_path, text, encoding=encoding)
    dialect = sniff_csv(p, delimiter=";" if ";" in text else None)
    assert not csv_plain.is_plain(p, dialect)
    got = _outcome(read_csv(p, chunk_rows=2, delimiter=dialect.delimiter))
    if isinstance(got, tuple):
        assert got == _outcome(read_general(str(p), 2, dialect))
    else:
        assert got and all(c.table is None for c in got)


def test_not_plain_files_keep_their_results(tmp_path: Path) -> None:
    frame, lines = _all(read_csv(_write(tmp_path, 'a;b;c\n1;2;3\n\n4\n;;\n5;x"y;\n')))
    assert _rows(frame) == [["1", "2", "3"], ["4", None, None], ["5", 'x"y', None]]
    assert lines == [2, 4, 6]


def test_bytes_that_do_not_decode_take_the_general_path_and_its_error(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes("a;b\nå;1\n".encode() + b"\xf6;3\n")
    with pytest.raises(ReadError, match=r"x\.csv, line 3: bytes b'\\xf6' cannot be decoded as utf-8"):
        list(read_csv(p, encoding="utf-8"))
    p.write_bytes("a;b\nå;1\n".encode("cp1252") + b"\x81;3\n")  # undefined in Windows-1252
    assert not csv_plain.is_plain(p, sniff_csv(p))
    with pytest.raises(ReadError, match=r"x\.csv, line 3: bytes b'\\x81' cannot be decoded as cp1252"):
        list(read_csv(p))


def test_excel_export_without_quotes_takes_the_fast_path(tmp_path: Path) -> None:
    header = "Brukare;Utförare;Besök;Insats;Planerad start;Planerad tid (h);Utförd start;Utförd tid (h);Personal;Status"
    row = "B00012;Hemtjänst Söder;V12;Omvårdnad;2024-01-01 07:00;0,5;2024-01-01 07:01;0,45;Personal 12;Utförd"
    p = _write(tmp_path, "\r\n".join([header, row, row.replace("0,45", ""), row]) + "\r\n", encoding="cp1252")
    assert sniff_csv(p) == CsvDialect(encoding="cp1252", delimiter=";", decimal=",")
    chunks = list(read_rows(p, chunk_rows=2))
    assert [c.table is not None for c in chunks] == [True, True]
    assert chunks[0].table is not None and chunks[0].table.column_names == header.split(";")
    assert _text(chunks[0], "Utförare").to_pylist() == ["Hemtjänst Söder"] * 2
    assert _text(chunks[0], "Utförd tid (h)").to_pylist() == ["0,45", None]
    assert [c.lines.tolist() for c in chunks] == [[2, 3], [4]]
    _assert_same_chunks(chunks, list(read_general(str(p), 2, sniff_csv(p))))


def test_chunk_from_a_table_makes_its_frame_once() -> None:
    table = pa.table({"a": pa.chunked_array([["x", None], ["z"]], type=pa.string()), "b": pa.array([" y", None, ""])})
    c = Chunk(path="p", first_row=1, frame=None, lines=np.array([2, 3, 4]), table=table)
    assert len(c) == 3 and c._frame_value is None
    assert _text(c, "a").to_pylist() == ["x", None, "z"] and isinstance(c.arrow("a"), pa.StringArray)
    frame = c.frame
    assert frame is c.frame
    assert _rows(frame) == [["x", " y"], [None, None], ["z", ""]]
    assert all(frame[col].dtype == object for col in frame.columns)


def test_chunk_from_a_frame_gives_arrow_columns_of_text_only() -> None:
    frame = pd.DataFrame({"a": ["x", None], "n": [1, 2], "e": [None, None]}, dtype=object)
    c = Chunk(path="p", first_row=1, frame=frame, lines=np.array([2, 3]))
    assert c.table is None and len(c) == 2
    assert _text(c, "a").to_pylist() == ["x", None]
    assert _text(c, "e").to_pylist() == [None, None] and _text(c, "e").type == pa.string()
    assert c.arrow("n") is None
    with pytest.raises(KeyError):
        c.arrow("missing")


# ----------------------------------------------------------------------------- Parquet


def test_parquet_values_become_text(tmp_path: Path) -> None:
    p = tmp_path / "types.parquet"
    table = pa.table({
        "i": pa.array([1, -20, None], pa.int32()),
        "f": pa.array([0.5, 1.0, 1e-5], pa.float64()),
        "f32": pa.array([0.1, None, 2.0], pa.float32()),
        "b": pa.array([True, False, None]),
        "d": pa.array([date(2024, 3, 4), None, date(1999, 12, 31)]),
        "ts": pa.array([datetime(2024, 3, 4, 8, 0), datetime(2024, 3, 4, 8, 0, 0, 250000), None], pa.timestamp("ms")),
        "utc": pa.array([datetime(2024, 3, 4, 7, 0), None, datetime(2024, 7, 1, 6, 30, 15)], pa.timestamp("us", tz="UTC")),
        "sthlm_ns": pa.array([datetime(2024, 3, 4, 7, 0), datetime(2024, 7, 1, 6, 30), None], pa.timestamp("ns", tz="Europe/Stockholm")),
        "ns": pa.array([1_709_535_600_123_456_789, None, 1_709_535_600_000_000_000], pa.timestamp("ns", tz="Europe/Stockholm")),
        "t": pa.array([time(8, 0), time(8, 30, 15), None], pa.time64("us")),
        "dec": pa.array([Decimal("12.50"), None, Decimal("-1.05")], pa.decimal128(6, 2)),
        "dict": pa.array(["Städ", "Inköp", "Städ"]).dictionary_encode(),
        "dur": pa.array([timedelta(minutes=30), None, timedelta(hours=1, minutes=15)], pa.duration("s")),
        "none": pa.array([None, None, None], pa.null()),
        " padded ": pa.array(["x", "", None]),
    })  # fmt: skip
    pq.write_table(table, p)
    frame, lines = _all(read_parquet(p, chunk_rows=2))
    assert lines == [1, 2, 3]
    assert list(frame.columns)[-1] == "padded"
    assert frame.to_dict("list") == {
        "i": ["1", "-20", None],
        "f": ["0.5", "1.0", "1e-05"],
        "f32": ["0.1", None, "2.0"],
        "b": ["true", "false", None],
        "d": ["2024-03-04", None, "1999-12-31"],
        "ts": ["2024-03-04T08:00:00", "2024-03-04T08:00:00.250", None],
        "utc": ["2024-03-04T07:00:00+00:00", None, "2024-07-01T06:30:15+00:00"],
        "sthlm_ns": ["2024-03-04T08:00:00+01:00", "2024-07-01T08:30:00+02:00", None],
        "ns": ["2024-03-04T08:00:00.123456789+01:00", None, "2024-03-04T08:00:00+01:00"],
        "t": ["08:00:00", "08:30:15", None],
        "dec": ["12.50", None, "-1.05"],
        "dict": ["Städ", "Inköp", "Städ"],
        "dur": ["P0DT0H30M0S", None, "P0DT1H15M0S"],
        "none": [None, None, None],
        "padded": ["x", None, None],
    }


def test_parquet_nested_column_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"staff": pa.array([["S-1", "S-2"]])}), p)
    with pytest.raises(ReadError, match=r"nested\.parquet: column 'staff' has type list<"):
        read_parquet(p)


def test_text_file_named_parquet_is_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path, "Brukare;Tid\nB1;0,5\n", name="visits.parquet")
    with pytest.raises(ReadError, match=r"visits\.parquet: not a Parquet file"):
        list(read_rows(p))


def test_truncated_parquet_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "cut.parquet"
    p.write_bytes((DATA / "visits.parquet").read_bytes()[:-100])
    with pytest.raises(ReadError, match=r"cut\.parquet: "):
        list(read_rows(p))


# ----------------------------------------------------------------------------- XES


def test_xes_gz_reads_the_same(tmp_path: Path) -> None:
    p = tmp_path / "log.xes.gz"
    p.write_bytes(gzip.compress((DATA / "log.xes").read_bytes()))
    frame, lines = _all(read_rows(p, chunk_rows=2))
    assert list(frame.columns) == XES_COLUMNS
    assert _rows(frame) == XES_ROWS
    assert lines == XES_LINES


def test_xes_prefixed_tags_trace_attributes_after_events_and_log_level_events(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xes:log xmlns:xes="http://www.xes-standard.org/">\n'
        '<xes:trace>\n'
        '<xes:event><xes:string key="concept:name" value="Omvårdnad"/>'
        '<xes:string key="note" value=""><xes:string key="meta" value="m"/></xes:string></xes:event>\n'
        '<xes:string key="concept:name" value="B1"/>\n'
        '</xes:trace>\n'
        '<xes:event><xes:id key="id" value="e-9"/></xes:event>\n'
        '</xes:log>\n',
        name="p.xes",
    )  # fmt: skip
    frame, lines = _all(read_xes(p))
    assert list(frame.columns) == ["case:concept:name", "concept:name", "note", "id"]
    assert _rows(frame) == [["B1", "Omvårdnad", None, None], [None, None, None, "e-9"]]
    assert lines == [4, 7]


def test_truncated_xes_names_file_and_line(tmp_path: Path) -> None:
    text = (DATA / "log.xes").read_text(encoding="utf-8").splitlines(keepends=True)
    p = _write(tmp_path, "".join(text[:45]), name="cut.xes")
    with pytest.raises(ReadError, match=r"cut\.xes, line \d+: malformed XML") as e:
        list(read_xes(p))
    assert e.value.line is not None and 44 <= e.value.line <= 46


def test_malformed_xes_names_the_line(tmp_path: Path) -> None:
    p = _write(tmp_path, '<log>\n<trace>\n<event>\n<string key="a" value="1">\n</event>\n</trace>\n</log>\n', name="bad.xes")
    with pytest.raises(ReadError, match=r"bad\.xes, line 5: malformed XML: mismatched tag"):
        list(read_xes(p))


def test_xml_that_is_not_xes(tmp_path: Path) -> None:
    p = _write(tmp_path, "<html>\n<body/>\n</html>\n", name="page.xes")
    with pytest.raises(ReadError, match=r"page\.xes, line 1: not an XES log"):
        list(read_rows(p))


# ----------------------------------------------------------------------------- dispatch


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "saknas.csv"
    with pytest.raises(ReadError) as e:
        read_rows(p)
    assert str(e.value) == f"{p}: no such file"


def test_unknown_suffix(tmp_path: Path) -> None:
    p = _write(tmp_path, "a;b\n1;2\n", name="export.xlsx")
    with pytest.raises(
        ReadError, match=r"export\.xlsx: unknown kind of file; supported suffixes: \.csv \.txt \.parquet \.pq \.xes \.xes\.gz"
    ):
        read_rows(p)


def test_kind_overrides_the_suffix(tmp_path: Path) -> None:
    p = _write(tmp_path, "a;b\n1;2\n", name="export.dat")
    frame, lines = _all(read_rows(p, kind="csv"))
    assert _rows(frame) == [["1", "2"]] and lines == [2]
    pq.write_table(pa.table({"x": [1]}), tmp_path / "data.bin")
    frame, _ = _all(read_rows(tmp_path / "data.bin", kind="parquet"))
    assert _rows(frame) == [["1"]]
    with pytest.raises(ValueError, match="kind must be"):
        read_rows(p, kind="xlsx")


def test_suffixes_are_case_insensitive(tmp_path: Path) -> None:
    p = tmp_path / "VISITS.CSV"
    p.write_bytes((DATA / "visits_mixed_units.csv").read_bytes())
    frame, _ = _all(read_rows(p))
    assert _rows(frame) == MIXED_ROWS

"""What an import did, and where its rejected rows went.

``ImportReport`` counts rows read, imported, unchanged, skipped and quarantined; the
summary printed by ``ersattning import`` is made from it. ``Quarantine`` writes rejected
rows to a CSV with their file, line and reason; ``--strict`` turns the first one into an
``ImportError_`` before anything is written.

No identity number leaves through here (docs/personal-data.md): the quarantine file is
created readable by its owner only (mode 0600, also when it existed), every identity number
in a quarantined row (its cells, its reason, its file name) is replaced by ``MASK``, and the
summary lines and error messages are masked the same way.
"""


from __future__ import annotations

import csv
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from ersattning.files import WriteError, describe_os_error, temporary_beside
from ersattning.ingest.cells import personnummer_in
from ersattning.ingest.readers import Chunk
from ersattning.privacy import mask_numbers, masked_cells

T = TypeVar("T")


class ImportError_(Exception):
    """A problem that stops an import (``--strict``, a missing required column); the store is unchanged.

    Its message never holds an identity number: one quoted from a cell is masked.
    """

    def __init__(self, message: str) -> None:
        super().__init__(mask_numbers(message))


class StepClock:
    """The importing thread's CPU time, added to ``report.step_seconds`` step by step (what ``bench_import.py`` prints):
    thread time, so the writer process and the projection feed's thread are not counted."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.mark = time.thread_time()

    def lap(self, step: str) -> None:
        now = time.thread_time()
        self.report.step_seconds[step] += now - self.mark
        self.mark = now

    def timed(self, items: Iterable[T], step: str) -> Iterator[T]:
        """``items``, the time spent making each counted under ``step``."""
        self.lap("other")
        for item in items:
            self.lap(step)
            yield item
            self.lap("other")


@dataclass
class ImportReport:
    rows_read: int = 0
    rows_imported: int = 0
    rows_unchanged: int = 0  # rows of visits the store held before the import began, with nothing new
    rows_repeated: int = 0  # rows of a visit an earlier row of the same import already gave, with nothing new
    skipped: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)  # rows read under an assumption the user chose or a documented rule
    events_written: int = 0
    columns_with_personnummer: set[str] = field(default_factory=set)
    seconds: float = 0.0
    staff_intervals_peak: int = 0  # most staff intervals held in memory at once for the overlap check
    journal: str = ""  # how an SQLite store was written: "delete" (the store to itself) or "wal" (beside readers)
    writer_seconds: float = 0.0  # the writer process's time inserting (overlaps the reading and checking)
    step_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # the importing thread's CPU seconds per step (benchmarks)

    def note_numbers(self, columns: Mapping[str, pa.Array | pd.Series]) -> None:
        """Name, in the summary, the columns that hold an identity number somewhere (kept or not: users should know)."""
        for name, values in columns.items():
            if personnummer_in(values).any():
                self.columns_with_personnummer.add(str(name))

    def summary(self) -> list[str]:
        """The lines ``ersattning import`` prints (identity numbers masked: a reason may quote a cell)."""
        return [mask_numbers(line) for line in self.summary_lines()]

    def summary_lines(self) -> list[str]:
        lines = [
            f"rows read {self.rows_read:,}, imported {self.rows_imported:,}, already in the store {self.rows_unchanged:,}, "
            + (f"repeated in the files {self.rows_repeated:,}, " if self.rows_repeated else "")
            + f"skipped {sum(self.skipped.values()):,}, quarantined {sum(self.quarantined.values()):,}; {self.events_written:,} events written"
        ]
        lines += [f"  skipped ({reason}): {n:,}" for reason, n in sorted(self.skipped.items())]
        lines += [f"  quarantined ({reason}): {n:,}" for reason, n in sorted(self.quarantined.items())]
        lines += [f"  {note}: {n:,}" for note, n in sorted(self.notes.items())]
        if self.columns_with_personnummer:
            lines.append(f"  personal identity numbers found in: {', '.join(sorted(self.columns_with_personnummer))} (never stored in clear)")
        return lines


def open_private(path: Path) -> tuple[TextIO, Path]:
    """A new owner-only (0600) temporary file beside ``path``, opened for writing, and its name: renamed over
    ``path`` when written (:meth:`Quarantine.close`), so a link planted at ``path`` is replaced, never followed."""
    tmp = temporary_beside(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "w", newline="", encoding="utf-8"), tmp


class Quarantine:
    """Rejected rows as CSV: file, line, reason, then the row's cells as read, identity numbers masked (owner-only file)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._file: TextIO | None = None
        self._tmp: Path | None = None
        self._columns: list[str] = []

    def rows(self, path: Path, columns: list[str]) -> tuple[Callable[[Iterable[Any]], object], list[str]]:
        """A function writing one quarantined row, and the columns rows are written in: the first call's, which
        the file's header (file, line, reason, the columns) names."""
        if self._file is None:
            try:
                self._file, self._tmp = open_private(path)
            except OSError as e:
                raise WriteError(describe_os_error(e, path)) from None
            self._columns = columns
            csv.writer(self._file).writerow(masked_cells(["file", "line", "reason", *columns]))
        write = csv.writer(self._file).writerow

        def writerow(row: Iterable[Any]) -> object:
            return write(masked_cells(list(row)))

        return writerow, self._columns

    def write(self, chunk: Chunk, rows: np.ndarray, reasons: np.ndarray, counted: np.ndarray | None = None) -> None:
        """The rows with their reasons (``counted``: the reasons without their details, for a quarantine that counts)."""
        if self.path is None or not len(rows):
            return
        names = chunk.table.column_names if chunk.table is not None else list(chunk.frame.columns)
        writerow, columns = self.rows(self.path, names)
        values: Iterable[Iterable[Any]]
        if chunk.table is not None:  # only the rejected rows become Python strings
            taken = chunk.table.take(pa.array(rows))
            cells = [taken.column(c).to_pylist() if c in names else [None] * len(rows) for c in columns]
            values = zip(*cells, strict=True)
        else:
            values = chunk.frame.iloc[rows].reindex(columns=columns).itertuples(index=False)
        for line, reason, row in zip(chunk.lines[rows], reasons, values, strict=True):
            writerow([chunk.path, int(line), reason, *("" if v is None else v for v in row)])

    def close(self) -> None:
        """The rows written so far become the quarantine file (also when the import failed: they are what it read)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if self._tmp is not None and self.path is not None:
                try:
                    os.replace(self._tmp, self.path)
                except OSError as e:
                    self._tmp.unlink(missing_ok=True)
                    raise WriteError(describe_os_error(e, self.path)) from None
                self._tmp = None


def reject_rows(chunk: Chunk, bad: np.ndarray, reason: np.ndarray, q: Quarantine, report: ImportReport, strict: bool, details: np.ndarray | None = None) -> None:
    """Rows that failed a check: quarantined and counted, or with ``strict`` the end of the import.

    ``details`` (None, or per row a text or None) go with the reason into the quarantine file and the error, e.g.
    which visit a row overlaps; the summary counts rows by reason alone."""
    told = reason if details is None else with_details(reason, details)
    if strict and bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ImportError_(f"{chunk.path}:{int(chunk.lines[first])}: {told[first]} (--strict: nothing was written)")  # masked
    q.write(chunk, np.flatnonzero(bad), told[bad], reason[bad])
    for why in reason[bad]:
        report.quarantined[why] += 1


def with_details(reason: np.ndarray, details: np.ndarray) -> np.ndarray:
    """Each reason with its row's detail in brackets, where it has one."""
    told = np.array(reason, dtype=object)
    for i in np.flatnonzero(pd.notna(details) & pd.notna(reason)):
        told[i] = f"{reason[i]} ({details[i]})"
    return told

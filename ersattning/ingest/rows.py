"""The steps the small-table imports share (decisions, stays, providers): each chunk's rows under their
canonical names, screened, checked row by row with a reason per rejected row, and appended chunk by chunk."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from ersattning.ingest.cells import personnummer_in
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.readers import Chunk, read_rows_or_header
from ersattning.ingest.report import ImportError_, ImportReport, Quarantine, reject_rows
from ersattning.projection import update
from ersattning.store import Store
from ersattning.store.bulk import EventBatch, append_batch


def start_frame(chunk: Chunk, mapping: Mapping, required: tuple[str, ...], report: ImportReport) -> pd.DataFrame:
    """The chunk's rows under their canonical names, with the mapping's defaults; every column is screened for
    identity numbers (named in the summary; the kinds reject rows where one would be kept)."""
    frame = mapping.fill_defaults(chunk.frame.rename(columns=mapping.columns).reset_index(drop=True))
    missing = [c for c in required if c not in frame and not (c == "provider" and mapping.default_provider)]
    if missing:
        raise ImportError_(f"{chunk.path}: no column for {', '.join(missing)} (map them with columns: in the mapping file)")
    report.rows_read += len(frame)
    report.note_numbers({str(c): frame.iloc[:, i] for i, c in enumerate(frame.columns)})
    return frame


def first_reasons(n: int) -> tuple[np.ndarray, Callable[[np.ndarray, str], None]]:
    """Each of ``n`` rows' first reason to be rejected (None: kept), and the function that gives the rows of a mask one."""
    reason = np.full(n, None, dtype=object)

    def reject(mask: np.ndarray, why: str) -> None:
        reason[mask & (reason == None)] = why  # noqa: E711  (element-wise)

    return reason, reject


def reject_numbers(cells: dict[str, pd.Series], kept: tuple[str, ...], reject: Callable[[np.ndarray, str], None]) -> None:
    """Rows with an identity number in a column that is kept in clear: rejected, never stored."""
    for c in kept:
        reject(personnummer_in(cells[c]), f"a personal identity number in {c}")


def finish_rows(chunk: Chunk, reason: np.ndarray, q: Quarantine, report: ImportReport, strict: bool) -> np.ndarray:
    bad = reason != None  # noqa: E711
    reject_rows(chunk, bad, reason, q, report, strict)
    return ~bad


def append_chunks(
    store: Store, paths: list[str], mapping: Mapping, options: ImportOptions, report: ImportReport, q: Quarantine, batch_of: Callable[[Chunk], EventBatch]
) -> ImportReport:
    """Read every file chunk by chunk; each chunk's events (``batch_of``) go in as one transaction (none in a dry run)."""
    started = time.perf_counter()
    try:
        for path in paths:
            for chunk in read_rows_or_header(path, chunk_rows=options.chunk_rows, encoding=mapping.encoding, delimiter=mapping.delimiter):
                batch = batch_of(chunk)
                if len(batch) and not options.dry_run:
                    report.events_written += append_batch(store, batch)
                    stored = options.stored
                    stored.rows, stored.events, stored.batches = report.rows_imported, report.events_written, stored.batches + 1
                if options.progress:
                    options.progress(report.rows_read, time.perf_counter() - started, None)
    finally:
        q.close()
    if report.events_written:
        update(store)  # the projection current again: these few events, read back (the cache was current at the start)
    report.seconds = time.perf_counter() - started
    return report

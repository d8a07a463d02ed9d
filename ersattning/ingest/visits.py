"""Importing visit logs: map, validate, pseudonymise and append, chunk by chunk.

Each chunk of rows is mapped to the canonical columns (``mapping.py``),
checked (vectorized), pseudonymised (recipients and staff become keyed hashes;
a personal identity number never reaches the store in clear) and appended as
events in one transaction by the store's bulk writer while the next chunk is
read and checked. Rows that fail a check go to the quarantine with their
file, line and reason; ``strict`` stops at the first one.

A new visit is one event: its plan, with its outcome when the row has one
(``Visit.PlannedAndPerformed`` / ``PlannedAndCancelled``, which carry the
outcome's own recorded time and fold exactly like ``Planned`` followed by
``Performed`` / ``Cancelled``). Imports are idempotent: a visit's aggregate id
is a keyed hash of its source key, so a row imported before adds nothing, a
newly registered outcome adds that event, and changed registered times become
a correction recorded later — an as-of replay before it still shows the old
times.

Without a ``visit_id`` column a visit's source key is its whole plan: recipient,
provider, team, category, planned start, planned length and staff, so two rows
that differ in any of them (a main visit and its second-staff row, two staff at
one client) are two visits; rows with the same plan are one visit, and a repeat
is counted as *repeated in the files*, never as *already in the store* (which
counts only visits stored before the import began). A local time in the
repeated autumn hour is read as its first occurrence, an end as its second when
the first would precede the start; such rows are counted (README, importing
visit logs). A staff member's performed visits are checked for overlaps
against this import's rows and against the visits the store already holds.
"""


from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ersattning.domain import MAX_VISIT_MINUTES, CancelledBy, CancelReason, Category, Registration, Visit
from ersattning.ingest.cells import (
    Coded,
    as_arrow_text,
    as_objects,
    canonical_coded,
    chunk_columns,
    is_cancelled,
    is_present,
    mapped_values,
    negative_minutes,
    outside_window,
    parse_local_times,
    parse_minutes,
    personnummer_in,
    renamed_columns,
    split_staff_coded,
    stripped,
    window_reason,
)
from ersattning.ingest.detect import file_decimal, note_decimal, require_staff_separator
from ersattning.ingest.ids import ImportIds
from ersattning.ingest.known import KnownVisits, actual_digest, category_codes, plan_digest
from ersattning.ingest.mapping import VISIT_REQUIRED, Mapping
from ersattning.ingest.options import DEFAULT_OPTIONS, ImportOptions
from ersattning.ingest.overlaps import StaffIntervals, StoredIntervals
from ersattning.ingest.providers import ProviderRegistry
from ersattning.ingest.readers import Chunk, read_rows_or_header
from ersattning.ingest.report import ImportError_, ImportReport, Quarantine, StepClock, reject_rows
from ersattning.ingest.strict import Paths, checked_first
from ersattning.privacy import Pseudonymiser, find_personnummer
from ersattning.privacy.visit_ids import visit_ids
from ersattning.projection.feed import ImportFeed
from ersattning.projection.known_visits import visit_index
from ersattning.store import Store
from ersattning.store.bulk import Arena, EventBatch, encoder_for

STATUSES = ("performed", "cancelled_by_recipient", "cancelled_by_provider", "missed", "planned")

# The fields of each visit event, as the column builders below make them (checked against the event classes when
# this module is imported, and each batch's columns against these, so the two cannot drift apart).
_PLAN_FIELDS = ("timestamp", "recipient_id", "provider", "team", "category", "planned_start", "planned_minutes", "staff_planned")
_PERFORMED_FIELDS = ("actual_start", "actual_end", "staff", "registration")
_CANCELLED_FIELDS = ("by", "reason", "cancelled_at")
EVENT_FIELDS: dict[type, frozenset[str]] = {
    Visit.Planned: frozenset(_PLAN_FIELDS),
    Visit.PlannedAndPerformed: frozenset((*_PLAN_FIELDS, *_PERFORMED_FIELDS, "performed_recorded_at")),
    Visit.PlannedAndCancelled: frozenset((*_PLAN_FIELDS, *_CANCELLED_FIELDS, "cancelled_recorded_at")),
    Visit.Performed: frozenset(("timestamp", *_PERFORMED_FIELDS)),
    Visit.Cancelled: frozenset(("timestamp", *_CANCELLED_FIELDS)),
    Visit.Corrected: frozenset(("timestamp", "actual_start", "actual_end", "reason")),
}
_NOT_COLUMNS = frozenset(("originator_id", "originator_version", "originator_topic"))  # set by the encoder and the batch


def _check_event_fields() -> None:
    """Fail on import, not in some later import whose rows happen to need the event, when a visit event's fields
    and the columns built here differ (the bulk encoder checks the columns too, but only of events it encodes)."""
    for event_class, names in EVENT_FIELDS.items():
        fields = {f.name for f in dataclasses.fields(event_class)} - _NOT_COLUMNS
        if fields != names:
            raise TypeError(
                f"{event_class.__qualname__} has fields {sorted(fields)}, the visit import builds {sorted(names)}: update EVENT_FIELDS and the column builders"
            )


_check_event_fields()


def import_visits(store: Store, paths: Paths, mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions = DEFAULT_OPTIONS) -> ImportReport:
    """Import visit rows from the files; see the module docstring.

    ``options.progress`` is called after each chunk with the fraction of the
    files' bytes read so far (for an estimate of the time left).
    ``options.overlap_slack``: how far back in time rows may come after later
    ones and still be checked for staff overlaps against memory rather than
    the spill (see :class:`StaffIntervals`).
    """
    return checked_first(_import_files, store, paths, mapping, pseudonymiser, options)


def _import_files(store: Store, paths: list[str], mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions) -> ImportReport:
    sizes = [_size(p) for p in paths]
    total = sum(sizes)

    def chunks() -> Iterator[tuple[Chunk, float | None]]:
        for i, path in enumerate(paths):
            for chunk in read_rows_or_header(path, chunk_rows=options.chunk_rows, encoding=mapping.encoding, delimiter=mapping.delimiter):
                yield chunk, ((sum(sizes[:i]) + sizes[i] * chunk.fraction) / total if total and chunk.fraction is not None else None)

    q = Quarantine(options.quarantine)
    try:
        return _import_chunks(store, chunks(), mapping, pseudonymiser, q, options)
    finally:
        q.close()


def import_visit_chunks(
    store: Store,
    chunks: Iterable[Chunk],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    quarantine: Quarantine,
    options: ImportOptions = DEFAULT_OPTIONS,
) -> ImportReport:
    """Import chunks of visit rows that another reader made (the event-log import pairs events into them).

    The same checks, pseudonyms, ids and transactions as :func:`import_visits`;
    the caller owns the quarantine (it may write the rows' sources instead) and
    reports progress (``options.quarantine`` and ``options.progress`` are not used).
    """
    return _import_chunks(store, ((chunk, None) for chunk in chunks), mapping, pseudonymiser, quarantine, dataclasses.replace(options, progress=None))


def _import_chunks(
    store: Store,
    chunks: Iterable[tuple[Chunk, float | None]],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    q: Quarantine,
    options: ImportOptions,
) -> ImportReport:
    """The chunk loop: check and encode a chunk while the previous one is appended."""
    started = time.perf_counter()
    report = ImportReport()
    index = visit_index(store, save=not options.dry_run)
    known = KnownVisits.from_index(index)
    recorded_now = np.datetime64((options.now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "s")
    staff_seen = StaffIntervals(slack=options.overlap_slack)
    stored = StoredIntervals.from_index(index, staff_seen)
    del index
    if mapping.performed_as_planned:
        report.notes[AS_PLANNED] += 0  # named in the summary even when no row needed it
    ids = ImportIds(pseudonymiser)
    providers = ProviderRegistry.from_store(store) if "ownership" in mapping.columns.values() or "ownership" in mapping.defaults else None
    writer = store.bulk_writer()
    feed = ImportFeed(store)  # the committed batches go into the projection cache beside the import
    arena = Arena()
    clock = StepClock(report)
    rows_at_submit: list[int] = []  # per submitted batch, for options.stored
    fractions: list[float | None] = []
    try:
        for i, (chunk, fraction) in enumerate(clock.timed(chunks, "read")):
            # the first and the last chunk in pieces: the writer starts after a quarter of the first
            # rather than all of it, and the reading ends a quarter of a chunk before the writing does
            last = fraction is not None and fraction >= 0.999
            if not len(chunk):  # a file without rows: its header must still have the required columns
                _require_columns(chunk.path, list(chunk_columns(chunk)), mapping)
                continue
            require_staff_separator(chunk, mapping)  # before any piece of the chunk is written (detect.py)
            for piece in _pieces(chunk, 4) if (i == 0 or last) and not options.dry_run else (chunk,):
                arena.reset()  # the previous batch was handed on by submit(): its memory is free again
                batch = _import_chunk(piece, mapping, pseudonymiser, ids, known, report, q, options.strict, recorded_now, staff_seen, stored, arena, providers, clock)
                if len(batch) and not options.dry_run:
                    feed.submitted(batch)
                    clock.lap("feed")
                    writer.submit(batch)
                    rows_at_submit.append(report.rows_imported)
                    fractions.append(fraction)
                    options.stored.committed(rows_at_submit, fractions, len(writer.first_ids), writer.events)
                    clock.lap("submit")
                    feed.committed(writer.first_ids)
                    clock.lap("feed")
            if options.progress:
                options.progress(report.rows_read, time.perf_counter() - started, fraction)
        writer.wait()
        feed.committed(writer.first_ids)
        if not options.dry_run:
            store.checkpoint()
    except BaseException:
        feed.close()  # nothing of a failed import goes into the cache
        raise
    finally:
        writer.close()
        options.stored.committed(rows_at_submit, fractions, len(writer.first_ids), writer.events)
        report.events_written = writer.events
        report.journal = writer.journal
        report.writer_seconds = writer.busy_seconds
        staff_seen.close()
    clock.lap("other")
    feed.finish()  # after the writer has stopped: the store is this process's again
    clock.lap("feed")
    report.seconds = time.perf_counter() - started
    report.staff_intervals_peak = staff_seen.peak
    return report


_PIECE_ROWS = 25_000  # a chunk is cut in pieces only when they are at least this big


def _pieces(chunk: Chunk, parts: int) -> list[Chunk]:
    """A reader's chunk as ``parts`` consecutive chunks (each its own transaction), when it is big."""
    n = len(chunk)
    if type(chunk) is not Chunk or n < parts * _PIECE_ROWS:
        return [chunk]
    bounds = np.linspace(0, n, parts + 1).astype(int).tolist()
    return [
        Chunk(
            path=chunk.path,
            first_row=chunk.first_row + a,
            frame=None if chunk.table is not None else chunk.frame.iloc[a:b].reset_index(drop=True),
            lines=chunk.lines[a:b],
            fraction=chunk.fraction,
            table=chunk.table.slice(a, b - a) if chunk.table is not None else None,
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class _Checks:
    """The first failing check of each row: its reason, and which rows passed every check so far."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.passed = np.ones(n, dtype=bool)

    def reject(self, mask: np.ndarray, why: str) -> None:
        new = mask & self.passed
        self.reason[new] = why
        self.passed[new] = False


_CELL_COLUMNS = ("recipient", "provider", "category", "team", "staff", "status", "registration")


class _Cells(dict[str, pd.Series]):
    """The coded cells as object Series (``str`` or None), each made when first asked for (the rarer paths:
    source keys without a visit id, providers registered from visits)."""

    def __init__(self, coded: dict[str, Coded]) -> None:
        super().__init__()
        self.coded = coded

    def __missing__(self, column: str) -> pd.Series:
        self[column] = series = self.coded[column].series()
        return series


@dataclass(frozen=True)
class _Rows:
    """A chunk's rows mapped to canonical values and checked: one entry per row, rejected rows too."""

    coded: dict[str, Coded]  # recipient, provider, category, team, staff, status, registration (canonical text or empty)
    cells: _Cells  # the same as object Series, made when asked for
    visit_key: pa.Array  # the source's visit id, null where the file has none
    times: dict[str, np.ndarray]  # UTC datetime64[s] (NaT where empty): planned_start, planned_end, actual_start, ...
    status: np.ndarray  # one of STATUSES (performed or planned when the file does not say)
    outcome: np.ndarray  # int8 per row: 0 planned (or missed), 1 performed, 2 cancelled (the fold's status codes)
    performed: np.ndarray  # status == "performed"
    planned_minutes: np.ndarray  # float64, from the plan, else the registered times
    repeated_hour: np.ndarray  # a local time in the repeated autumn hour (read by the rule in the module docstring)
    as_planned: np.ndarray  # performed at the planned times (the mapping's performed_as_planned)


@dataclass(frozen=True)
class _Keys:
    """The rows' pseudonymised ids, and where the store holds each row's visit."""

    recipient: pd.Categorical  # the recipient aggregate's id (hex)
    staff1: Coded  # staff pseudonyms (empty for none)
    staff2: Coded
    visit: np.ndarray  # the visit aggregate's id (hex S32), from the source key
    hi: np.ndarray  # uint64 halves of the id
    lo: np.ndarray
    pos: np.ndarray  # int64: the visit's entry in the known index, -1 for a visit new to the store


@dataclass(frozen=True)
class _Intervals:
    """Performed rows' staff intervals (a row once per staff member) and which clash with one seen before."""

    rows: np.ndarray
    staff: np.ndarray
    start: np.ndarray  # int64 seconds
    end: np.ndarray
    clash: np.ndarray
    labels: np.ndarray  # where each interval's row is (StaffIntervals.labels)
    other: np.ndarray  # object: for a clash, the other visit (its line, or its id in the store), else None


def _import_chunk(
    chunk: Chunk,
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    ids: ImportIds,
    known: KnownVisits,
    report: ImportReport,
    q: Quarantine,
    strict: bool,
    recorded_now: np.datetime64,
    staff_seen: StaffIntervals,
    stored: StoredIntervals,
    arena: Arena | None = None,
    providers: ProviderRegistry | None = None,
    clock: StepClock | None = None,
) -> EventBatch:
    """One chunk: map and check its rows, pseudonymise them, quarantine the bad ones, and encode the good ones' events
    (and, with ``ownership`` mapped, the providers they register: see ``providers.py``)."""
    clock = clock or StepClock(report)
    n = len(chunk)
    report.rows_read += n
    clock.lap("other")
    source, text, coded = _text_columns(chunk, mapping, report)
    clock.lap("text_columns")
    checks = _Checks(n)
    skipped = _skipped(chunk, mapping, source, text, report)
    rows = _checked_rows(chunk, mapping, text, checks, coded, report)
    clock.lap("checked_rows")
    keys = _pseudonymised(rows, mapping, ids, pseudonymiser, known, checks)
    clock.lap("pseudonymised")
    intervals = _staff_intervals(chunk, rows, keys, staff_seen, stored, known, checks.passed & ~skipped & rows.performed)
    overlap = np.zeros(n, dtype=bool)
    overlap[intervals.rows[intervals.clash]] = True
    checks.reject(overlap, OVERLAP)
    details = np.full(n, None, dtype=object)  # the quarantine names the other visit (summed by reason)
    details[intervals.rows[intervals.clash]] = intervals.other[intervals.clash]
    details[checks.reason != OVERLAP] = None
    plan = _check_against_store(rows, keys, known, checks)
    if providers is not None:
        ownership = as_objects(text.get("ownership", pa.nulls(n, pa.string())))
        ownership = mapped_values(ownership, mapping.values["ownership"]) if "ownership" in mapping.values else ownership
        why = providers.from_visits(ownership, rows.cells["provider"], rows.cells["team"], checks.passed & ~skipped)
        for text in pd.unique(why[pd.notna(why)]):
            checks.reject(why == text, str(text))

    bad = ~checks.passed & ~skipped
    reject_rows(chunk, bad, checks.reason, q, report, strict, details)
    good = ~bad & ~skipped
    _count_notes(rows, good, report)
    keep = good[intervals.rows] & ~intervals.clash
    staff_seen.add(intervals.staff[keep], intervals.start[keep], intervals.end[keep], intervals.labels[keep])
    clock.lap("overlaps_and_store_checks")
    batch = _events(rows, keys, plan, good, known, report, recorded_now, arena, clock)
    clock.lap("events")
    if providers is not None:
        providers.take(batch)
    return batch


OVERLAP = "overlaps another visit of the same staff member"
AS_PLANNED = "performed as planned (the mapping's performed_as_planned: rows without a status or registered times)"
REPEATED_HOUR = "times in the repeated autumn hour (read as the first occurrence; an end as the second when the first precedes the start)"


def _count_notes(rows: _Rows, good: np.ndarray, report: ImportReport) -> None:
    """Rows read under an assumption the mapping chose or a documented rule, counted for the summary."""
    for note, mask in ((AS_PLANNED, rows.as_planned), (REPEATED_HOUR, rows.repeated_hour)):
        n = int((mask & good).sum())
        if n:
            report.notes[note] += n


def _require_columns(path: str, names: list[str], mapping: Mapping) -> None:
    """A file must have (or the mapping give) every required column, also when it has no rows."""
    cols = set(renamed_columns({name: pa.nulls(0, pa.string()) for name in names}, mapping, 0))
    missing_columns = [c for c in VISIT_REQUIRED if c not in cols and not (c == "provider" and mapping.default_provider)]
    if missing_columns:
        found = ", ".join(names) if names else "none"
        raise ImportError_(f"{path}: no column for {', '.join(missing_columns)} (columns found: {found}; map them with columns: in the --mapping file)")


def _text_columns(chunk: Chunk, mapping: Mapping, report: ImportReport) -> tuple[dict[str, pa.Array], dict[str, pa.Array], dict[str, Coded]]:
    """The chunk's columns as Arrow text: as in the file, and under their canonical names, stripped, with defaults;
    and the cell columns (recipient, provider, ...) coded (:class:`Coded`).

    The columns holding an identity number are named in the report (a cell column's distinct values looked at
    once; stripping a cell cannot make or break a number, so the stripped text is looked at).
    """
    source = chunk_columns(chunk)
    _require_columns(chunk.path, list(source), mapping)
    text = {c: stripped(arr) for c, arr in renamed_columns(source, mapping, len(chunk)).items()}
    coded = {c: Coded.of(text[c]) for c in _CELL_COLUMNS if c in text}
    for column, arr in text.items():
        if coded[column].has_personnummer() if column in coded else personnummer_in(arr).any():
            report.columns_with_personnummer.add(str(column))
    return source, text, coded


def _skipped(chunk: Chunk, mapping: Mapping, source: dict[str, pa.Array], text: dict[str, pa.Array], report: ImportReport) -> np.ndarray:
    """Rows that are not visits (the mapping's skip rules), counted by reason."""
    skipped = np.zeros(len(chunk), dtype=bool)
    for rule in mapping.skip:
        name = mapping.columns.get(rule.column, rule.column)
        col = text.get(name) if name in text else (stripped(source[rule.column]) if rule.column in source else None)
        if col is None:
            raise ImportError_(f"{chunk.path}: skip rule names column {rule.column!r}, which the file does not have")
        hit = pc.is_in(col, pa.array(rule.one_of, pa.string())) if rule.one_of else pc.equal(col, rule.equals)
        hit = hit.fill_null(False).to_numpy(zero_copy_only=False) & ~skipped
        report.skipped[rule.reason] += int(hit.sum())
        skipped |= hit
    return skipped


def _checked_rows(chunk: Chunk, mapping: Mapping, text: dict[str, pa.Array], checks: _Checks, coded: dict[str, Coded] | None = None, report: ImportReport | None = None) -> _Rows:
    """Map the cells to canonical values (the mapping's ``values:``), read times and durations, and check each row.

    The text cells are coded (:class:`Coded`): each distinct value is mapped and checked once, not each cell.
    """
    n = len(chunk)
    empty = pa.nulls(n, pa.string())
    made = coded or {}  # coded by _text_columns
    coded = {c: made[c] if c in made else Coded.of(text.get(c, empty)) for c in _CELL_COLUMNS}
    if mapping.default_provider:
        coded["provider"] = coded["provider"].filled(mapping.default_provider)
    visit_key = text.get("visit_id", empty)
    for column, table in mapping.values.items():
        if column == "visit_id":
            visit_key = as_arrow_text(mapped_values(as_objects(visit_key), table))
        elif column in coded:
            coded[column] = coded[column].mapped(table)
    for c in VISIT_REQUIRED:
        if c in coded:
            checks.reject(coded[c].missing(), f"{c} missing")
    checks.reject(~is_present(text.get("planned_start", empty)), "planned_start missing")
    for c, allowed in (("category", [x.value for x in Category]), ("status", STATUSES), ("registration", [r.value for r in Registration])):
        bad = ~coded[c].missing() & ~coded[c].isin(allowed)
        checks.reject(bad, f"{c} not one of {', '.join(allowed)} (map the source's values under values: {c})")
    for c in ("provider", "team"):
        checks.reject(coded[c].per_row(find_personnummer(pd.Series(coded[c].uniques, dtype=object)), False), f"a personal identity number in {c}")

    times, repeated_hour = _times(chunk, mapping, text, checks, report)
    given = coded["status"]  # the status column's own values: each distinct one looked at once
    blank = given.missing()
    outcome = given.per_row(_outcome_codes(given.uniques), 0).astype(np.int8)
    as_planned = np.zeros(n, dtype=bool)
    if mapping.performed_as_planned:  # the export is what was performed: actual = planned where the row has no registered times
        as_planned = (blank | (outcome == 1)) & np.isnat(times["actual_start"]) & np.isnat(times["actual_end"])
        for which in ("start", "end"):
            times[f"actual_{which}"] = np.where(as_planned, times[f"planned_{which}"], times[f"actual_{which}"])
        outcome[blank] = 1
        given = given.filled("performed")
        blank = np.zeros(n, dtype=bool)
    has_actual = ~np.isnat(times["actual_start"])
    outcome[blank & has_actual] = 1
    status = given.filled("").objects()
    if blank.any():
        status[blank] = np.where(has_actual[blank], "performed", "planned").astype(object)
    performed = outcome == 1
    checks.reject(performed & (np.isnat(times["actual_start"]) | np.isnat(times["actual_end"])), "performed without a registered start and end")
    for which in ("planned", "actual"):
        s, e = times[f"{which}_start"], times[f"{which}_end"]
        both = ~np.isnat(s) & ~np.isnat(e)
        checks.reject(both & (e < s), f"{which} end before start")
        checks.reject(both & ((e - s).astype(np.int64) > MAX_VISIT_MINUTES * 60), f"{which} visit longer than 16 h")
    planned_minutes = _minutes(times["planned_start"], times["planned_end"])
    planned_minutes = np.where(np.isnan(planned_minutes), _minutes(times["actual_start"], times["actual_end"]), planned_minutes)
    checks.reject(~(planned_minutes > 0), "no planned length (planned_end, planned_duration or registered times)")
    return _Rows(
        coded=coded, cells=_Cells(coded), visit_key=visit_key, times=times, status=status, outcome=outcome, performed=performed,
        planned_minutes=planned_minutes, repeated_hour=repeated_hour, as_planned=as_planned,
    )  # fmt: skip


def _minutes(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return (end - start).astype("timedelta64[s]").astype(np.float64) / 60


def _times(chunk: Chunk, mapping: Mapping, text: dict[str, pa.Array], checks: _Checks, report: ImportReport | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The rows' times in UTC (an end from a start and a duration, in its declared unit, where the file gives no end),
    and which rows have a local time in the repeated autumn hour.

    Such a time is read as its first occurrence; an end as its second when the first would precede its start
    (a visit from 02:50 to 02:10 "the second time"), so no row is rejected for the repeated hour.
    """
    empty = pa.nulls(len(chunk), pa.string())
    decimal = file_decimal(chunk.path, mapping)  # the mapping's, else the file's (detect.py)
    times = {}
    repeated = np.zeros(len(chunk), dtype=bool)
    for c in ("planned_start", "planned_end", "actual_start", "actual_end", "cancelled_at", "recorded_at"):
        times[c], bad, twice = parse_local_times(text.get(c, empty), mapping)
        checks.reject(outside_window(times[c]), window_reason(c))
        checks.reject(bad, f"{c} is not a date and time" + (f" in the form {mapping.date_format}" if mapping.date_format else "") + " (or does not exist in local time)")
        repeated |= twice
        if c.endswith("_end") and twice.any():
            start = times[c.replace("_end", "_start")]
            later = twice & ~np.isnat(start) & (times[c] < start)
            times[c] = np.where(later, times[c] + np.timedelta64(3600, "s"), times[c])
    for which in ("planned", "actual"):
        col = f"{which}_duration"
        if col in text:
            unit = mapping.units.get(col)
            if unit is None:
                raise ImportError_(f"{chunk.path}: the unit of {col} is not declared (units: {{{col}: minutes | decimal_hours | h:mm}} in the --mapping file)")
            minutes, bad = parse_minutes(text[col], unit, decimal)
            if report is not None and unit != "h:mm":
                note_decimal(report, chunk.path, mapping, decimal, text[col])
            if bad.any():
                negative = np.zeros(len(bad), dtype=bool)
                negative[bad] = negative_minutes(text[col].filter(pa.array(bad)), decimal)
                checks.reject(negative, f"negative duration in {col}")
            checks.reject(bad, f"ambiguous unit in {col}: expected {unit}")
            end = times[f"{which}_start"] + (np.round(np.nan_to_num(minutes) * 60)).astype("timedelta64[s]")
            times[f"{which}_end"] = np.where(np.isnat(times[f"{which}_end"]) & ~np.isnan(minutes), end, times[f"{which}_end"])
    return times, repeated


def _pseudonymised(rows: _Rows, mapping: Mapping, ids: ImportIds, pseudonymiser: Pseudonymiser, known: KnownVisits, checks: _Checks) -> _Keys:
    """Pseudonyms and keyed ids (the store never sees the source's ids), and where the store holds each visit.

    A recipient or staff id that is an identity number is pseudonymised in its canonical form (century from the
    planned start), so every written form of one person is one pseudonym (docs/personal-data.md).
    """
    coded, times = rows.coded, rows.times
    coded["recipient"] = canonical_coded(coded["recipient"], times["planned_start"])
    rows.cells.pop("recipient", None)
    rid = ids.recipient_ids_coded(coded["recipient"])
    if known.recipients:
        stored = np.append(rid.categories.isin(list(known.recipients)), True)  # a missing recipient is rejected above
        checks.reject(~stored[rid.codes], "unknown recipient (not in the store's decisions)")
    first_staff, second_staff = split_staff_coded(coded["staff"], mapping.staff_separator)
    staff1 = ids.pseudonyms_coded(canonical_coded(first_staff, times["planned_start"]))
    staff2 = ids.pseudonyms_coded(canonical_coded(second_staff, times["planned_start"]))
    checks.reject(rows.performed & staff1.missing(), "performed without staff")

    source_key: pa.Array | np.ndarray = rows.visit_key
    no_id = ~is_present(rows.visit_key)
    if no_id.any():  # no visit id: the whole plan is the key (module docstring)
        source_key = np.array(rows.visit_key.to_pylist(), dtype=object)
        source_key[no_id] = _plan_keys(rows, first_staff, second_staff, no_id)
    vid, hi, lo = visit_ids(pseudonymiser, source_key)
    pos = known.lookup(lo)
    stored_visit = pos >= 0
    if stored_visit.any() and (known.hi[pos[stored_visit]] != hi[stored_visit]).any():
        raise ImportError_("two visits share the low 64 bits of their ids")
    return _Keys(recipient=rid, staff1=staff1, staff2=staff2, visit=vid, hi=hi, lo=lo, pos=pos)


def _plan_keys(rows: _Rows, first_staff: Coded, second_staff: Coded, at: np.ndarray) -> np.ndarray:
    """The source key of rows ``at`` (rows without a visit id): recipient, provider, team, category, planned start,
    planned length (when the row has a planned end or duration) and the staff pair in either order, as text."""
    cells, times = rows.cells, rows.times

    def text(values: np.ndarray) -> np.ndarray:
        return np.where(pd.isna(values), "", values).astype(str)

    a, b = text(first_staff.objects()[at]), text(second_staff.objects()[at])
    swap = a > b
    low, high = np.where(swap, b, a), np.where(swap, a, b)
    length = _minutes(times["planned_start"][at], times["planned_end"][at])
    parts = [
        *(text(cells[c].to_numpy(dtype=object)[at]) for c in ("recipient", "provider", "team", "category")),
        times["planned_start"][at].astype(str),
        np.where(np.isnan(length), "", np.round(length).astype(np.int64).astype(str)),
        np.where(low == "", high, low),
        np.where(low == "", "", high),
    ]
    key = parts[0].astype(object)
    for part in parts[1:]:
        key = key + "|" + part.astype(object)
    return np.asarray(key, dtype=object)


def _staff_intervals(chunk: Chunk, rows: _Rows, keys: _Keys, staff_seen: StaffIntervals, stored: StoredIntervals, known: KnownVisits, performed: np.ndarray) -> _Intervals:
    """One staff member cannot be in two visits at once: checked against earlier rows of this import and against
    the performed visits the store held before the import (except a stored performed visit's own row, whose
    corrected times are checked against this import's rows only)."""
    # a row giving a visit's registered times again (a stored visit, an earlier row of this import, or an earlier
    # row of this chunk) adds no interval: it is the same visit, not a second one
    actual = actual_digest(rows.times["actual_start"], rows.times["actual_end"])
    pos, known_actual = keys.pos, known.actual
    again = (pos >= 0) & (known_actual[np.maximum(pos, 0)] == actual) if len(known_actual) else np.zeros(len(pos), dtype=bool)
    idx = np.flatnonzero(performed & ~again)
    with np.errstate(over="ignore"):
        pair = keys.lo[idx] ^ (actual[idx] * np.uint64(0x9E3779B97F4A7C15))  # one 64-bit key per (visit, times)
    again[idx[pd.Series(pair).duplicated().to_numpy()]] = True
    ok_rows = np.flatnonzero(performed & ~again)
    iv_rows = np.concatenate([ok_rows, ok_rows])
    iv_staff = np.concatenate([keys.staff1.per_row(staff_seen.code(keys.staff1.uniques), -1)[ok_rows], keys.staff2.per_row(staff_seen.code(keys.staff2.uniques), -1)[ok_rows]])
    present = iv_staff >= 0
    iv_rows, iv_staff = iv_rows[present], iv_staff[present]
    iv_start = rows.times["actual_start"][iv_rows].astype(np.int64)
    iv_end = rows.times["actual_end"][iv_rows].astype(np.int64)
    labels = staff_seen.labels(str(chunk.path), chunk.lines[iv_rows])
    clash, other_label = staff_seen.overlapping(iv_staff, iv_start, iv_end, labels)
    other = np.full(len(iv_rows), None, dtype=object)
    for i in np.flatnonzero(clash):
        other[i] = f"the other is on {staff_seen.where(int(other_label[i]))}"
    new = ~stored.own(pos[iv_rows])
    if new.any() and stored.n:
        visit = np.full(len(iv_rows), -1, dtype=np.int64)
        visit[new] = stored.overlapping(iv_staff[new], iv_start[new], iv_end[new])
        in_store = np.flatnonzero((visit >= 0) & ~clash)
        for i, visit_id in zip(in_store, known.visit_ids(visit[in_store]), strict=True):
            other[i] = f"the other is the stored visit {visit_id}"
        clash |= visit >= 0
    return _Intervals(rows=iv_rows, staff=iv_staff, start=iv_start, end=iv_end, clash=clash, labels=labels, other=other)


def _check_against_store(rows: _Rows, keys: _Keys, known: KnownVisits, checks: _Checks) -> np.ndarray:
    """Rows that contradict the stored visit; returns each row's plan digest.

    A stored visit's plan cannot change through an import (there is no event for a new plan), and a stored
    outcome cannot turn into the other one (a cancelled visit later performed, or the reverse).
    """
    n = len(rows.status)
    coded, pos = rows.coded, keys.pos
    stored_visit = pos >= 0
    provider_codes = coded["provider"].per_row(known.provider_codes(coded["provider"].uniques), -1)
    category = coded["category"].per_row(category_codes(coded["category"].uniques), -1)
    minutes = np.maximum(1, np.round(np.nan_to_num(rows.planned_minutes)))
    plan = plan_digest(rows.times["planned_start"], minutes, category, provider_codes)
    if stored_visit.any():
        changed_plan = np.zeros(n, dtype=bool)
        changed_plan[stored_visit] = known.plan[pos[stored_visit]] != plan[stored_visit]
        checks.reject(changed_plan, "changes the plan (start, length, category or provider) of a visit already stored")
    stored = np.full(n, -1, dtype=np.int64)
    stored[stored_visit] = known.status[pos[stored_visit]]
    row_status = rows.outcome
    checks.reject((stored > 0) & (row_status > 0) & (stored != row_status), "conflicts with the outcome already stored for this visit")
    return plan


def _outcome_codes(status: np.ndarray) -> np.ndarray:
    """0 planned (or missed), 1 performed, 2 cancelled: the fold's status codes (of status names; anything else 0)."""
    return np.where(status == "performed", 1, np.where(is_cancelled(status), 2, 0)).astype(np.int8)


def _events(
    rows: _Rows,
    keys: _Keys,
    plan: np.ndarray,
    good: np.ndarray,
    known: KnownVisits,
    report: ImportReport,
    recorded_now: np.datetime64,
    arena: Arena | None = None,
    clock: StepClock | None = None,
) -> EventBatch:
    """New visits get one event: their plan, with the outcome when it is known (``PlannedAndPerformed``,
    ``PlannedAndCancelled``); known ones only what changed (an outcome, a correction)."""
    batch = EventBatch.empty()
    idx = np.flatnonzero(good)
    if not len(idx):
        return batch
    # the last row of a visit within the chunk wins
    last = ~pd.Series(keys.lo[idx]).duplicated(keep="last").to_numpy()
    report.rows_repeated += int((~last).sum())
    idx = idx[last]
    ids, pos = keys.visit[idx], keys.pos[idx]
    exists = pos >= 0

    def was(values: np.ndarray, fill: object) -> np.ndarray:
        """The stored value of each row's visit (``fill`` for visits new to the store)."""
        out = np.full(len(pos), fill, dtype=values.dtype)
        out[exists] = values[pos[exists]]
        return out

    old_status = was(known.status, -1)
    old_version = was(known.version, 0)
    recorded = rows.times["recorded_at"][idx]
    outcome_status = rows.outcome[idx].astype(np.int64)
    performed, cancelled = outcome_status == 1, outcome_status == 2
    new = ~exists

    # new visits: one event each
    if new.any():
        for which, event_class, outcome in (
            (new & (outcome_status == 0), Visit.Planned, None),
            (new & performed, Visit.PlannedAndPerformed, _performed_columns),
            (new & cancelled, Visit.PlannedAndCancelled, _cancelled_columns),
        ):
            if not which.any():
                continue
            at = idx[which]
            columns = _plan_columns(at, recorded[which], rows, keys)
            if outcome is not None:
                columns |= outcome(at, recorded[which], rows, keys, outcome_field=True)
            _add(batch, event_class, ids[which], 1, columns, arena, clock)
    # outcomes of known visits still only planned
    needs_outcome = exists & (old_status == 0) & (outcome_status > 0)
    for which, outcome_class, columns_of in ((needs_outcome & performed, Visit.Performed, _performed_columns), (needs_outcome & cancelled, Visit.Cancelled, _cancelled_columns)):
        if which.any():
            _add(batch, outcome_class, ids[which], old_version[which] + 1, columns_of(idx[which], recorded[which], rows, keys, outcome_field=False), arena, clock)

    # known performed visits whose registered times changed: a correction, recorded now
    corr = performed & (old_status == 1)
    row_actual = actual_digest(rows.times["actual_start"][idx], rows.times["actual_end"][idx])
    corr &= was(known.actual, 0) != row_actual
    if corr.any():
        c_idx = idx[corr]
        columns = {
            "timestamp": np.where(np.isnat(recorded[corr]), recorded_now, recorded[corr]),
            "actual_start": rows.times["actual_start"][c_idx],
            "actual_end": rows.times["actual_end"][c_idx],
            "reason": np.full(len(c_idx), "changed in a re-imported source row", dtype=object),
        }
        _add(batch, Visit.Corrected, ids[corr], old_version[corr] + 1, columns, arena, clock)
    changed = new | needs_outcome | corr
    report.rows_imported += int(changed.sum())
    stored_before = exists & (pos < known.before)
    report.rows_unchanged += int((~changed & stored_before).sum())
    report.rows_repeated += int((~changed & ~stored_before).sum())
    # remember what this chunk adds, for later chunks of the same import
    n_rows = idx[new]
    known.add(keys.lo[n_rows], hi=keys.hi[n_rows], version=np.ones(len(n_rows), np.int32), status=outcome_status[new], actual=row_actual[new], plan=plan[n_rows])
    upd = np.flatnonzero(needs_outcome | corr)
    if len(upd):
        p = pos[upd]
        known.version[p] = known.version[p] + 1
        known.status[p] = np.maximum(known.status[p], outcome_status[upd])
        known.actual[p] = row_actual[upd]
    return batch


Columns = dict[str, Any]


def _add(batch: EventBatch, event_class: type, ids: np.ndarray, version: np.ndarray | int, columns: Columns, arena: Arena | None, clock: StepClock | None) -> None:
    """Encode the events into the batch; their columns must be the event's fields (EVENT_FIELDS)."""
    if columns.keys() != EVENT_FIELDS[event_class]:
        raise TypeError(f"{event_class.__qualname__}: columns {sorted(columns)} are not its fields {sorted(EVENT_FIELDS[event_class])}")
    if clock:
        clock.lap("events")
    batch.add(encoder_for(event_class), ids, version, columns, arena)
    if clock:
        clock.lap("encode (store/bulk.py)")


def _plan_columns(at: np.ndarray, recorded: np.ndarray, rows: _Rows, keys: _Keys) -> Columns:
    """The plan's fields of rows ``at``; recorded when the row says, else at the planned start."""
    coded, start = rows.coded, rows.times["planned_start"]
    return {
        "timestamp": np.where(np.isnat(recorded), start[at], recorded),
        "recipient_id": keys.recipient[at],
        "provider": coded["provider"].categorical(at),
        "team": coded["team"].or_else(coded["provider"]).categorical(at),
        "category": coded["category"].categorical(at),
        "planned_start": start[at],
        "planned_minutes": np.maximum(1, np.round(rows.planned_minutes[at])).astype(np.int64),
        "staff_planned": np.where(keys.staff2.codes[at] >= 0, 2, 1),
    }


def _performed_columns(at: np.ndarray, recorded: np.ndarray, rows: _Rows, keys: _Keys, *, outcome_field: bool) -> Columns:
    """A performance's fields; recorded when the row says, else at the registered end."""
    # the staff tuple of each row, built once per distinct pair
    first, firsts = keys.staff1.codes[at], keys.staff1.uniques
    second, seconds = keys.staff2.codes[at], keys.staff2.uniques
    codes, pairs = pd.factorize((first.astype(np.int64) + 1) * (len(seconds) + 1) + second + 1)
    tuples = []
    for pair in pairs.tolist():
        a, b = divmod(pair, len(seconds) + 1)
        tuples.append(tuple(x for x in (firsts[a - 1] if a else None, seconds[b - 1] if b else None) if x))
    staff = pd.Categorical.from_codes(codes, pd.Index(tuples, dtype=object, tupleize_cols=False))
    end = rows.times["actual_end"][at]
    return {
        ("performed_recorded_at" if outcome_field else "timestamp"): np.where(np.isnat(recorded), end, recorded),
        "actual_start": rows.times["actual_start"][at],
        "actual_end": end,
        "staff": staff,
        "registration": rows.coded["registration"].filled("mobile").categorical(at),
    }


def _cancelled_columns(at: np.ndarray, recorded: np.ndarray, rows: _Rows, keys: _Keys, *, outcome_field: bool) -> Columns:
    """A cancellation's fields; recorded when the row says, else when it was made (else at the planned start)."""
    by = np.where(rows.status[at] == "cancelled_by_provider", CancelledBy.provider.value, CancelledBy.recipient.value)
    why = np.where(by == CancelledBy.provider.value, CancelReason.staffing.value, CancelReason.declined.value)
    made = rows.times["cancelled_at"][at]
    when = np.where(np.isnat(made), rows.times["planned_start"][at], made)
    return {
        ("cancelled_recorded_at" if outcome_field else "timestamp"): np.where(np.isnat(recorded), when, recorded),
        "by": pd.Categorical(by),
        "reason": pd.Categorical(why),
        "cancelled_at": when,
    }

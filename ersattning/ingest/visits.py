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
"""


from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ersattning.domain import CancelledBy, CancelReason, Category, Registration, Visit
from ersattning.ingest.cells import (
    as_arrow_text,
    chunk_columns,
    is_cancelled,
    mapped_values,
    as_objects,
    personnummer_in,
    renamed_columns,
    split_staff,
    stripped,
    is_present,
    parse_minutes,
    parse_times,
)
from ersattning.ingest.ids import ImportIds, visit_ids
from ersattning.ingest.known import actual_digest, category_codes, KnownVisits, plan_digest
from ersattning.ingest.mapping import VISIT_REQUIRED, Mapping
from ersattning.ingest.overlaps import StaffIntervals
from ersattning.ingest.readers import Chunk, read_rows
from ersattning.ingest.report import ImportError_, ImportReport, Quarantine, reject_rows
from ersattning.ingest.strict import checked_first
from ersattning.privacy import Pseudonymiser
from ersattning.store.bulk import Arena, EventBatch, encoder_for

MAX_VISIT_MINUTES = 16 * 60
STATUSES = ("performed", "cancelled_by_recipient", "cancelled_by_provider", "missed", "planned")


@checked_first
def import_visits(
    store,
    paths: Iterable[str],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    *,
    strict: bool = False,
    quarantine: str | Path | None = None,
    dry_run: bool = False,
    chunk_rows: int = 200_000,
    progress: Callable[..., None] | None = None,
    now: datetime | None = None,
    overlap_slack: timedelta = timedelta(days=1),
) -> ImportReport:
    """Import visit rows from the files; see the module docstring.

    ``progress(rows, seconds, fraction)`` is called after each chunk, with the
    fraction of the files' bytes read so far (for an estimate of the time left).
    ``overlap_slack``: how far back in time rows may come after later ones and
    still be checked for staff overlaps against memory rather than the spill
    (see :class:`StaffIntervals`).
    """
    paths = [str(p) for p in paths]
    sizes = [_size(p) for p in paths]
    total = sum(sizes)

    def chunks() -> Iterator[tuple[Chunk, float | None]]:
        for i, path in enumerate(paths):
            for chunk in read_rows(path, chunk_rows=chunk_rows, encoding=mapping.encoding, delimiter=mapping.delimiter):
                yield chunk, ((sum(sizes[:i]) + sizes[i] * chunk.fraction) / total if total and chunk.fraction is not None else None)

    q = Quarantine(quarantine)
    try:
        return _import_chunks(store, chunks(), mapping, pseudonymiser, q, strict=strict, dry_run=dry_run, progress=progress, now=now, overlap_slack=overlap_slack)
    finally:
        q.close()


def import_visit_chunks(
    store,
    chunks: Iterable[Chunk],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    *,
    quarantine: Quarantine,
    strict: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Import chunks of visit rows that another reader made (the event-log import pairs events into them).

    The same checks, pseudonyms, ids and transactions as :func:`import_visits`;
    the caller owns the quarantine (it may write the rows' sources instead).
    """
    return _import_chunks(store, ((chunk, None) for chunk in chunks), mapping, pseudonymiser, quarantine, strict=strict, dry_run=dry_run, now=now)


def _import_chunks(
    store,
    chunks: Iterable[tuple[Chunk, float | None]],
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    q: Quarantine,
    *,
    strict: bool = False,
    dry_run: bool = False,
    progress: Callable[..., None] | None = None,
    now: datetime | None = None,
    overlap_slack: timedelta = timedelta(days=1),
) -> ImportReport:
    """The chunk loop: check and encode a chunk while the previous one is appended."""
    started = time.perf_counter()
    report = ImportReport()
    known = KnownVisits.from_store(store)
    recorded_now = np.datetime64((now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "s")
    staff_seen = StaffIntervals(slack=overlap_slack)
    ids = ImportIds(pseudonymiser)
    writer = store.bulk_writer()
    arena = Arena()
    try:
        for i, (chunk, fraction) in enumerate(chunks):
            # the first and the last chunk in pieces: the writer starts after a quarter of the first
            # rather than all of it, and the reading ends a quarter of a chunk before the writing does
            last = fraction is not None and fraction >= 0.999
            for piece in _pieces(chunk, 4) if (i == 0 or last) and not dry_run else (chunk,):
                arena.reset()  # the previous batch was handed on by submit(): its memory is free again
                batch = _import_chunk(piece, mapping, pseudonymiser, ids, known, report, q, strict, recorded_now, staff_seen, arena)
                if len(batch) and not dry_run:
                    writer.submit(batch)
            if progress:
                progress(report.rows_read, time.perf_counter() - started, fraction)
        writer.wait()
        if not dry_run:
            store.checkpoint()
    finally:
        writer.close()
        report.events_written = writer.events
        report.journal = writer.journal
        report.writer_seconds = writer.busy_seconds
        staff_seen.close()
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
    arena: Arena | None = None,
) -> EventBatch:
    source = chunk_columns(chunk)
    n = len(chunk)
    report.rows_read += n
    cols = renamed_columns(source, mapping, n)
    missing_columns = [c for c in VISIT_REQUIRED if c not in cols and not (c == "provider" and mapping.default_provider)]
    if missing_columns:
        raise ImportError_(f"{chunk.path}: no column for {', '.join(missing_columns)} (map them with columns: in the mapping file)")
    for column, arr in cols.items():
        if personnummer_in(arr).any():
            report.columns_with_personnummer.add(str(column))
    text = {c: stripped(arr) for c, arr in cols.items()}
    empty = pa.nulls(n, pa.string())

    reason = np.full(n, None, dtype=object)  # first failing check of each row
    unrejected = np.ones(n, dtype=bool)

    def reject(mask: np.ndarray, why: str) -> None:
        new = mask & unrejected
        reason[new] = why
        unrejected[new] = False

    # rows that are not visits
    skipped = np.zeros(n, dtype=bool)
    for rule in mapping.skip:
        name = mapping.columns.get(rule.column, rule.column)
        col = text.get(name) if name in text else (stripped(source[rule.column]) if rule.column in source else None)
        if col is None:
            raise ImportError_(f"{chunk.path}: skip rule names column {rule.column!r}, which the file does not have")
        hit = pc.is_in(col, pa.array(rule.one_of, pa.string())) if rule.one_of else pc.equal(col, rule.equals)
        hit = hit.fill_null(False).to_numpy(zero_copy_only=False) & ~skipped
        report.skipped[rule.reason] += int(hit.sum())
        skipped |= hit

    cells = {c: as_objects(text.get(c, empty)) for c in ("recipient", "provider", "category", "team", "staff", "status", "registration")}
    if mapping.default_provider:
        cells["provider"] = cells["provider"].fillna(mapping.default_provider)
    visit_key = text.get("visit_id", empty)
    for column, table in mapping.values.items():
        if column == "visit_id":
            visit_key = as_arrow_text(mapped_values(as_objects(visit_key), table))
        elif column in cells:
            cells[column] = mapped_values(cells[column], table)
    for c in VISIT_REQUIRED:
        if c in cells:
            reject(cells[c].isna().to_numpy(), f"{c} missing")
    reject(~is_present(text.get("planned_start", empty)), "planned_start missing")
    for c, allowed in (("category", [x.value for x in Category]), ("status", STATUSES), ("registration", [r.value for r in Registration])):
        bad = cells[c].notna().to_numpy() & ~cells[c].isin(allowed).to_numpy()
        reject(bad, f"{c} not one of {', '.join(allowed)} (map the source's values under values: {c})")
    for c in ("provider", "team"):
        reject(personnummer_in(cells[c]), f"a personal identity number in {c}")

    decimal = mapping.decimal or ("," if (mapping.delimiter or "") == ";" else ".")
    times = {}
    for c in ("planned_start", "planned_end", "actual_start", "actual_end", "cancelled_at", "recorded_at"):
        times[c], bad = parse_times(text.get(c, empty), mapping)
        reject(bad, f"{c} is not a date and time" + (f" in the form {mapping.date_format}" if mapping.date_format else "") + " (or does not exist in local time)")
    for which in ("planned", "actual"):
        col = f"{which}_duration"
        if col in text:
            unit = mapping.units.get(col)
            if unit is None:
                raise ImportError_(f"{chunk.path}: the unit of {col} is not declared (units: {{{col}: minutes | decimal_hours | h:mm}} in the mapping)")
            minutes, bad = parse_minutes(text[col], unit, decimal)
            reject(bad, f"ambiguous unit in {col}: expected {unit}")
            end = times[f"{which}_start"] + (np.round(np.nan_to_num(minutes) * 60)).astype("timedelta64[s]")
            times[f"{which}_end"] = np.where(np.isnat(times[f"{which}_end"]) & ~np.isnan(minutes), end, times[f"{which}_end"])

    status = cells["status"].fillna("").to_numpy()
    has_actual = ~np.isnat(times["actual_start"])
    status = np.where(status == "", np.where(has_actual, "performed", "planned"), status)
    performed = status == "performed"
    reject(performed & (np.isnat(times["actual_start"]) | np.isnat(times["actual_end"])), "performed without a registered start and end")
    for which in ("planned", "actual"):
        s, e = times[f"{which}_start"], times[f"{which}_end"]
        both = ~np.isnat(s) & ~np.isnat(e)
        reject(both & (e < s), f"{which} end before start")
        reject(both & ((e - s).astype(np.int64) > MAX_VISIT_MINUTES * 60), f"{which} visit longer than 16 h")
    planned_minutes = (times["planned_end"] - times["planned_start"]).astype("timedelta64[s]").astype(np.float64) / 60
    planned_minutes = np.where(np.isnan(planned_minutes), (times["actual_end"] - times["actual_start"]).astype("timedelta64[s]").astype(np.float64) / 60, planned_minutes)
    reject(~(planned_minutes > 0), "no planned length (planned_end, planned_duration or registered times)")

    # pseudonyms: the store never sees the source's ids
    rid = ids.recipient_ids(cells["recipient"])
    if known.recipients:
        stored = np.append(rid.categories.isin(list(known.recipients)), True)  # a missing recipient is rejected above
        reject(~stored[rid.codes], "unknown recipient (not in the store's decisions)")
    first_staff, second_staff = split_staff(cells["staff"], mapping.staff_separator)
    staff1 = ids.pseudonyms(first_staff)
    staff2 = ids.pseudonyms(second_staff)
    reject(performed & pd.isna(staff1), "performed without staff")

    source_key: pa.Array | np.ndarray = visit_key
    no_id = ~is_present(visit_key)
    if no_id.any():  # no visit id: the recipient, the planned start and the category make the key
        source_key = np.array(visit_key.to_pylist(), dtype=object)
        fallback = cells["recipient"][no_id].fillna("") + "|" + pd.Series(times["planned_start"][no_id].astype(str), index=cells["recipient"].index[no_id]) + "|" + cells["category"][no_id].fillna("")
        source_key[no_id] = fallback.to_numpy(dtype=object)
    vid, hi, lo = visit_ids(pseudonymiser, source_key)
    pos = known.lookup(lo)
    stored_visit = pos >= 0
    if stored_visit.any() and (known.hi[pos[stored_visit]] != hi[stored_visit]).any():
        raise ImportError_("two visits share the low 64 bits of their ids")

    # one staff member cannot be in two visits at once (checked against earlier rows of this import too)
    ok_rows = np.flatnonzero(unrejected & ~skipped & performed)
    iv_rows = np.concatenate([ok_rows, ok_rows])
    iv_staff = staff_seen.code(np.concatenate([staff1[ok_rows], staff2[ok_rows]]))
    present = iv_staff >= 0
    iv_rows, iv_staff = iv_rows[present], iv_staff[present]
    iv_start = times["actual_start"][iv_rows].astype(np.int64)
    iv_end = times["actual_end"][iv_rows].astype(np.int64)
    clash = staff_seen.clashes(iv_staff, iv_start, iv_end)
    overlap = np.zeros(n, dtype=bool)
    overlap[iv_rows[clash]] = True
    reject(overlap, "overlaps another visit of the same staff member")

    # a stored visit's plan cannot change through an import (there is no event for a new plan)
    provider_codes = known.provider_codes(cells["provider"].to_numpy(dtype=object))
    row_plan = plan_digest(times["planned_start"], np.maximum(1, np.round(np.nan_to_num(planned_minutes))), category_codes(cells["category"].to_numpy(dtype=object)), provider_codes)
    if stored_visit.any():
        changed_plan = np.zeros(n, dtype=bool)
        changed_plan[stored_visit] = known.plan[pos[stored_visit]] != row_plan[stored_visit]
        reject(changed_plan, "changes the plan (start, length, category or provider) of a visit already stored")
    # a stored outcome cannot turn into the other one (a cancelled visit later performed, or the reverse)
    stored = np.full(n, -1, dtype=np.int64)
    stored[stored_visit] = known.status[pos[stored_visit]]
    row_status = np.where(status == "performed", 1, np.where(is_cancelled(status), 2, 0))
    reject((stored > 0) & (row_status > 0) & (stored != row_status), "conflicts with the outcome already stored for this visit")

    bad = ~unrejected & ~skipped
    reject_rows(chunk, bad, reason, q, report, strict)
    good = ~bad & ~skipped
    keep = good[iv_rows] & ~clash
    staff_seen.add(iv_staff[keep], iv_start[keep], iv_end[keep])
    return _events(good, vid, hi, lo, pos, rid, cells, times, status, planned_minutes, row_plan, staff1, staff2, known, report, recorded_now, arena)


def _events(good, vid, hi, lo, pos, rid, cells, times, status, planned_minutes, row_plan, staff1, staff2, known: KnownVisits, report: ImportReport, recorded_now, arena: Arena | None = None) -> EventBatch:
    """New visits get one event: their plan, with the outcome when it is known (``PlannedAndPerformed``,
    ``PlannedAndCancelled``); known ones only what changed (an outcome, a correction)."""
    batch = EventBatch.empty()
    idx = np.flatnonzero(good)
    if not len(idx):
        return batch
    # the last row of a visit within the chunk wins
    last = ~pd.Series(lo[idx]).duplicated(keep="last").to_numpy()
    report.rows_unchanged += int((~last).sum())
    idx = idx[last]
    ids, pos = vid[idx], pos[idx]
    exists = pos >= 0

    def was(values: np.ndarray, fill: object) -> np.ndarray:
        """The stored value of each row's visit (``fill`` for visits new to the store)."""
        out = np.full(len(pos), fill, dtype=values.dtype)
        out[exists] = values[pos[exists]]
        return out

    old_status = was(known.status, -1)
    old_version = was(known.version, 0)
    recorded = times["recorded_at"][idx]
    performed = status[idx] == "performed"
    cancelled = is_cancelled(status[idx])
    outcome_status = np.where(performed, 1, np.where(cancelled, 2, 0))
    new = ~exists

    # new visits: one event each
    if new.any():
        for which, event_class, extra in (
            (new & (outcome_status == 0), Visit.Planned, None),
            (new & performed, Visit.PlannedAndPerformed, _performed_columns),
            (new & cancelled, Visit.PlannedAndCancelled, _cancelled_columns),
        ):
            if not which.any():
                continue
            rows = idx[which]
            columns = _plan_columns(rows, recorded[which], rid, cells, times, planned_minutes, staff2)
            if extra is not None:
                columns |= extra(rows, recorded[which], status, cells, times, staff1, staff2, outcome_field=True)
            batch.add(encoder_for(event_class), ids[which], 1, columns, arena)
    # outcomes of known visits still only planned
    needs_outcome = exists & (old_status == 0) & (outcome_status > 0)
    for which, event_class, extra in ((needs_outcome & performed, Visit.Performed, _performed_columns), (needs_outcome & cancelled, Visit.Cancelled, _cancelled_columns)):
        if which.any():
            batch.add(encoder_for(event_class), ids[which], old_version[which] + 1, extra(idx[which], recorded[which], status, cells, times, staff1, staff2, outcome_field=False), arena)

    # known performed visits whose registered times changed: a correction, recorded now
    corr = performed & (old_status == 1)
    row_actual = actual_digest(times["actual_start"][idx], times["actual_end"][idx])
    corr &= was(known.actual, 0) != row_actual
    if corr.any():
        c_idx = idx[corr]
        batch.add(
            encoder_for(Visit.Corrected),
            ids[corr],
            old_version[corr] + 1,
            {
                "timestamp": np.where(np.isnat(recorded[corr]), recorded_now, recorded[corr]),
                "actual_start": times["actual_start"][c_idx],
                "actual_end": times["actual_end"][c_idx],
                "reason": np.full(len(c_idx), "changed in a re-imported source row", dtype=object),
            },
            arena,
        )
    changed = new | needs_outcome | corr
    report.rows_imported += int(changed.sum())
    report.rows_unchanged += int((~changed).sum())
    # remember what this chunk adds, for later chunks of the same import
    n_rows = idx[new]
    known.add(lo[n_rows], hi=hi[n_rows], version=np.ones(len(n_rows), np.int32), status=outcome_status[new], actual=row_actual[new], plan=row_plan[n_rows])
    upd = np.flatnonzero(needs_outcome | corr)
    if len(upd):
        p = pos[upd]
        known.version[p] = known.version[p] + 1
        known.status[p] = np.maximum(known.status[p], outcome_status[upd])
        known.actual[p] = row_actual[upd]
    return batch


def _categorical(values: np.ndarray) -> pd.Categorical:
    """Codes into the distinct values in the order met (no sorting: the encoder does not need it)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, pd.Index(uniques, dtype=object))


def _plan_columns(rows, recorded, rid, cells, times, planned_minutes, staff2) -> dict:
    """The plan's fields; recorded when the row says, else at the planned start."""
    return {
        "timestamp": np.where(np.isnat(recorded), times["planned_start"][rows], recorded),
        "recipient_id": rid[rows],
        "provider": _categorical(cells["provider"].to_numpy()[rows]),
        "team": _categorical(cells["team"].fillna(cells["provider"]).to_numpy()[rows]),
        "category": _categorical(cells["category"].to_numpy()[rows]),
        "planned_start": times["planned_start"][rows],
        "planned_minutes": np.maximum(1, np.round(planned_minutes[rows])).astype(np.int64),
        "staff_planned": np.where(pd.notna(staff2[rows]), 2, 1),
    }


def _performed_columns(rows, recorded, status, cells, times, staff1, staff2, *, outcome_field: bool) -> dict:
    """A performance's fields; recorded when the row says, else at the registered end."""
    # the staff tuple of each row, built once per distinct pair
    first, firsts = pd.factorize(staff1[rows], use_na_sentinel=True)
    second, seconds = pd.factorize(staff2[rows], use_na_sentinel=True)
    codes, pairs = pd.factorize((first.astype(np.int64) + 1) * (len(seconds) + 1) + second + 1)
    tuples = []
    for pair in pairs.tolist():
        a, b = divmod(pair, len(seconds) + 1)
        tuples.append(tuple(x for x in (firsts[a - 1] if a else None, seconds[b - 1] if b else None) if x))
    staff = pd.Categorical.from_codes(codes, pd.Index(tuples, dtype=object, tupleize_cols=False))
    end = times["actual_end"][rows]
    at = np.where(np.isnat(recorded), end, recorded)
    return {
        ("performed_recorded_at" if outcome_field else "timestamp"): at,
        "actual_start": times["actual_start"][rows],
        "actual_end": end,
        "staff": staff,
        "registration": _categorical(cells["registration"].fillna("mobile").to_numpy()[rows]),
    }


def _cancelled_columns(rows, recorded, status, cells, times, staff1, staff2, *, outcome_field: bool) -> dict:
    """A cancellation's fields; recorded when the row says, else when it was made (else at the planned start)."""
    by = np.where(status[rows] == "cancelled_by_provider", CancelledBy.provider.value, CancelledBy.recipient.value)
    why = np.where(by == CancelledBy.provider.value, CancelReason.staffing.value, CancelReason.declined.value)
    at = np.where(np.isnat(times["cancelled_at"][rows]), times["planned_start"][rows], times["cancelled_at"][rows])
    return {
        ("cancelled_recorded_at" if outcome_field else "timestamp"): np.where(np.isnat(recorded), at, recorded),
        "by": pd.Categorical(by),
        "reason": pd.Categorical(why),
        "cancelled_at": at,
    }

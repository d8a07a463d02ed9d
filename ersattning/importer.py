"""Importing historical visit logs: map, validate, pseudonymise and append, chunk by chunk.

Each chunk of rows is mapped to the canonical columns (``mapping.py``),
checked row by row (vectorized), pseudonymised (recipients and staff become
keyed hashes; a personal identity number never reaches the store in clear)
and appended as events in one transaction. Rows that fail a check go to a
quarantine CSV with their file, line and reason; ``strict`` stops at the first
one and writes nothing.

Imports are idempotent: a visit's aggregate id is derived from its source key,
so a row imported before adds nothing, a newly registered outcome adds that
event, and changed registered times become a correction recorded later — an
as-of replay before it still shows the old times.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ersattning import projection
from ersattning.bulk import EventBatch, append_batch, encoder_for
from ersattning.domain import CancelledBy, CancelReason, Category, Registration, Visit
from ersattning.mapping import VISIT_REQUIRED, Mapping
from ersattning.pseudonym import Pseudonymiser, find_personnummer
from ersattning.readers import Chunk, read_rows
from ersattning.import_strict import checked_first

MAX_VISIT_MINUTES = 16 * 60
STATUSES = ("performed", "cancelled_by_recipient", "cancelled_by_provider", "missed", "planned")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class ImportError_(Exception):
    """A problem that stops an import (``--strict``, a missing required column); the store is unchanged."""


@dataclass
class ImportReport:
    rows_read: int = 0
    rows_imported: int = 0
    rows_unchanged: int = 0
    skipped: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    events_written: int = 0
    columns_with_personnummer: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def summary(self) -> list[str]:
        lines = [
            f"rows read {self.rows_read:,}, imported {self.rows_imported:,}, already in the store {self.rows_unchanged:,}, "
            f"skipped {sum(self.skipped.values()):,}, quarantined {sum(self.quarantined.values()):,}; {self.events_written:,} events written"
        ]
        lines += [f"  skipped ({reason}): {n:,}" for reason, n in sorted(self.skipped.items())]
        lines += [f"  quarantined ({reason}): {n:,}" for reason, n in sorted(self.quarantined.items())]
        if self.columns_with_personnummer:
            lines.append(f"  personal identity numbers found in: {', '.join(sorted(self.columns_with_personnummer))} (never stored in clear)")
        return lines


class Quarantine:
    """Rejected rows as CSV: file, line, reason, then the row's cells as read."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._writer = None
        self._file = None
        self._columns: list[str] | None = None

    def write(self, chunk: Chunk, rows: np.ndarray, reasons: np.ndarray) -> None:
        if self.path is None or not len(rows):
            return
        if self._file is None:
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._columns = list(chunk.frame.columns)
            self._writer.writerow(["file", "line", "reason", *self._columns])
        frame = chunk.frame.iloc[rows].reindex(columns=self._columns)
        for line, reason, values in zip(chunk.lines[rows], reasons, frame.itertuples(index=False), strict=True):
            self._writer.writerow([chunk.path, int(line), reason, *("" if v is None else v for v in values)])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def reject_rows(chunk: Chunk, bad: np.ndarray, reason: np.ndarray, q: Quarantine, report: ImportReport, strict: bool) -> None:
    """Rows that failed a check: quarantined and counted, or with ``strict`` the end of the import."""
    if strict and bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ImportError_(f"{chunk.path}:{int(chunk.lines[first])}: {reason[first]} (--strict: nothing was written)")
    q.write(chunk, np.flatnonzero(bad), reason[bad])
    for why in reason[bad]:
        report.quarantined[why] += 1


# -- parsing cells ------------------------------------------------------------------------


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column's cells, stripped, with empty cells as None (vectorized string operations)."""
    if column in frame:
        stripped = frame[column].astype("string").str.strip()
        return stripped.astype(object).where(stripped.notna() & (stripped != ""), None)
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def parse_times(values: pd.Series, mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Text → UTC ``datetime64[s]`` and a mask of cells that were present but could not be read.

    Times without an offset are local in the mapping's zone, DST-correct; a
    local time that does not exist or is ambiguous (the DST changes) is not
    read rather than guessed.
    """
    present = values.notna().to_numpy()
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
    if not present.any():
        return out, np.zeros(len(values), dtype=bool)
    text = values[present].astype(str)
    fmt = mapping.date_format or "ISO8601"
    has_offset = text.str.contains(_OFFSET).to_numpy()
    idx = np.flatnonzero(present)
    if has_offset.any():
        parsed = pd.to_datetime(text[has_offset], format=fmt, utc=True, errors="coerce")
        out[idx[has_offset]] = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    if (~has_offset).any():
        naive = pd.to_datetime(text[~has_offset], format=fmt, errors="coerce")
        local = pd.DatetimeIndex(naive).tz_localize(mapping.timezone, ambiguous="NaT", nonexistent="NaT")
        out[idx[~has_offset]] = local.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")
    bad = present & np.isnat(out)
    return out, bad


def parse_minutes(values: pd.Series, unit: str, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """Durations in the declared unit → minutes, and a mask of cells not in that unit.

    A value in another unit's form ("0:30" in a decimal-hours column, "0.5" in
    an h:mm column) is ambiguous and rejected, never reinterpreted.
    """
    present = values.notna().to_numpy()
    out = np.full(len(values), np.nan)
    text = values.astype(str).str.strip()
    if unit == "h:mm":
        m = text.str.fullmatch(r"(\d+):([0-5]\d)")
        parts = text.str.extract(r"^(\d+):([0-5]\d)$")
        ok = present & m.fillna(False).to_numpy()
        out[ok] = parts[0].to_numpy()[ok].astype(float) * 60 + parts[1].to_numpy()[ok].astype(float)
    else:
        pattern = r"\d+(,\d+)?" if decimal == "," else r"\d+(\.\d+)?"
        ok = present & text.str.fullmatch(pattern).fillna(False).to_numpy()
        number = text[ok].str.replace(",", ".", regex=False).astype(float).to_numpy()
        out[ok] = number * (60.0 if unit == "decimal_hours" else 1.0)
    return out, present & ~ok


# -- ids ----------------------------------------------------------------------------------


def _uuid_hex_from_digest(hexes: np.ndarray) -> np.ndarray:
    """32-hex digests → valid version-4-style UUID hex (S32), vectorized."""
    raw = np.frombuffer(bytes.fromhex("".join(hexes.tolist())), dtype=np.uint8).reshape(-1, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    from ersattning.bulk import uuid_hex

    return uuid_hex(raw)


# -- the import -----------------------------------------------------------------------------


@dataclass
class _Known:
    """What the store already knows about visits, keyed by the low 64 bits of their id."""

    index: pd.Index
    hi: np.ndarray
    version: np.ndarray
    status: np.ndarray  # 0 planned, 1 performed, 2 cancelled
    actual_start: np.ndarray  # UTC datetime64[s]
    actual_end: np.ndarray
    recipients: set[str]
    plan: np.ndarray  # object: "planned start UTC|minutes|category|provider" of each stored visit

    @classmethod
    def from_store(cls, store) -> _Known:
        cached = projection.update(store)
        st = cached.state
        c = st.cols
        start = c["actual_start_utc"].copy()
        end = start + (np.round(np.nan_to_num(c["actual_minutes"]) * 60)).astype("timedelta64[s]")
        version = 1 + (c["status"] != 0).astype(np.int64) + c["corrections"].astype(np.int64)
        recipients = set(projection.fold_entities(cached.entity_events)["recipients"]["recipient"]) if len(cached.entity_events) else set()
        categories = np.array([x.value for x in Category], dtype=object)
        providers = np.array(st.vocab["provider"].values + [""], dtype=object)
        plan = _plan_keys(c["planned_start_utc"], c["planned_minutes"], categories[c["category"]], providers[c["provider"]])
        return cls(pd.Index(c["key_lo"]), c["key_hi"].copy(), version, c["status"].copy(), start, end, recipients, plan)

    def add(self, lo: np.ndarray, hi: np.ndarray, version: np.ndarray, status: np.ndarray, start: np.ndarray, end: np.ndarray, plan: np.ndarray) -> None:
        self.plan = np.concatenate([self.plan, plan])
        self.index = self.index.append(pd.Index(lo))
        self.hi = np.concatenate([self.hi, hi])
        self.version = np.concatenate([self.version, version])
        self.status = np.concatenate([self.status, status])
        self.actual_start = np.concatenate([self.actual_start, start])
        self.actual_end = np.concatenate([self.actual_end, end])


def _plan_keys(start: np.ndarray, minutes: np.ndarray, category: np.ndarray, provider: np.ndarray) -> np.ndarray:
    """What identifies a visit's plan, as one comparable string per visit."""
    parts = [pd.Series(start.astype("datetime64[s]").astype(str)), pd.Series(np.asarray(minutes).astype(np.int64).astype(str)), pd.Series(category, dtype=object).astype(str), pd.Series(provider, dtype=object).astype(str)]
    return (parts[0] + "|" + parts[1] + "|" + parts[2] + "|" + parts[3]).to_numpy(dtype=object)


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
    progress: Callable[[int, float], None] | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import visit rows from the files; see the module docstring."""
    started = time.perf_counter()
    report = ImportReport()
    known = _Known.from_store(store)
    q = Quarantine(quarantine)
    recorded_now = np.datetime64((now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "s")
    staff_seen = pd.DataFrame({"staff": pd.Series(dtype=object), "start": pd.Series(dtype="datetime64[s]"), "end": pd.Series(dtype="datetime64[s]")})
    try:
        for path in paths:
            for chunk in read_rows(path, chunk_rows=chunk_rows, encoding=mapping.encoding, delimiter=mapping.delimiter):
                batch, staff_seen = _import_chunk(chunk, mapping, pseudonymiser, known, report, q, strict, recorded_now, staff_seen)
                if len(batch) and not dry_run:
                    report.events_written += append_batch(store, batch)
                if progress:
                    progress(report.rows_read, time.perf_counter() - started)
        if not dry_run:
            store.checkpoint()
    finally:
        q.close()
    report.seconds = time.perf_counter() - started
    return report


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
    started = time.perf_counter()
    report = ImportReport()
    known = _Known.from_store(store)
    recorded_now = np.datetime64((now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "s")
    staff_seen = pd.DataFrame({"staff": pd.Series(dtype=object), "start": pd.Series(dtype="datetime64[s]"), "end": pd.Series(dtype="datetime64[s]")})
    for chunk in chunks:
        batch, staff_seen = _import_chunk(chunk, mapping, pseudonymiser, known, report, quarantine, strict, recorded_now, staff_seen)
        if len(batch) and not dry_run:
            report.events_written += append_batch(store, batch)
    if not dry_run:
        store.checkpoint()
    report.seconds = time.perf_counter() - started
    return report


def _import_chunk(
    chunk: Chunk,
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    known: _Known,
    report: ImportReport,
    q: Quarantine,
    strict: bool,
    recorded_now: np.datetime64,
    staff_seen: pd.DataFrame,
) -> tuple[EventBatch, pd.DataFrame]:
    raw = chunk.frame
    n = len(raw)
    report.rows_read += n
    frame = mapping.fill_defaults(raw.rename(columns=mapping.columns).reset_index(drop=True))  # positions and labels agree below
    missing_columns = [c for c in VISIT_REQUIRED if c not in frame and not (c == "provider" and mapping.default_provider)]
    if missing_columns:
        raise ImportError_(f"{chunk.path}: no column for {', '.join(missing_columns)} (map them with columns: in the mapping file)")
    for column in frame.columns:
        if frame[column].dtype == object and find_personnummer(frame[column]).any():
            report.columns_with_personnummer.add(str(column))

    reason = np.full(n, None, dtype=object)  # first failing check of each row

    def reject(mask: np.ndarray, why: str) -> None:
        new = mask & (reason == None)  # noqa: E711
        reason[new] = why

    # rows that are not visits
    skipped = np.zeros(n, dtype=bool)
    for rule in mapping.skip:
        col = frame[mapping.columns.get(rule.column, rule.column)] if mapping.columns.get(rule.column, rule.column) in frame else raw.get(rule.column)
        if col is None:
            raise ImportError_(f"{chunk.path}: skip rule names column {rule.column!r}, which the file does not have")
        values = col.astype(str).str.strip()
        hit = values.isin(rule.one_of or []) if rule.one_of else values == rule.equals
        hit = hit.to_numpy() & ~skipped
        report.skipped[rule.reason] += int(hit.sum())
        skipped |= hit

    cells = {c: _text(frame, c) for c in ("recipient", "provider", "visit_id", "category", "team", "staff", "status", "registration")}
    if mapping.default_provider:
        cells["provider"] = cells["provider"].fillna(mapping.default_provider)
    for column, table in mapping.values.items():
        if column in cells:
            cells[column] = cells[column].map(lambda v, t=table: t.get(v, v) if v is not None else None)
    for c in VISIT_REQUIRED:
        if c in cells:
            reject(cells[c].isna().to_numpy(), f"{c} missing")
    reject(frame["planned_start"].isna().to_numpy(), "planned_start missing")
    for c, allowed in (("category", [x.value for x in Category]), ("status", STATUSES), ("registration", [r.value for r in Registration])):
        bad = cells[c].notna().to_numpy() & ~cells[c].isin(allowed).to_numpy()
        reject(bad, f"{c} not one of {', '.join(allowed)} (map the source's values under values: {c})")
    for c in ("provider", "team"):
        reject(find_personnummer(cells[c]), f"a personal identity number in {c}")

    decimal = mapping.decimal or ("," if (mapping.delimiter or "") == ";" else ".")
    times = {}
    for c in ("planned_start", "planned_end", "actual_start", "actual_end", "cancelled_at", "recorded_at"):
        times[c], bad = parse_times(_text(frame, c), mapping)
        reject(bad, f"{c} is not a date and time" + (f" in the form {mapping.date_format}" if mapping.date_format else "") + " (or does not exist in local time)")
    for which in ("planned", "actual"):
        col = f"{which}_duration"
        if col in frame:
            unit = mapping.units.get(col)
            if unit is None:
                raise ImportError_(f"{chunk.path}: the unit of {col} is not declared (units: {{{col}: minutes | decimal_hours | h:mm}} in the mapping)")
            minutes, bad = parse_minutes(_text(frame, col), unit, decimal)
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
    recipient = pseudonymiser.many(cells["recipient"])
    from ersattning.domain import stable_id

    recipient_ids = np.array([stable_id("recipient", p).hex if p is not None else "" for p in pd.unique(recipient)], dtype=object)
    rid_of = dict(zip(pd.unique(recipient), recipient_ids, strict=True))
    rid = np.array([rid_of[p] for p in recipient], dtype=object)
    if known.recipients:
        reject(~pd.Series(rid).isin(known.recipients).to_numpy() & (reason == None), "unknown recipient (not in the store's decisions)")  # noqa: E711
    staff_cells = cells["staff"].fillna("").str.split(re.escape(mapping.staff_separator), regex=True)
    staff1 = pseudonymiser.many(staff_cells.str[0].str.strip().replace("", None))
    staff2 = pseudonymiser.many(staff_cells.str[1].str.strip().replace("", None) if staff_cells.str.len().max() > 1 else pd.Series([None] * n))
    reject(performed & pd.isna(staff1), "performed without staff")

    source_key = cells["visit_id"].where(cells["visit_id"].notna(), cells["recipient"].fillna("") + "|" + pd.Series(times["planned_start"].astype(str)) + "|" + cells["category"].fillna(""))
    vid = _uuid_hex_from_digest(pseudonymiser.many("visit:" + source_key.astype(str)))

    # one staff member cannot be in two visits at once (checked against earlier rows of this import too)
    ok_rows = (reason == None) & ~skipped & performed  # noqa: E711
    intervals = pd.DataFrame({"staff": np.concatenate([staff1[ok_rows], staff2[ok_rows]]), "start": np.concatenate([times["actual_start"][ok_rows]] * 2), "end": np.concatenate([times["actual_end"][ok_rows]] * 2), "row": np.concatenate([np.flatnonzero(ok_rows)] * 2)})
    intervals = intervals[intervals["staff"].notna()]
    both = pd.concat([staff_seen.assign(row=-1), intervals], ignore_index=True).sort_values(["staff", "start"], kind="stable")
    staff_code = pd.factorize(both["staff"])[0]
    start_s = both["start"].to_numpy().astype("datetime64[s]").astype(np.int64)
    end_s = pd.Series(both["end"].to_numpy().astype("datetime64[s]").astype(np.int64))
    # the latest end among the same staff member's earlier visits (sorted by start)
    before = end_s.groupby(staff_code).cummax().groupby(staff_code).shift(1).to_numpy()
    clash = (start_s < before - 60) & (both["row"].to_numpy() >= 0)  # more than a minute of overlap
    overlap_rows = both["row"].to_numpy()[clash].astype(np.int64)
    overlap = np.zeros(n, dtype=bool)
    overlap[overlap_rows] = True
    reject(overlap, "overlaps another visit of the same staff member")

    # a stored visit's plan cannot change through an import (there is no event for a new plan)
    stored_plan = _stored(known, known.plan, vid, None)
    row_plan = _plan_keys(times["planned_start"], np.maximum(1, np.nan_to_num(np.round(planned_minutes))), cells["category"].to_numpy(dtype=object), cells["provider"].to_numpy(dtype=object))
    reject(pd.notna(stored_plan) & (stored_plan != row_plan), "changes the plan (start, length, category or provider) of a visit already stored")
    # a stored outcome cannot turn into the other one (a cancelled visit later performed, or the reverse)
    stored = _stored(known, known.status, vid, -1).astype(np.int64)
    row_status = np.where(status == "performed", 1, np.where(np.char.startswith(status.astype(str), "cancelled"), 2, 0))
    reject((stored > 0) & (row_status > 0) & (stored != row_status), "conflicts with the outcome already stored for this visit")

    bad = (reason != None) & ~skipped  # noqa: E711
    reject_rows(chunk, bad, reason, q, report, strict)
    good = ~bad & ~skipped
    staff_seen = pd.concat([staff_seen, intervals[~np.isin(intervals["row"].to_numpy(), overlap_rows)][["staff", "start", "end"]]], ignore_index=True)
    return _events(chunk, good, vid, rid, cells, times, status, planned_minutes, staff1, staff2, known, report, recorded_now), staff_seen


def _split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    raw = np.frombuffer(bytes.fromhex("".join(i.decode() for i in ids.tolist())), dtype=">u8").reshape(-1, 2).astype(np.uint64)
    return raw[:, 0], raw[:, 1]


def _stored(known: _Known, values: np.ndarray, ids: np.ndarray, fill: object) -> np.ndarray:
    """The stored value of each row's visit; ``fill`` for visits the store does not have."""
    out = np.full(len(ids), fill, dtype=values.dtype if fill is not None else object)
    if not len(ids) or not len(known.index):
        return out
    hi, lo = _split_ids(ids)
    pos = known.index.get_indexer(lo)
    ok = pos >= 0
    ok[ok] &= known.hi[pos[ok]] == hi[ok]
    out[ok] = values[pos[ok]]
    return out


def _events(chunk, good, vid, rid, cells, times, status, planned_minutes, staff1, staff2, known: _Known, report: ImportReport, recorded_now) -> EventBatch:
    """New visits get their planned event and outcome; known ones only what changed."""
    batch = EventBatch.empty()
    idx = np.flatnonzero(good)
    if not len(idx):
        return batch
    # the last row of a visit within the chunk wins
    ids = vid[idx]
    last = ~pd.Series(ids).duplicated(keep="last").to_numpy()
    report.rows_unchanged += int((~last).sum())
    idx, ids = idx[last], ids[last]
    hi, lo = _split_ids(ids)
    pos = known.index.get_indexer(lo)
    exists = pos >= 0
    if exists.any() and (known.hi[pos[exists]] != hi[exists]).any():
        raise ImportError_("two visits share the low 64 bits of their ids")

    def was(values: np.ndarray, fill: object) -> np.ndarray:
        """The stored value of each row's visit (``fill`` for visits new to the store)."""
        out = np.full(len(pos), fill, dtype=values.dtype)
        out[exists] = values[pos[exists]]
        return out

    old_status = was(known.status, -1)
    old_version = was(known.version, 0)
    recorded = times["recorded_at"][idx]
    performed = status[idx] == "performed"
    cancelled = np.char.startswith(status[idx].astype(str), "cancelled")
    outcome_status = np.where(performed, 1, np.where(cancelled, 2, 0))

    # new visits
    new = ~exists
    n_idx = idx[new]
    if len(n_idx):
        planned_rec = np.where(np.isnat(recorded[new]), times["planned_start"][n_idx], recorded[new])
        batch.add(
            encoder_for(Visit.Planned),
            ids[new],
            1,
            {
                "timestamp": planned_rec,
                "recipient_id": pd.Categorical(rid[n_idx]),
                "provider": pd.Categorical(cells["provider"].to_numpy()[n_idx]),
                "team": pd.Categorical(cells["team"].fillna(cells["provider"]).to_numpy()[n_idx]),
                "category": pd.Categorical(cells["category"].to_numpy()[n_idx]),
                "planned_start": times["planned_start"][n_idx],
                "planned_minutes": np.maximum(1, np.round(planned_minutes[n_idx])).astype(np.int64),
                "staff_planned": np.where(pd.notna(staff2[n_idx]), 2, 1),
            },
        )
    # outcomes for new visits, and for known visits still only planned
    needs_outcome = (new | (old_status == 0)) & (outcome_status > 0)
    version = np.where(new, 2, old_version + 1)
    _outcomes(batch, idx, ids, needs_outcome, version, performed, cancelled, status, cells, times, staff1, staff2, recorded, recorded_now)

    # known performed visits whose registered times changed: a correction, recorded now
    corr = performed & (old_status == 1)
    corr &= (was(known.actual_start, np.datetime64("NaT")) != times["actual_start"][idx]) | (was(known.actual_end, np.datetime64("NaT")) != times["actual_end"][idx])
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
        )
    changed = new | needs_outcome | corr
    report.rows_imported += int(changed.sum())
    report.rows_unchanged += int((~changed).sum())
    # remember what this chunk adds, for later chunks of the same import
    n_rows = idx[new]
    plan = _plan_keys(times["planned_start"][n_rows], np.maximum(1, np.round(planned_minutes[n_rows])), cells["category"].to_numpy(dtype=object)[n_rows], cells["provider"].to_numpy(dtype=object)[n_rows])
    known.add(lo[new], hi[new], np.where(outcome_status[new] > 0, 2, 1), outcome_status[new], times["actual_start"][n_rows], times["actual_end"][n_rows], plan)
    upd = np.flatnonzero(exists & (needs_outcome | corr))
    if len(upd):
        p = pos[upd]
        known.version[p] = known.version[p] + 1
        known.status[p] = np.maximum(known.status[p], outcome_status[upd])
        known.actual_start[p] = times["actual_start"][idx[upd]]
        known.actual_end[p] = times["actual_end"][idx[upd]]
    return batch


def _outcomes(batch, idx, ids, needs, version, performed, cancelled, status, cells, times, staff1, staff2, recorded, recorded_now) -> None:
    p = needs & performed
    if p.any():
        rows = idx[p]
        # the staff tuple of each row, built once per distinct pair
        pair = pd.Series(staff1[rows], dtype=object).fillna("") + "|" + pd.Series(staff2[rows], dtype=object).fillna("")
        codes, uniques = pd.factorize(pair)
        tuples = [tuple(x for x in u.split("|") if x) for u in uniques]
        staff = pd.Categorical.from_codes(codes, pd.Index(tuples, dtype=object, tupleize_cols=False))
        reg = cells["registration"].fillna("mobile").to_numpy()[rows]
        end = times["actual_end"][rows]
        batch.add(
            encoder_for(Visit.Performed),
            ids[p],
            version[p],
            {"timestamp": np.where(np.isnat(recorded[p]), end, recorded[p]), "actual_start": times["actual_start"][rows], "actual_end": end, "staff": staff, "registration": pd.Categorical(reg)},
        )
    c = needs & cancelled
    if c.any():
        rows = idx[c]
        by = np.where(status[rows] == "cancelled_by_provider", CancelledBy.provider.value, CancelledBy.recipient.value)
        why = np.where(by == CancelledBy.provider.value, CancelReason.staffing.value, CancelReason.declined.value)
        at = np.where(np.isnat(times["cancelled_at"][rows]), times["planned_start"][rows], times["cancelled_at"][rows])
        batch.add(
            encoder_for(Visit.Cancelled),
            ids[c],
            version[c],
            {"timestamp": np.where(np.isnat(recorded[c]), at, recorded[c]), "by": pd.Categorical(by), "reason": pd.Categorical(why), "cancelled_at": at},
        )

"""Importing decisions and stays: the recipient side of a service history.

Decisions enrol recipients not yet in the store (with their provider choice),
grant new decisions, revise a decision whose granted time changed and end one
that gained an end date. Stays start (and end) hospital and short-term stays.
Each chunk becomes one transaction of recipient events whose versions follow
what the store already holds; re-importing the same rows adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ersattning import projection
from ersattning.domain import Area, Category, Per, Recipient, StayKind, stable_id
from ersattning.ingest.cells import outside_window, parse_minutes, parse_times, text_column, window_reason
from ersattning.ingest.detect import file_decimal, note_decimal
from ersattning.ingest.mapping import DECISION_REQUIRED, STAY_REQUIRED, Mapping
from ersattning.ingest.options import DEFAULT_OPTIONS, ImportOptions
from ersattning.ingest.readers import Chunk
from ersattning.ingest.report import ImportReport, Quarantine
from ersattning.ingest.rows import append_chunks, finish_rows, first_reasons, reject_numbers, start_frame
from ersattning.ingest.strict import Paths, checked_first
from ersattning.privacy import Pseudonymiser, canonical_ids
from ersattning.store import Store
from ersattning.store.bulk import EventBatch, encoder_for

_EVENTS = {
    "enrolled": Recipient.Enrolled,
    "chosen": Recipient.ProviderChosen,
    "granted": Recipient.DecisionGranted,
    "revised": Recipient.DecisionRevised,
    "ended": Recipient.DecisionEnded,
    "stay_started": Recipient.StayStarted,
    "stay_ended": Recipient.StayEnded,
}


class _RecipientState:
    """What the store knows about recipients: versions, providers, decisions and stays."""

    def __init__(self, store: Store) -> None:
        cached = projection.update(store)
        ev = cached.entity_events
        self.version: dict[str, int] = ev.groupby("aggregate")["version"].max().to_dict() if len(ev) else {}
        tables = projection.fold_entities(ev) if len(ev) else None
        self.provider: dict[str, str | None] = {}
        self.decisions: dict[tuple[str, str], tuple[int, bool]] = {}  # (recipient, decision) → (granted minutes now, ended)
        self.stays: dict[tuple[str, str], bool] = {}  # (recipient, stay) → ended
        self.open_stay: dict[str, str] = {}
        if tables is not None:
            rec = tables["recipients"]
            self.provider = dict(zip(rec["recipient"], rec["provider"], strict=True))
            d = tables["decisions"]
            for r, did, minutes, valid_to in zip(d["recipient"], d["decision_id"], d["granted_minutes"], d["valid_to"], strict=True):
                self.decisions[(r, did)] = (int(minutes), not pd.isna(valid_to))  # the last segment wins
            s = tables["stays"]
            for r, sid, end in zip(s["recipient"], s["stay_id"], s["end"], strict=True):
                self.stays[(r, sid)] = not pd.isna(end)
                if pd.isna(end):
                    self.open_stay[r] = sid


def _dates(values: pd.Series, mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Dates (YYYY-MM-DD or the mapping's format) → datetime64[D], and a mask of unreadable cells."""
    present = values.notna().to_numpy()
    parsed = pd.to_datetime(values, format=mapping.date_format or "ISO8601", errors="coerce")
    out = parsed.to_numpy().astype("datetime64[D]")
    return out, present & np.isnat(out)


def _exclusive_end(days: np.ndarray, mapping: Mapping) -> np.ndarray:
    """End dates as the store keeps them, exclusive (the day after the last day): a source whose end date
    is the last day itself (``end_dates: through``) is moved one day on (docs/models.md, "End dates")."""
    return days + np.timedelta64(1, "D") if mapping.end_dates == "through" else days


def _local_morning(days: np.ndarray, mapping: Mapping) -> np.ndarray:
    """A recorded time for rows that do not say when they were recorded: the day's morning, local time."""
    local = pd.DatetimeIndex(days.astype("datetime64[s]") + np.timedelta64(8 * 3600, "s"))
    return local.tz_localize(mapping.timezone, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")


def _add_events(batch: EventBatch, rows: list[dict], state: _RecipientState) -> None:
    """Recipient events in row order, versions counted on from what the store holds."""
    if not rows:
        return
    frame = pd.DataFrame(rows)
    frame["seq"] = np.arange(len(frame))
    frame = frame.sort_values(["recipient", "seq"], kind="stable")
    base = frame["recipient"].map(lambda r: state.version.get(r, 0)).to_numpy()
    frame["version"] = base + frame.groupby("recipient").cumcount().to_numpy() + 1
    for r, v in frame.groupby("recipient")["version"].max().items():
        state.version[r] = int(v)
    for event, event_class in _EVENTS.items():
        part = frame[frame["event"] == event]
        if not len(part):
            continue
        fields = [f for f in part.columns if f not in ("recipient", "seq", "version", "event") and part[f].notna().any()]
        cols = {f: part[f].to_numpy() for f in fields}
        if event == "granted" and "valid_to" not in cols:
            cols["valid_to"] = np.full(len(part), np.datetime64("NaT"), dtype="datetime64[D]")
        for f, v in list(cols.items()):
            if f in ("enrolled_on", "chosen_on", "valid_from", "valid_to", "ended_on", "start", "end"):
                cols[f] = np.array(v, dtype="datetime64[D]")
            elif f == "timestamp":
                cols[f] = np.array(v, dtype="datetime64[s]")
            elif f in ("birth_year", "granted_minutes"):
                cols[f] = np.asarray(v, dtype=np.int64)
        batch.add(encoder_for(event_class), part["recipient"].to_numpy().astype("S32"), part["version"].to_numpy(), cols)


RowsOf = Callable[[Chunk, Mapping, Pseudonymiser, "_RecipientState", Quarantine, ImportReport, bool, np.datetime64], list[dict[str, Any]]]


def _run(store: Store, paths: list[str], mapping: Mapping, pseudonymiser: Pseudonymiser, rows_of: RowsOf, options: ImportOptions) -> ImportReport:
    """Read the files chunk by chunk; each chunk's recipient events go in as one transaction."""
    report = ImportReport()
    state = _RecipientState(store)
    q = Quarantine(options.quarantine)
    recorded_now = np.datetime64((options.now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None), "s")

    def batch_of(chunk: Chunk) -> EventBatch:
        batch = EventBatch.empty()
        _add_events(batch, rows_of(chunk, mapping, pseudonymiser, state, q, report, options.strict, recorded_now), state)
        return batch

    return append_chunks(store, paths, mapping, options, report, q, batch_of)


def import_decisions(store: Store, paths: Paths, mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions = DEFAULT_OPTIONS) -> ImportReport:
    """Import decision rows; see the module docstring."""
    return checked_first(_decisions, store, paths, mapping, pseudonymiser, options)


def import_stays(store: Store, paths: Paths, mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions = DEFAULT_OPTIONS) -> ImportReport:
    """Import stay rows; see the module docstring."""
    return checked_first(_stays, store, paths, mapping, pseudonymiser, options)


def _decisions(store: Store, paths: list[str], mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions) -> ImportReport:
    return _run(store, paths, mapping, pseudonymiser, _decision_rows, options)


def _stays(store: Store, paths: list[str], mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions) -> ImportReport:
    return _run(store, paths, mapping, pseudonymiser, _stay_rows, options)


def _decision_rows(chunk: Chunk, mapping: Mapping, pseudonymiser: Pseudonymiser, state: _RecipientState, q: Quarantine, report: ImportReport, strict: bool, recorded_now: np.datetime64) -> list[dict]:
    """Enrol, choose provider, grant, revise and end, as the chunk's rows say."""
    frame = start_frame(chunk, mapping, DECISION_REQUIRED, report)
    n = len(frame)
    reason, reject = first_reasons(n)

    cells = {c: text_column(frame, c) for c in ("recipient", "decision_id", "provider", "category", "per", "area", "birth_year")}
    if mapping.default_provider:
        cells["provider"] = cells["provider"].fillna(mapping.default_provider)
    for column, table in mapping.values.items():
        if column in cells:
            cells[column] = cells[column].map(lambda v, t=table: t.get(v, v) if v is not None else None)
    for c in ("recipient", "decision_id", "category"):
        reject(cells[c].isna().to_numpy(), f"{c} missing")
    cells["per"] = cells["per"].fillna("month")
    cells["area"] = cells["area"].fillna("urban")
    for c, allowed in (("category", [x.value for x in Category]), ("per", [x.value for x in Per]), ("area", [x.value for x in Area])):
        reject(cells[c].notna().to_numpy() & ~cells[c].isin(allowed).to_numpy(), f"{c} not one of {', '.join(allowed)}")
    birth = pd.to_numeric(cells["birth_year"], errors="coerce")
    reject(cells["birth_year"].notna().to_numpy() & ~birth.between(1880, 2030).to_numpy(), "birth_year is not a year")
    granted = text_column(frame, "granted")
    decimal = file_decimal(chunk.path, mapping)  # the mapping's, else the file's (detect.py)
    minutes, bad = parse_minutes(granted, mapping.units.get("granted", "minutes"), decimal)
    note_decimal(report, chunk.path, mapping, decimal, granted)
    reject(bad | np.isnan(minutes), "granted missing or not in the declared unit")
    valid_from, bad = _dates(text_column(frame, "valid_from"), mapping)
    reject(outside_window(valid_from), window_reason("valid_from"))
    reject(bad | np.isnat(valid_from), "valid_from missing or not a date")
    valid_to, bad = _dates(text_column(frame, "valid_to"), mapping)
    reject(outside_window(valid_to), window_reason("valid_to"))
    reject(bad, "valid_to is not a date")
    reject(~np.isnat(valid_to) & (valid_to < valid_from), "valid_to before valid_from")
    valid_to = _exclusive_end(valid_to, mapping)
    recorded, bad = parse_times(text_column(frame, "recorded_at"), mapping)
    reject(outside_window(recorded), window_reason("recorded_at"))
    reject(bad, "recorded_at is not a date and time")
    reject_numbers(cells, ("provider", "decision_id"), reject)
    good = finish_rows(chunk, reason, q, report, strict)

    pseudonym = pseudonymiser.many(canonical_ids(cells["recipient"], valid_from))
    rows: list[dict] = []
    morning = _local_morning(np.where(np.isnat(valid_from), np.datetime64("2000-01-01"), valid_from), mapping)
    enrolled_in_chunk: set[str] = set()
    for i in np.flatnonzero(good):
        rid = stable_id("recipient", pseudonym[i]).hex
        at = recorded[i] if not np.isnat(recorded[i]) else morning[i]
        did, g = cells["decision_id"].iloc[i], int(round(minutes[i]))
        provider = cells["provider"].iloc[i]
        changed = False
        if rid not in state.version and rid not in enrolled_in_chunk:
            year = int(birth.iloc[i]) if not pd.isna(birth.iloc[i]) else 0
            rows.append({"recipient": rid, "event": "enrolled", "timestamp": at, "pseudonym": pseudonym[i], "birth_year": year, "area": cells["area"].iloc[i], "enrolled_on": valid_from[i]})
            enrolled_in_chunk.add(rid)
            changed = True
        if provider is not None and state.provider.get(rid) != provider:
            rows.append({"recipient": rid, "event": "chosen", "timestamp": at, "provider": provider, "chosen_on": valid_from[i]})
            state.provider[rid] = provider
            changed = True
        known = state.decisions.get((rid, did))
        if known is None:
            rows.append({"recipient": rid, "event": "granted", "timestamp": at, "decision_id": did, "category": cells["category"].iloc[i], "granted_minutes": g, "per": cells["per"].iloc[i], "valid_from": valid_from[i], "valid_to": valid_to[i]})
            state.decisions[(rid, did)] = (g, not np.isnat(valid_to[i]))
            changed = True
        else:
            minutes_now, ended = known
            later = recorded[i] if not np.isnat(recorded[i]) else recorded_now
            if g != minutes_now and not ended:
                rows.append({"recipient": rid, "event": "revised", "timestamp": later, "decision_id": did, "granted_minutes": g, "valid_from": valid_from[i]})
                changed = True
            if not np.isnat(valid_to[i]) and not ended:
                rows.append({"recipient": rid, "event": "ended", "timestamp": later, "decision_id": did, "ended_on": valid_to[i]})
                ended = True
                changed = True
            state.decisions[(rid, did)] = (g if not known[1] else minutes_now, ended)
        if changed:
            report.rows_imported += 1
        else:
            report.rows_unchanged += 1
    return rows


def _stay_rows(chunk: Chunk, mapping: Mapping, pseudonymiser: Pseudonymiser, state: _RecipientState, q: Quarantine, report: ImportReport, strict: bool, recorded_now: np.datetime64) -> list[dict]:
    """Stays started and ended, as the chunk's rows say."""
    frame = start_frame(chunk, mapping, STAY_REQUIRED, report)
    n = len(frame)
    reason, reject = first_reasons(n)

    cells = {c: text_column(frame, c) for c in ("recipient", "stay_id", "kind")}
    for column, table in mapping.values.items():
        if column in cells:
            cells[column] = cells[column].map(lambda v, t=table: t.get(v, v) if v is not None else None)
    reject(cells["recipient"].isna().to_numpy(), "recipient missing")
    allowed = [k.value for k in StayKind]
    reject(~cells["kind"].isin(allowed).to_numpy(), f"kind not one of {', '.join(allowed)}")
    start, bad = _dates(text_column(frame, "start"), mapping)
    reject(outside_window(start), window_reason("start"))
    reject(bad | np.isnat(start), "start missing or not a date")
    end, bad = _dates(text_column(frame, "end"), mapping)
    reject(outside_window(end), window_reason("end"))
    reject(bad, "end is not a date")
    reject(~np.isnat(end) & (end < start), "end before start")
    end = _exclusive_end(end, mapping)
    recorded, bad = parse_times(text_column(frame, "recorded_at"), mapping)
    reject(outside_window(recorded), window_reason("recorded_at"))
    reject(bad, "recorded_at is not a date and time")
    pseudonym = pseudonymiser.many(canonical_ids(cells["recipient"], start))
    rid = np.array([stable_id("recipient", p).hex if p is not None else "" for p in pseudonym], dtype=object)
    reject(~pd.Series(rid).isin(set(state.version)).to_numpy(), "unknown recipient (import the decisions first)")
    good = finish_rows(chunk, reason, q, report, strict)
    stay_ids = cells["stay_id"].where(cells["stay_id"].notna(), pd.Series(start.astype(str)))
    rows: list[dict] = []
    order = np.flatnonzero(good)[np.argsort(start[good], kind="stable")]
    for i in order:
        r, sid = rid[i], "S" + pseudonymiser.one(f"{pseudonym[i]}|{stay_ids.iloc[i]}")[:16]
        at_start = recorded[i] if not np.isnat(recorded[i]) else _local_morning(start[i : i + 1], mapping)[0]
        known_ended = state.stays.get((r, sid))
        changed = False
        if known_ended is None:
            if r in state.open_stay:
                reason[i] = "another stay of this recipient is still open"
                report.quarantined[reason[i]] += 1
                q.write(chunk, np.array([i]), np.array([reason[i]], dtype=object))
                continue
            rows.append({"recipient": r, "event": "stay_started", "timestamp": at_start, "stay_id": sid, "kind": cells["kind"].iloc[i], "start": start[i]})
            state.stays[(r, sid)] = False
            state.open_stay[r] = sid
            known_ended = False
            changed = True
        if not known_ended and not np.isnat(end[i]):
            at_end = recorded[i] if not np.isnat(recorded[i]) else _local_morning(end[i : i + 1], mapping)[0]
            rows.append({"recipient": r, "event": "stay_ended", "timestamp": max(at_end, at_start), "stay_id": sid, "end": end[i]})
            state.stays[(r, sid)] = True
            state.open_stay.pop(r, None)
            changed = True
        report.rows_imported += int(changed)
        report.rows_unchanged += int(not changed)
    return rows

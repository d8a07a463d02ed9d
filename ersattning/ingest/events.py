"""Importing event logs (``--kind events``): events are paired into visits, then imported as visits.

Process-mining tools export a service history as one row per event: a case,
an activity, a timestamp and attributes (XES, IEEE 1849, or the same columns
in CSV or Parquet). This module reads such rows with the existing readers,
pairs the events of a visit into one visit row with the canonical visit
columns, and hands those rows to the visit import
(:func:`ersattning.ingest.visits.import_visit_chunks`), so validation,
pseudonymisation, quarantine and idempotence are the visit import's.

Columns
    ``case``, ``activity``, ``timestamp`` are required; ``lifecycle``,
    ``resource``, ``duration``, ``recipient``, ``provider``, ``team`` and
    ``registration`` are optional. The process-mining names
    ``case:concept:name``, ``concept:name``, ``time:timestamp``,
    ``lifecycle:transition`` and ``org:resource`` are taken as the canonical
    names without a mapping; a mapping's ``columns:`` renames others (XES trace
    attributes arrive as ``case:<key>``, e.g. ``case:ersattning:provider``).

What a case is (``events: {case: ...}`` in the mapping)
    ``recipient`` (default — assumption: a trace per recipient, as
    ``tests/data/log.xes`` and care-system exports have it): the case id is the
    recipient's id. ``visit``: the case id is the visit's source key, the
    recipient comes from the ``recipient`` column, and all events of a case
    are one group (a schedule without a resource still pairs); the activity,
    resource and other attributes are the closing event's, else the start's,
    else the schedule's. A second visit in one case is quarantined.

Pairing
    Events are grouped by (case, activity, resource) — by case alone with
    ``case: visit`` — and taken in file order;
    within a group registered times must not go back (a start, complete or
    abort earlier than one before it is quarantined: "not in time order"), so
    pairing never depends on how the file is cut into chunks. A visit is::

        [schedule] (start (complete | abort) | complete | withdraw | abort)

    or a lone ``schedule`` (a visit planned and nothing else known: status
    ``planned``). ``schedule`` gives the planned start (and with a duration
    the planned length); ``start`` the registered start; ``complete`` the
    registered end. A ``complete`` without a ``start`` needs a duration (or
    the mapping's ``events: {instant_minutes: N}``) and is a visit *ending* at
    its timestamp. An empty lifecycle is ``complete`` (the XES standard's
    default). Other lifecycle values (``suspend``, ``resume``, ``assign`` …)
    are quarantined unless ``events: {transitions: {value: role}}`` maps them.

    Assumptions, each a default a mapping can change where noted:

    * Without a ``schedule`` the plan is what happened: planned start =
      registered start, planned length = registered length (the visit import's
      own rule for rows without a plan).
    * A schedule without a duration: planned length = registered length; if
      nothing was registered (withdrawn, aborted before start, only planned)
      the visit has no planned length and is quarantined.
    * ``withdraw`` (cancelled before it started) → ``cancelled_by_recipient``
      (most cancellations before a home-care visit are the recipient's
      "avbokning"), cancelled at the withdraw's timestamp; it needs its
      schedule next to it in its group (else there is no planned time).
    * A schedule's timestamp is the planned start (as care systems export a
      plan), not when the plan was made. A log sorted by time may list a
      start before its schedule (staff came early) or a withdraw before it
      (cancelled the day before): a schedule directly after a start or a
      withdraw is taken as theirs. Only registered times (start, complete,
      abort) must not go back within a group.
    * ``ate_abort`` and ``pi_abort`` (aborted) → ``cancelled_by_provider``:
      the one doing the activity (or the process) stopped it, and time before
      an abort is not counted as performed. ``events: {outcomes: {ate_abort:
      performed}}`` counts it instead (the abort then ends the visit and needs
      a start). An abort needs a schedule or a start before it.
    * A resource cell may hold several staff ids (``A|B``): one visit with two
      staff. Two resources with their own events on the same activity at the
      same time are two visits.
    * Source key (what makes re-imports idempotent): with ``case: visit`` the
      case id; with ``case: recipient`` case + activity + resource + the
      timestamp of the visit's first event. A visit's events must be in one
      file: open events at the end of a file are quarantined.

Unpaired events (a start never completed, a second start, a complete without
start or duration, a withdraw or abort with nothing before it, a schedule
whose visit was rejected) are quarantined with their file, line (XES: the line
of the ``<event>`` tag) and reason — never dropped; ``skip:`` rules (on source
or canonical columns) skip events and count them. When the visit import rejects
a visit, all its events are quarantined with the visit's reason. Pairs may span
chunks: open events are carried to the next chunk, so the result does not
depend on the chunk size. ``strict`` checks everything in a dry pass first and
writes nothing on the first problem.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ersattning.ingest.cells import outside_window, parse_local_times, parse_minutes, text_column, window_reason
from ersattning.ingest.detect import file_decimal, note_decimal, require_staff_separator
from ersattning.ingest.mapping import EVENT_REQUIRED, PROCESS_MINING_NAMES, Mapping
from ersattning.ingest.options import DEFAULT_OPTIONS, ImportOptions
from ersattning.ingest.readers import Chunk, read_rows_or_header
from ersattning.ingest.report import ImportError_, ImportReport, Quarantine
from ersattning.ingest.strict import Paths, checked_first
from ersattning.ingest.visits import import_visit_chunks
from ersattning.privacy import Pseudonymiser, canonical_ids, find_personnummer
from ersattning.store import Store

SCHEDULE, START, COMPLETE, WITHDRAW, ABORT = range(5)
_ROLES = {"schedule": SCHEDULE, "start": START, "complete": COMPLETE, "withdraw": WITHDRAW, "abort": ABORT}
STANDARD_TRANSITIONS = {
    "schedule": "schedule",
    "start": "start",
    "complete": "complete",
    "withdraw": "withdraw",
    "ate_abort": "abort",
    "pi_abort": "abort",
}
DEFAULT_OUTCOMES = {
    "withdraw": "cancelled_by_recipient",
    "abort": "cancelled_by_provider",
}  # by role; assumptions, see the module docstring
_NONE, _OPEN, _END = -1, -2, -3  # no event before / the group continues in the next chunk / the file ended
_SEP = "\x1f"
VISIT_FRAME_COLUMNS = [
    "recipient",
    "provider",
    "team",
    "visit_id",
    "category",
    "planned_start",
    "planned_end",
    "actual_start",
    "actual_end",
    "staff",
    "status",
    "cancelled_at",
    "registration",
]


REPEATED_HOUR_EVENTS = (
    "event times in the repeated autumn hour (read as the first occurrence; a start, complete or abort as the second "
    "when the first would go back in time within its case)"
)


@dataclass
class EventReport(ImportReport):
    """Counts of an event import: events read, skipped and quarantined (by reason); visits imported."""

    visits_made: int = 0

    def summary_lines(self) -> list[str]:
        lines = [
            f"events read {self.rows_read:,}, paired into {self.visits_made:,} visits: imported {self.rows_imported:,}, already in the store {self.rows_unchanged:,}; "
            f"events skipped {sum(self.skipped.values()):,}, quarantined {sum(self.quarantined.values()):,}; {self.events_written:,} events written"
        ]
        lines += [f"  skipped ({reason}): {n:,} events" for reason, n in sorted(self.skipped.items())]
        lines += [f"  quarantined ({reason}): {n:,} events" for reason, n in sorted(self.quarantined.items())]
        lines += [f"  {note}: {n:,}" for note, n in sorted(self.notes.items())]
        if self.columns_with_personnummer:
            lines.append(
                f"  personal identity numbers found in: {', '.join(sorted(self.columns_with_personnummer))} (never stored in clear)"
            )
        return lines


@dataclass
class _VisitChunk(Chunk):
    """Visit rows made from events, with the events each came from (for the quarantine)."""

    events: pd.DataFrame = field(default_factory=pd.DataFrame)  # the source rows of the events, as read
    event_lines: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    event_of: np.ndarray = field(default_factory=lambda: np.empty((0, 3), np.int64))  # (visits, 3) positions in ``events`` (schedule, start, closing), -1 for none


class _EventQuarantine(Quarantine):
    """Quarantined events as CSV (file, line, reason, the event's cells); counts events by reason."""

    def __init__(self, path: str | Path | None, report: EventReport) -> None:
        super().__init__(path)
        self.report = report

    def write(self, chunk: Chunk, rows: np.ndarray, reasons: np.ndarray, counted: np.ndarray | None = None) -> None:
        """Visits the visit import rejected: all their events, with the visit's reason."""
        assert isinstance(chunk, _VisitChunk)
        pos = chunk.event_of[rows]
        counted = reasons if counted is None else counted
        reasons = np.repeat(np.asarray(reasons, dtype=object), 3).reshape(-1, 3)
        counted = np.repeat(np.asarray(counted, dtype=object), 3).reshape(-1, 3)
        have = pos >= 0
        pos, reasons, counted = pos[have], reasons[have], counted[have]
        order = np.argsort(chunk.event_lines[pos], kind="stable")
        self.events(chunk.path, chunk.events.iloc[pos[order]], chunk.event_lines[pos[order]], reasons[order], counted[order])

    def events(self, path: str, raw: pd.DataFrame, lines: np.ndarray, reasons: np.ndarray, counted: np.ndarray | None = None) -> None:
        for why in reasons if counted is None else counted:
            self.report.quarantined[why] += 1
        if self.path is None or not len(raw):
            return
        writerow, columns = self.rows(self.path, list(raw.columns))
        frame = raw.reindex(columns=columns)
        for line, reason, values in zip(lines, reasons, frame.itertuples(index=False), strict=True):
            writerow(
                [
                    path,
                    int(line),
                    reason,
                    *("" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v for v in values),
                ]
            )


def import_events(store: Store, paths: Paths, mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions = DEFAULT_OPTIONS) -> EventReport:
    """Import event rows from the files as visits; see the module docstring."""
    return checked_first(_run, store, paths, mapping, pseudonymiser, options)


def _visit_mapping(mapping: Mapping) -> Mapping:
    """The mapping the visit import gets: the rows are already canonical, their times UTC."""
    values = {k: v for k, v in mapping.values.items() if k in ("category", "registration", "provider", "team")}
    return Mapping(
        values=values,
        timezone=mapping.timezone,
        default_provider=mapping.default_provider,
        staff_separator=mapping.staff_separator,
    )


def _run(store: Store, paths: list[str], mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions) -> EventReport:
    started = time.perf_counter()
    report = EventReport()
    q = _EventQuarantine(options.quarantine, report)
    try:
        chunks = _visit_chunks(paths, mapping, report, q, options, started)
        visits = import_visit_chunks(store, chunks, _visit_mapping(mapping), pseudonymiser, q, options)
    finally:
        q.close()
    report.rows_imported, report.rows_unchanged, report.events_written = (
        visits.rows_imported,
        visits.rows_unchanged,
        visits.events_written,
    )
    report.seconds = time.perf_counter() - started
    return report


def _visit_chunks(paths: list[str], mapping: Mapping, report: EventReport, q: _EventQuarantine, options: ImportOptions, started: float) -> Iterator[_VisitChunk]:
    for path in paths:
        pairer = _Pairer(mapping, report, q, options.strict)
        for chunk in read_rows_or_header(path, chunk_rows=options.chunk_rows, encoding=mapping.encoding, delimiter=mapping.delimiter):
            visits = pairer.add(chunk)
            if visits is not None:
                yield visits
            if options.progress:
                options.progress(report.rows_read, time.perf_counter() - started, None)
        visits = pairer.finish()
        if visits is not None:
            yield visits


def _take(values: np.ndarray, pos: np.ndarray, fill: object) -> np.ndarray:
    """values[pos], with ``fill`` where pos is -1."""
    out = np.full(len(pos), fill, dtype=values.dtype if fill is not None else object)
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return out


def _iso(times: np.ndarray) -> np.ndarray:
    """UTC datetime64[s] → ISO 8601 text with Z (None for NaT), which the visit import reads back as UTC."""
    out = np.full(len(times), None, dtype=object)
    ok = ~np.isnat(times)
    out[ok] = np.char.add(np.datetime_as_string(times[ok], unit="s"), "Z").astype(object)
    return out


class _Pairer:
    """Pairs the events of one file into visits, chunk by chunk, carrying open events to the next chunk."""

    def __init__(self, mapping: Mapping, report: EventReport, q: _EventQuarantine, strict: bool) -> None:
        self.mapping = mapping
        self.report = report
        self.q = q
        self.strict = strict
        self.path = ""  # the file being read (set by add)
        self.carry: pd.DataFrame | None = None  # parsed events still open (columns below), with their source rows
        self.carry_raw: pd.DataFrame | None = None
        self.last_time = pd.Series(dtype="datetime64[s]")  # the latest timestamp seen in each group
        self.seen_keys = np.empty(0, dtype=object)  # source keys of the visits made so far from this file
        self.first_problem: tuple[int, str] | None = None
        self.rejected: list[tuple[pd.DataFrame, np.ndarray, np.ndarray]] = []  # this chunk's, written in line order
        self.transitions = {**STANDARD_TRANSITIONS, **mapping.events.transitions}
        self.decimal: str = mapping.decimal or "."  # each file's own when the mapping does not say (add)

    # -- reading events ---------------------------------------------------------------------

    def add(self, chunk: Chunk) -> _VisitChunk | None:
        self.path = chunk.path
        self.decimal = file_decimal(chunk.path, self.mapping)  # the mapping's, else the file's (detect.py)
        require_staff_separator(chunk, self.mapping, "resource")
        self.report.rows_read += len(chunk)
        raw = chunk.frame.reset_index(drop=True)
        events, raw = self._parse(chunk, raw)
        return self._stop(self._pair(events, raw, final=False))

    def finish(self) -> _VisitChunk | None:
        if self.carry is None or self.carry_raw is None or not len(self.carry):
            return None
        return self._stop(self._pair(self.carry.iloc[:0], self.carry_raw.iloc[:0], final=True))

    def _stop(self, visits: _VisitChunk | None) -> _VisitChunk | None:
        if self.first_problem is not None:
            line, reason = self.first_problem
            raise ImportError_(f"{self.path}:{line}: {reason} (--strict: nothing was written)")
        if self.rejected:
            lines = np.concatenate([x[1] for x in self.rejected])
            order = np.argsort(lines, kind="stable")
            raw = pd.concat([x[0] for x in self.rejected], ignore_index=True).iloc[order]
            self.q.events(self.path, raw, lines[order], np.concatenate([x[2] for x in self.rejected])[order])
            self.rejected = []
        return visits

    def _reject(self, raw: pd.DataFrame, events: pd.DataFrame, bad: np.ndarray, reason: np.ndarray) -> None:
        if not bad.any():
            return
        idx = np.flatnonzero(bad)
        lines = events["line"].to_numpy()[idx]
        order = np.argsort(lines, kind="stable")
        idx, lines = idx[order], lines[order]
        if self.strict:  # the chunk's first problem by line stops the import (see _stop)
            if self.first_problem is None or lines[0] < self.first_problem[0]:
                self.first_problem = (int(lines[0]), str(reason[idx[0]]))
            return
        self.rejected.append((raw.iloc[idx], lines, reason[idx]))

    def _parse(self, chunk: Chunk, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The chunk's events as typed columns; events that cannot be read are quarantined, skipped ones counted."""
        m = self.mapping
        rename = {**{k: v for k, v in PROCESS_MINING_NAMES.items() if k in raw and k not in m.columns}, **m.columns}
        frame = raw.rename(columns=rename)
        dup = frame.columns[frame.columns.duplicated()]
        if len(dup):
            raise ImportError_(
                f"{chunk.path}: more than one column is taken as {', '.join(map(str, dup.unique()))} (rename one in the mapping)"
            )
        frame = m.fill_defaults(frame)
        required = list(EVENT_REQUIRED) + (["recipient"] if m.events.case == "visit" else [])
        missing = [c for c in required if c not in frame]
        if missing:
            raise ImportError_(
                f"{chunk.path}: no column for {', '.join(missing)} (process-mining names are taken as they are; map others with columns: in the mapping file)"
            )
        for column in raw.columns:
            if raw[column].dtype == object and find_personnummer(raw[column]).any():
                self.report.columns_with_personnummer.add(str(column))
        n = len(frame)
        reason = np.full(n, None, dtype=object)

        def reject(mask: np.ndarray, why: str | np.ndarray) -> None:
            new = mask & (reason == None)  # noqa: E711
            reason[new] = why if isinstance(why, str) else why[new]

        skipped = np.zeros(n, dtype=bool)
        for rule in m.skip:
            col = frame[rule.column] if rule.column in frame else raw.get(rule.column)
            if col is None:
                raise ImportError_(f"{chunk.path}: skip rule names column {rule.column!r}, which the file does not have")
            values = col.astype(str).str.strip()
            hit = (values.isin(rule.one_of) if rule.one_of else values == rule.equals).to_numpy() & ~skipped
            self.report.skipped[rule.reason] += int(hit.sum())
            skipped |= hit

        cells = {
            c: text_column(frame, c)
            for c in ("case", "activity", "lifecycle", "resource", "recipient", "provider", "team", "registration")
        }
        for c in ("case", "activity"):
            reject(cells[c].isna().to_numpy(), f"{c} missing")
        stamp_text = text_column(frame, "timestamp")
        reject(stamp_text.isna().to_numpy(), "timestamp missing")
        stamp, bad, repeated_hour = parse_local_times(stamp_text, m)
        reject(outside_window(stamp), window_reason("timestamp"))
        reject(
            bad,
            "timestamp is not a date and time"
            + (f" in the form {m.date_format}" if m.date_format else "")
            + " (or does not exist in local time)",
        )

        # an identity number in its canonical form (century from the event's time) before pairing and pseudonymising,
        # so events of one person written in two ways pair into one visit of one recipient (docs/personal-data.md)
        for c in ("case", "recipient", "resource") if m.events.case == "recipient" else ("recipient", "resource"):
            cells[c] = pd.Series(canonical_ids(cells[c], stamp), index=cells[c].index, dtype=object)

        lifecycle = cells["lifecycle"].fillna("complete")  # the XES standard's default transition
        role_name = lifecycle.map(self.transitions)
        role_name = role_name.where(role_name.notna(), lifecycle.str.lower().map(STANDARD_TRANSITIONS))
        unknown = role_name.isna().to_numpy()
        known_values = ", ".join(sorted(self.transitions))
        reject(
            unknown,
            (
                "lifecycle " + lifecycle.astype(str) + f" is not one of {known_values} (map it under events: transitions:)"
            ).to_numpy(dtype=object),
        )
        role = role_name.map(_ROLES).fillna(-9).to_numpy().astype(np.int8)

        minutes = np.full(n, np.nan)
        if "duration" in frame:
            unit = m.units.get("duration")
            if unit is None:
                raise ImportError_(
                    f"{chunk.path}: the unit of duration is not declared (units: {{duration: minutes | decimal_hours | h:mm}} in the mapping)"
                )
            duration = text_column(frame, "duration")
            minutes, bad = parse_minutes(duration, unit, self.decimal)
            if unit != "h:mm":
                note_decimal(self.report, chunk.path, m, self.decimal, duration)
            reject(bad, f"ambiguous unit in duration: expected {unit}")
            reject(minutes <= 0, "duration is not positive")

        events = pd.DataFrame(
            {
                "line": chunk.lines.astype(np.int64),
                "case": cells["case"].to_numpy(dtype=object),
                "activity": cells["activity"].to_numpy(dtype=object),
                "resource": cells["resource"].to_numpy(dtype=object),
                "time": stamp,
                "repeated_hour": repeated_hour,
                "role": role,
                "lifecycle": lifecycle.to_numpy(dtype=object),
                "minutes": minutes,
                **{c: cells[c].to_numpy(dtype=object) for c in ("recipient", "provider", "team", "registration")},
            }
        )
        bad = (reason != None) & ~skipped  # noqa: E711
        self._reject(raw, events, bad, reason)
        keep = ~bad & ~skipped
        if (repeated_hour & keep).any():
            self.report.notes[REPEATED_HOUR_EVENTS] += int((repeated_hour & keep).sum())
        return events[keep].reset_index(drop=True), raw[keep].reset_index(drop=True)

    # -- pairing ----------------------------------------------------------------------------

    def _pair(self, events: pd.DataFrame, raw: pd.DataFrame, final: bool) -> _VisitChunk | None:
        if self.carry is not None and len(self.carry):
            events = pd.concat([self.carry, events], ignore_index=True)
            raw = pd.concat([self.carry_raw, raw], ignore_index=True)
        self.carry, self.carry_raw = events.iloc[:0], raw.iloc[:0]
        if not len(events):
            return None
        if self.mapping.events.case == "visit":  # the case is the visit: all its events belong together
            group = events["case"].astype(str).to_numpy(dtype=object)
        else:
            group = (
                events["case"].astype(str) + _SEP + events["activity"].astype(str) + _SEP + events["resource"].fillna("").astype(str)
            ).to_numpy(dtype=object)
        codes, groups = pd.factorize(group)
        order = np.argsort(codes, kind="stable")  # each group's events in file order (carried ones first)
        events, raw, codes = events.iloc[order].reset_index(drop=True), raw.iloc[order].reset_index(drop=True), codes[order]
        role = events["role"].to_numpy()
        # a schedule listed right after its start, or right after its withdraw (a log sorted by time lists an early
        # start or a cancellation made the day before first), is taken as coming before it: the only order that pairs
        same = np.r_[codes[1:] == codes[:-1], False]
        swap = np.flatnonzero(same & ((role == START) | (role == WITHDRAW)) & (np.r_[role[1:], -9] == SCHEDULE))
        if len(swap):
            perm = np.arange(len(role))
            perm[swap], perm[swap + 1] = swap + 1, swap
            events, raw = events.iloc[perm].reset_index(drop=True), raw.iloc[perm].reset_index(drop=True)
            role = role[perm]
        t = events["time"].to_numpy().astype("datetime64[s]")

        # registered times (start, complete, abort) may not go back within a group, also across chunks: a schedule's
        # time is a plan and a withdraw's when the cancellation was made, so these two are not checked
        registered = (role == START) | (role == COMPLETE) | (role == ABORT)
        last = self.last_time.reindex(groups).to_numpy().astype("datetime64[s]")[codes]
        last_f = np.where(np.isnat(last), -np.inf, last.astype(np.int64).astype(np.float64))

        def going_back(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ti = np.where(registered, t.astype(np.int64).astype(np.float64), -np.inf)
            before = pd.Series(ti).groupby(codes).cummax().groupby(codes).shift(1).fillna(-np.inf).to_numpy()
            return registered & (ti < np.fmax(before, last_f)), np.fmax(before, last_f)

        back, latest = going_back(t)
        # the repeated autumn hour: a time read as its first occurrence that would go back is its second (README)
        second = back & events["repeated_hour"].to_numpy(dtype=bool) & (t.astype(np.int64) + 3600 >= latest)
        if second.any():
            t = t + np.where(second, 3600, 0).astype("timedelta64[s]")
            events["time"] = t
            back, _ = going_back(t)
        out_of_order = "not in time order (earlier than a start, complete or abort before it of the same " + (
            "case)" if self.mapping.events.case == "visit" else "case, activity and resource)"
        )
        self._reject(raw, events, back, np.full(len(t), out_of_order, dtype=object))
        ok = registered & ~back
        seen = pd.Series(t[ok], index=groups[codes[ok]]).groupby(level=0).max()
        self.last_time = seen.combine_first(self.last_time) if len(self.last_time) else seen
        if back.any():
            events, raw, codes, t = (
                events[~back].reset_index(drop=True),
                raw[~back].reset_index(drop=True),
                codes[~back],
                t[~back],
            )
        n = len(events)
        if not n:
            return None

        role = events["role"].to_numpy()
        minutes = events["minutes"].to_numpy()
        same_prev = np.r_[False, codes[1:] == codes[:-1]]
        same_next = np.r_[codes[1:] == codes[:-1], False]
        prev = np.where(same_prev, np.r_[_NONE, role[:-1]], _NONE)
        nxt = np.where(same_next, np.r_[role[1:], _NONE], _END if final else _OPEN)
        prev2 = np.where(same_prev & np.r_[False, same_prev[:-1]], np.r_[_NONE, _NONE, role[:-2]][:n], _NONE)

        outcome = self._outcomes(events)
        instant = self.mapping.events.instant_minutes
        reason = np.full(n, None, dtype=object)

        def reject(mask: np.ndarray, why: str) -> None:
            new = mask & (reason == None)  # noqa: E711
            reason[new] = why

        is_s, is_b, is_c, is_w, is_a = (role == r for r in (SCHEDULE, START, COMPLETE, WITHDRAW, ABORT))
        # starts: closed by the next event of the group, or still open
        b_open = is_b & (nxt == _OPEN)
        reject(is_b & (nxt == START), "start followed by another start (never completed)")
        reject(is_b & ~b_open & (nxt != COMPLETE) & (nxt != ABORT), "start never completed (no complete or abort after it)")
        # closing events
        reject(is_c & (prev != START) & np.isnan(minutes) & (instant is None), "complete without a start and without a duration")
        w_open = is_w & (prev != SCHEDULE) & (nxt == _OPEN)  # its schedule may be the next chunk's first event
        reject(is_w & (prev != SCHEDULE) & ~w_open, "withdraw without a schedule next to it (no planned time)")
        reject(is_a & (prev != START) & (prev != SCHEDULE), "abort without a schedule or a start before it")
        reject(
            is_a & (prev != START) & (outcome == "performed"),
            "abort counted as performed (events: outcomes) without a start before it",
        )
        # schedules: part of the next event's visit, a visit of their own, or still open
        s_alone = is_s & ((nxt == SCHEDULE) | (nxt == _END))
        s_open = is_s & ((nxt == _OPEN) | ((nxt == START) & np.r_[b_open[1:], False]))
        nxt_bad = np.r_[reason[1:] != None, False]  # noqa: E711
        reject(is_s & ~s_alone & ~s_open & nxt_bad, "schedule of a rejected event")

        carried = b_open | s_open | w_open
        self.carry, self.carry_raw = events[carried], raw[carried]

        # one visit per closing event (complete, withdraw, abort) and per schedule standing alone
        closing = ((is_c | is_w | is_a) | s_alone) & ~carried & (reason == None)  # noqa: E711
        c = np.flatnonzero(closing)
        b = np.where(~is_s[c] & (prev[c] == START), c - 1, -1)
        s = np.where(is_s[c], c, np.where(prev[c] == SCHEDULE, c - 1, np.where((b >= 0) & (prev2[c] == SCHEDULE), c - 2, -1)))
        visits, vreason = self._visits(events, t, role, minutes, outcome, c, b, s)
        first = np.where(s >= 0, s, np.where(b >= 0, b, c))
        event_of = np.stack([s, b, c], axis=1)
        vbad = vreason != None  # noqa: E711
        if vbad.any():  # a rejected visit takes its events along
            rows = event_of[vbad]
            have = rows >= 0
            reason[rows[have]] = np.repeat(vreason[vbad], 3).reshape(-1, 3)[have]
        self._reject(raw, events, reason != None, reason)  # noqa: E711
        ok = ~vbad
        self.report.visits_made += int(ok.sum())
        if not ok.any():
            return None
        frame = visits[ok].reset_index(drop=True)
        lines = events["line"].to_numpy()
        order = np.argsort(lines[first[ok]], kind="stable")  # visits in the order of their first event in the file
        return _VisitChunk(
            path=self.path,
            first_row=1,
            frame=frame.iloc[order].reset_index(drop=True),
            lines=lines[first[ok]][order],
            events=raw,
            event_lines=lines,
            event_of=event_of[ok][order],
        )

    def _outcomes(self, events: pd.DataFrame) -> np.ndarray:
        """The visit status a withdraw or abort event stands for (mapping's events: outcomes, else the default)."""
        role = events["role"].to_numpy()
        by_role = np.full(len(role), None, dtype=object)
        by_role[role == WITHDRAW] = DEFAULT_OUTCOMES["withdraw"]
        by_role[role == ABORT] = DEFAULT_OUTCOMES["abort"]
        chosen = events["lifecycle"].map(self.mapping.events.outcomes).to_numpy(dtype=object)
        return np.where(pd.notna(chosen) & ((role == WITHDRAW) | (role == ABORT)), chosen, by_role)

    def _visits(
        self, events: pd.DataFrame, t: np.ndarray, role: np.ndarray, minutes: np.ndarray, outcome: np.ndarray, c: np.ndarray, b: np.ndarray, s: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Visit rows (canonical visit columns, times as UTC text) for closing events ``c`` with their start ``b`` and
        schedule ``s``, and the reason each is rejected (None if it is not)."""
        m = self.mapping
        nat = np.datetime64("NaT", "s")
        rc = role[c]
        status = np.where(rc == COMPLETE, "performed", np.where(rc == SCHEDULE, "planned", outcome[c])).astype(object)
        performed = status == "performed"
        instant = m.events.instant_minutes
        own = np.where(np.isnan(minutes[c]), instant if instant is not None else np.nan, minutes[c])
        seconds = np.round(np.nan_to_num(own) * 60).astype("timedelta64[s]")
        actual_end = np.where(performed, t[c], nat)
        actual_start = np.where(performed, np.where(b >= 0, _take(t, b, nat), t[c] - seconds), nat)
        s_minutes = _take(minutes, s, np.nan)
        # without a schedule's duration the plan is what was registered: performed times, or start to abort
        registered = np.where(
            performed, actual_end - actual_start, np.where(b >= 0, t[c] - _take(t, b, nat), np.timedelta64("NaT", "s"))
        )
        registered_minutes = np.where(np.isnat(registered), np.nan, registered.astype("timedelta64[s]").astype(np.int64) / 60)
        planned_minutes = np.where(np.isnan(s_minutes), registered_minutes, s_minutes)
        planned_start = np.where(s >= 0, _take(t, s, nat), np.where(b >= 0, _take(t, b, nat), actual_start))
        planned_end = planned_start + np.round(np.nan_to_num(planned_minutes) * 60).astype("timedelta64[s]")
        cancelled = np.char.startswith(status.astype(str), "cancelled")

        reason = np.full(len(c), None, dtype=object)
        reason[np.isnan(planned_minutes)] = "schedule without a duration and nothing registered (no planned length)"

        def cell(column: str) -> np.ndarray:
            values = events[column].to_numpy(dtype=object)
            out = values[c].copy()
            for other in (b, s):
                fill = pd.isna(out) & (other >= 0)
                out[fill] = values[other[fill]]
            return out

        case = events["case"].to_numpy(dtype=object)[c]
        first = np.where(s >= 0, s, np.where(b >= 0, b, c))
        if m.events.case == "visit":
            key = case
            why = "a second visit in a case that is one visit (events: {case: visit})"
        else:
            resource = pd.Series(events["resource"].to_numpy(dtype=object)[c]).fillna("")
            key = (
                pd.Series(case).astype(str)
                + "|"
                + pd.Series(events["activity"].to_numpy(dtype=object)[c]).astype(str)
                + "|"
                + resource
                + "|"
                + pd.Series(_iso(t[first]))
            ).to_numpy(dtype=object)
            why = "the same events again (same case, activity, resource and time)"
        key = np.asarray(key, dtype=object)
        repeated = pd.Series(key).duplicated().to_numpy() | pd.Series(key, dtype=object).isin(pd.Series(self.seen_keys, dtype=object)).to_numpy()
        reason[repeated & (reason == None)] = why  # noqa: E711
        self.seen_keys = np.concatenate([self.seen_keys, key[reason == None]])  # noqa: E711

        return pd.DataFrame(
            {
                "recipient": case if m.events.case == "recipient" else cell("recipient"),
                "provider": cell("provider"),
                "team": cell("team"),
                "visit_id": key,
                "category": cell("activity"),
                "planned_start": _iso(planned_start),
                "planned_end": _iso(np.where(np.isnan(planned_minutes), nat, planned_end)),
                "actual_start": _iso(actual_start),
                "actual_end": _iso(actual_end),
                "staff": cell("resource"),
                "status": status,
                "cancelled_at": _iso(np.where(cancelled, t[c], nat)),
                "registration": cell("registration"),
            },
            columns=VISIT_FRAME_COLUMNS,
        ), reason

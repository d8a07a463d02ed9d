"""The staff-overlap check: one staff member cannot be in two visits at once.

Intervals accepted so far are kept in bounded memory (intervals that ended long
before the chunk being checked are spilled), so a file of millions of rows is
checked in one pass. The visits the store held before the import are checked
too (:class:`StoredIntervals`: about 24 bytes per stored staff interval, sorted
by start, so each chunk looks only at the stored intervals of its own time span).
"""


from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from typing import IO, TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ersattning.projection.known_visits import VisitIndex

_NEVER = np.iinfo(np.int64).min


class StaffIntervals:
    """The staff intervals an import has accepted so far, for the overlap check, in bounded memory.

    Exports are usually in time order. After each chunk, intervals that ended
    before the *horizon* — the latest start seen minus ``slack`` — move from
    memory to a spill file on disk (numpy arrays appended to an anonymous
    temporary file, which the system removes even if the import is killed). A new row
    can overlap a spilled interval only if it starts before the horizon, so
    only such rows (out of order by more than the slack) are checked against
    the spill, which is then read back file by file. The check is therefore
    exact for any row order; memory holds about ``slack`` worth of intervals
    (plus the chunk) when the input is in time order, and each out-of-order
    chunk costs one read of the spill.
    """

    def __init__(self, slack: timedelta = timedelta(days=1)) -> None:
        self.slack = int(slack.total_seconds())
        self.codes: dict[str, int] = {}
        self.staff = np.empty(0, np.int32)
        self.start = np.empty(0, np.int64)  # UTC seconds
        self.end = np.empty(0, np.int64)
        self.label = np.empty(0, np.int64)  # where each interval's row is: its file's code << 40 | its line (see labels)
        self.files: dict[str, int] = {}
        self.horizon = _NEVER
        self.latest = _NEVER
        self.peak = 0  # most intervals held in memory at once
        self.spilled = 0
        self._file: IO[bytes] | None = None  # an unnamed temporary file: nothing is left behind, even after a kill
        self._spills: list[int] = []  # where each spill starts in it

    def code(self, staff: np.ndarray) -> np.ndarray:
        """Stable int codes of staff pseudonyms (-1 for None)."""
        codes, uniques = pd.factorize(staff, use_na_sentinel=True)
        table = np.array([self.codes.setdefault(u, len(self.codes)) for u in uniques] + [-1], dtype=np.int32)
        return table[codes]

    def labels(self, path: str, lines: np.ndarray) -> np.ndarray:
        """Labels of rows of a file (its lines, 1-based): what :meth:`overlapping` answers and :meth:`where` reads."""
        code = self.files.setdefault(path, len(self.files))
        return (np.int64(code) << np.int64(40)) | np.asarray(lines, dtype=np.int64)

    def where(self, label: int) -> str:
        """``line N of FILE`` for a label of :meth:`labels`."""
        paths = {code: path for path, code in self.files.items()}
        return f"line {label & ((1 << 40) - 1)} of {paths.get(label >> 40, '?')}"

    def clashes(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Which of the new intervals overlap (by more than a minute) one accepted before, or an earlier-starting one among themselves."""
        return self.overlapping(staff, start, end, np.zeros(len(staff), dtype=np.int64))[0]

    def overlapping(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`clashes`, and for each clash the label of the other interval (``labels``: the new intervals' own)."""
        pos = _overlapping(self.staff, self.start, self.end, staff, start, end)
        clash = pos >= 0
        other = np.full(len(staff), -1, dtype=np.int64)
        if clash.any():
            other[clash] = np.concatenate([self.label, labels])[pos[clash]]
        old = start < self.horizon
        if old.any() and self._spills and self._file is not None:
            idx = np.flatnonzero(old)
            spill = self._file
            for offset in self._spills:
                spill.seek(offset)
                s_staff, s_start, s_end, s_label = (np.load(spill) for _ in range(4))
                keep = np.isin(s_staff, staff[idx])
                if keep.any():
                    hit = _overlapping(s_staff[keep], s_start[keep], s_end[keep], staff[idx], start[idx], end[idx], among_new=False)
                    found = (hit >= 0) & ~clash[idx]
                    clash[idx[found]] = True
                    other[idx[found]] = s_label[keep][hit[found]]
        return clash, other

    def add(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.staff = np.concatenate([self.staff, staff])
        self.start = np.concatenate([self.start, start])
        self.end = np.concatenate([self.end, end])
        self.label = np.concatenate([self.label, np.zeros(len(staff), np.int64) if labels is None else np.asarray(labels, dtype=np.int64)])
        self.peak = max(self.peak, len(self.staff))
        if len(start):
            self.latest = max(self.latest, int(start.max()))
        horizon = self.latest - self.slack if self.latest != _NEVER else _NEVER
        if horizon <= self.horizon:
            return
        self.horizon = horizon
        out = self.end <= horizon
        if out.any():
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="ersattning-overlap-")
            spill = self._file
            spill.seek(0, os.SEEK_END)
            self._spills.append(spill.tell())
            for values in (self.staff[out], self.start[out], self.end[out], self.label[out]):
                np.save(spill, values, allow_pickle=False)
            self.spilled += int(out.sum())
            self.staff, self.start, self.end, self.label = self.staff[~out], self.start[~out], self.end[~out], self.label[~out]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._spills = []


class StoredIntervals:
    """The staff intervals of the performed visits the store held before the import, sorted by start.

    A chunk's intervals are compared with the stored ones that start in its time span (less the longest stored
    interval), of its own staff members only: an import in time order into a store of other months looks at
    almost none of them.
    """

    def __init__(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray, has_interval: np.ndarray | None = None, visit: np.ndarray | None = None) -> None:
        self.has_interval = np.zeros(0, dtype=bool) if has_interval is None else has_interval  # by stored visit: performed
        order = np.argsort(start, kind="stable")
        self.staff, self.start, self.end = staff[order].astype(np.int32), start[order].astype(np.int64), end[order].astype(np.int64)
        # each interval's visit: its position in the stored index (to name it when a row overlaps it)
        self.visit = (np.full(len(order), -1) if visit is None else visit[order]).astype(np.int32)
        self.n = len(self.start)
        self.longest = int((self.end - self.start).max()) if self.n else 0

    @classmethod
    def from_index(cls, index: VisitIndex, staff_seen: StaffIntervals) -> StoredIntervals:
        """The stored performed visits' intervals, one per staff member, coded as ``staff_seen`` codes pseudonyms."""
        performed = (np.asarray(index.status) == 1) & ~np.isnat(index.actual_start_utc)
        codes = staff_seen.code(np.asarray(index.staff, dtype=object)) if len(index.staff) else np.empty(0, np.int32)
        start = np.asarray(index.actual_start_utc).astype("datetime64[s]").astype(np.int64)
        end = start + np.round(np.nan_to_num(np.asarray(index.actual_minutes, dtype=np.float64)) * 60).astype(np.int64)
        staff, starts, ends, visits = [], [], [], []
        for column in (np.asarray(index.staff1), np.asarray(index.staff2)):  # an interval per staff member of a visit
            m = performed & (column >= 0)
            staff.append(codes[column[m]])
            starts.append(start[m])
            ends.append(end[m])
            visits.append(np.flatnonzero(m))
        return cls(np.concatenate(staff), np.concatenate(starts), np.concatenate(ends), performed, np.concatenate(visits))

    def own(self, pos: np.ndarray) -> np.ndarray:
        """Which rows' visits (positions in the stored index, -1 for none) have intervals here: a row of such a
        visit is not checked against them (it would clash with itself)."""
        inside = (pos >= 0) & (pos < len(self.has_interval))
        out = np.zeros(len(pos), dtype=bool)
        out[inside] = self.has_interval[pos[inside]]
        return out

    def clashes(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Which new intervals overlap a stored one of the same staff member by more than a minute."""
        return self.overlapping(staff, start, end) >= 0

    def overlapping(self, staff: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """For each new interval, the stored visit (its position in the index) it overlaps by more than a minute, -1 for none."""
        none = np.full(len(staff), -1, dtype=np.int64)
        if not self.n or not len(staff):
            return none
        a = int(np.searchsorted(self.start, int(start.min()) - self.longest, side="left"))
        b = int(np.searchsorted(self.start, int(end.max()), side="left"))
        keep = np.isin(self.staff[a:b], staff)
        if not keep.any():
            return none
        pos = _overlapping(self.staff[a:b][keep], self.start[a:b][keep], self.end[a:b][keep], staff, start, end, among_new=False)
        hit = pos >= 0
        none[hit] = self.visit[a:b][keep][pos[hit]]
        return none


def _overlaps(s_staff: np.ndarray, s_start: np.ndarray, s_end: np.ndarray, staff: np.ndarray, start: np.ndarray, end: np.ndarray, *, among_new: bool = True) -> np.ndarray:
    """For each new interval: does it overlap a stored one of the same staff member by more than a minute
    (either starting inside it or containing its start), or — with ``among_new`` — start inside an
    earlier-starting new one? Sort-based, vectorized."""
    return _overlapping(s_staff, s_start, s_end, staff, start, end, among_new=among_new) >= 0


def _overlapping(s_staff: np.ndarray, s_start: np.ndarray, s_end: np.ndarray, staff: np.ndarray, start: np.ndarray, end: np.ndarray, *, among_new: bool = True) -> np.ndarray:
    """:func:`_overlaps`, naming the other interval: for each new interval, the position of one it overlaps in the
    stored intervals followed by the new ones (``m + i`` for new interval ``i``), -1 for none."""
    n, m = len(staff), len(s_staff)
    out = np.full(n, -1, dtype=np.int64)
    if not n:
        return out
    all_staff = np.concatenate([s_staff, staff])
    all_start = np.concatenate([s_start, start])
    all_end = np.concatenate([s_end, end])
    is_new = np.concatenate([np.zeros(m, bool), np.ones(n, bool)])
    order = np.lexsort((~is_new, all_start, all_staff))  # stored before new at equal starts
    g, a, b, new = all_staff[order], all_start[order], all_end[order], is_new[order]
    first = np.concatenate(([True], g[1:] != g[:-1]))
    group = np.cumsum(first) - 1
    # the latest end among earlier-starting intervals of the same staff member (stored, or new too)
    low, high = -(2**62), 2**62  # sentinels exact in float64 (the shifts below go through float)
    ends = np.where(new & (not among_new), low, b)
    latest = pd.Series(ends).groupby(group).cummax()
    before = latest.groupby(group).shift(1).fillna(low).to_numpy(np.int64)
    # the next stored interval's start (new rows are not checked against later-starting new rows)
    starts = np.where(new, high, a)[::-1]
    soonest = pd.Series(starts).groupby(group[::-1]).cummin()
    after = soonest.groupby(group[::-1]).shift(1).fillna(high).to_numpy(np.int64)[::-1]
    hit_before, hit_after = new & (a < before - 60), new & (after < b - 60)
    clash = hit_before | hit_after
    if not clash.any():
        return out
    # which interval: the one holding the latest end before (or the soonest start after), by its sorted position
    at = np.arange(len(g), dtype=np.float64)
    holds_latest = pd.Series(np.where(ends == latest.to_numpy(), at, np.nan)).groupby(group).ffill()
    latest_at = holds_latest.groupby(group).shift(1).to_numpy()
    rev = at[::-1]
    holds_soonest = pd.Series(np.where(starts == soonest.to_numpy(), rev, np.nan)).groupby(group[::-1]).ffill()
    soonest_at = holds_soonest.groupby(group[::-1]).shift(1).to_numpy()[::-1]
    other = np.where(hit_before, latest_at, soonest_at)[clash].astype(np.int64)
    out[order[clash] - m] = order[other]
    return out

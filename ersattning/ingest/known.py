"""The idempotence index: what the store already holds of each imported visit.

About 40 bytes a visit in sorted numpy arrays (no per-visit objects), read from the
projection once per import, so a re-import writes nothing and a changed row becomes
the one event that says what changed.
"""


from __future__ import annotations

import numpy as np
import pandas as pd

from ersattning import projection
from ersattning.domain import Category

_CATEGORIES = [x.value for x in Category]

# What is kept per visit to make re-imports idempotent: about 40 bytes a visit, in arrays grown by
# blocks (no per-visit objects, no hash table): the id's low half sorted for lookups, the high half to
# tell two ids apart, the aggregate's version and status, and 64-bit digests of the plan and of the
# registered times (compared for equality only).
_KNOWN_COLUMNS = {"hi": np.uint64, "version": np.int32, "status": np.int8, "plan": np.uint64, "actual": np.uint64}


def _digest(*columns: np.ndarray) -> np.ndarray:
    """A 64-bit digest of each row of the columns (splitmix64 steps; NaT and -1 hash like any value)."""
    h = np.full(len(columns[0]), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in columns:
            h ^= np.asarray(c).astype(np.int64).view(np.uint64)
            h += np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(30)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return h


def _plan_digest(start: np.ndarray, minutes: np.ndarray, category_codes: np.ndarray, provider_codes: np.ndarray) -> np.ndarray:
    return _digest(np.asarray(start).astype("datetime64[s]"), np.asarray(minutes).astype(np.int64), category_codes, provider_codes)


def _actual_digest(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return _digest(np.asarray(start).astype("datetime64[s]"), np.asarray(end).astype("datetime64[s]"))


class _Known:
    """What the store already knows about visits, keyed by the low 64 bits of their id.

    Visits this import adds are appended chunk by chunk, so a row repeated in
    a later chunk is recognised as well.
    """

    def __init__(self, lo: np.ndarray, cols: dict[str, np.ndarray], recipients: set[str], providers: dict[str, int]) -> None:
        self.n = len(lo)
        order = np.argsort(lo, kind="stable")
        self.sorted_lo = np.asarray(lo, dtype=np.uint64)[order]
        self.sorted_pos = order.astype(np.int64)
        self.cols = {k: np.array(v, dtype=_KNOWN_COLUMNS[k]) for k, v in cols.items()}  # own, writable copies
        self.recipients = recipients
        self.providers = providers

    @classmethod
    def from_store(cls, store) -> _Known:
        cached = projection.update(store)
        st = cached.state
        c = st.cols
        start = c["actual_start_utc"]
        end = start + (np.round(np.nan_to_num(c["actual_minutes"]) * 60)).astype("timedelta64[s]")
        recipients = set(projection.fold_entities(cached.entity_events)["recipients"]["recipient"]) if len(cached.entity_events) else set()
        providers = {v: i for i, v in enumerate(st.vocab["provider"].values)}
        cols = {
            "hi": c["key_hi"], "version": c["version"], "status": c["status"], "actual": _actual_digest(start, end),
            "plan": _plan_digest(c["planned_start_utc"], c["planned_minutes"], c["category"], c["provider"]),
        }  # fmt: skip
        return cls(c["key_lo"], cols, recipients, providers)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            cols, n = self.__dict__["cols"], self.__dict__["n"]
            return cols[name][:n]
        except KeyError:
            raise AttributeError(name) from None

    def lookup(self, lo: np.ndarray) -> np.ndarray:
        """The position of each id's visit, -1 for ids not known."""
        if not len(self.sorted_lo):
            return np.full(len(lo), -1, dtype=np.int64)
        i = np.minimum(np.searchsorted(self.sorted_lo, lo), len(self.sorted_lo) - 1)
        return np.where(self.sorted_lo[i] == lo, self.sorted_pos[i], -1)

    def provider_codes(self, providers: np.ndarray) -> np.ndarray:
        """Stable codes of provider names (new names get new codes); -1 for None."""
        codes, uniques = pd.factorize(providers, use_na_sentinel=True)
        table = np.array([self.providers.setdefault(u, len(self.providers)) for u in uniques] + [-1], dtype=np.int32)
        return table[codes]

    def add(self, lo: np.ndarray, **columns: np.ndarray) -> None:
        m = len(lo)
        if not m:
            return
        n = self.n
        capacity = len(self.cols["hi"])
        if n + m > capacity:  # grow by a quarter at least: few copies, little slack
            grown = max(n + m, capacity + capacity // 4)
            for k, t in _KNOWN_COLUMNS.items():
                col = np.empty(grown, dtype=t)
                col[:n] = self.cols[k][:n]
                self.cols[k] = col
        for k in _KNOWN_COLUMNS:
            self.cols[k][n : n + m] = columns[k]
        order = np.argsort(lo, kind="stable")
        at = np.searchsorted(self.sorted_lo, lo[order])
        self.sorted_lo = np.insert(self.sorted_lo, at, lo[order])
        self.sorted_pos = np.insert(self.sorted_pos, at, n + order)
        self.n = n + m


def _category_codes(category: np.ndarray) -> np.ndarray:
    return pd.Index(_CATEGORIES).get_indexer(category).astype(np.int8)

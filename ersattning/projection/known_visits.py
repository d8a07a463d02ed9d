"""What the store holds of each visit, for the importer's idempotence index (ersattning/ingest/known.py).

The import compares each row with the visit the store already has under the same id (docs/ARCHITECTURE.md,
the import); this module hands it those columns of the cached fold, so the importer does not depend on how the
fold keeps them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ersattning.projection.cache import CachedFold, ProjectionCache, update
from ersattning.projection.decode import VisitEvents
from ersattning.projection.entities import fold_entities
from ersattning.store import Store


@dataclass(frozen=True)
class VisitIndex:
    """One entry per stored visit, as read-only views of the fold's columns (never written to).

    ``status``: 0 planned, 1 performed, 2 cancelled (``projection.STATUS``); ``category``: codes in the order of
    ``domain.Category``; ``provider``: codes into ``providers``, -1 for none.
    """

    key_hi: np.ndarray  # uint64: the aggregate id's high and low 64 bits
    key_lo: np.ndarray
    version: np.ndarray  # int32: the aggregate's version
    status: np.ndarray  # int8
    planned_start_utc: np.ndarray  # datetime64[s]
    planned_minutes: np.ndarray  # int16
    category: np.ndarray  # int8
    provider: np.ndarray  # int32
    actual_start_utc: np.ndarray  # datetime64[s], NaT when not performed
    actual_minutes: np.ndarray  # float32, NaN when not performed
    staff1: np.ndarray  # int32 codes into ``staff`` (the performing staff's pseudonyms), -1 for none
    staff2: np.ndarray
    staff: tuple[str, ...]
    providers: tuple[str, ...]  # provider names by code
    recipients: frozenset[str]  # ids of the recipients the store holds

    def __len__(self) -> int:
        return len(self.key_lo)


class _ReadOnlyCache(ProjectionCache):
    """The projection cache as it is on disk, brought up to date in memory only (a dry run writes nothing)."""

    def load(self, store_id: str) -> CachedFold | None:
        return self._memory if self._memory is not None else super().load(store_id)

    read_only = True

    def save(self, store_id: str, cached: CachedFold, new_events: VisitEvents, first: int, *, written: Collection[str] = ()) -> None:
        self._memory = cached

    def clear(self) -> None:
        self._memory = None

    @contextmanager
    def lock(self) -> Iterator[None]:
        yield  # writes nothing, not even the lock file: a cache saved meanwhile is read whole or not at all


def read_only_projection(store: Store) -> None:
    """From now on this store object's projection cache is read, never written (``--dry-run``)."""
    if not isinstance(store.projection_cache, _ReadOnlyCache):
        store.projection_cache = _ReadOnlyCache(store.location.cache_dir)


def visit_index(store: Store, *, save: bool = True) -> VisitIndex:
    """The stored visits, from the projection cache brought up to the store's position (only new events are read;
    with ``save=False`` the cache on disk is not written)."""
    if not save:
        read_only_projection(store)
    cached = update(store)
    c = cached.state.cols
    events = cached.entity_events
    recipients = frozenset(fold_entities(events)["recipients"]["recipient"]) if len(events) else frozenset()
    return VisitIndex(
        key_hi=c["key_hi"], key_lo=c["key_lo"], version=c["version"], status=c["status"],
        planned_start_utc=c["planned_start_utc"], planned_minutes=c["planned_minutes"], category=c["category"],
        provider=c["provider"], actual_start_utc=c["actual_start_utc"], actual_minutes=c["actual_minutes"],
        staff1=c["staff1"], staff2=c["staff2"], staff=tuple(cached.state.vocab["staff"].values),
        providers=tuple(cached.state.vocab["provider"].values), recipients=recipients,
    )  # fmt: skip

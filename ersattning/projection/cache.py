"""The projection and its cache.

The fold is kept in a Parquet cache (beside an SQLite store, under the cache
directory for a PostgreSQL one: ``Store.projection_dir``) together with the
last notification id processed and the store's identity; a load reads only
newer notifications and folds them into the cached state. The cache also keeps
every event as a row (Parquet parts), so ``as_of=T`` can refold only the events
recorded at or before T.
"""


from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial, wraps
from pathlib import Path
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from ersattning import __version__
from ersattning.calendar import TZ
from ersattning.files import FileLock, WriteError, describe_os_error, make_private_dir, write_atomic, write_text_atomic
from ersattning.projection.decode import ProjectionError, VisitEvents
from ersattning.projection.entities import fold_entities
from ersattning.projection.rebuild import part_name, read_decoded, read_parallel, workers_for, write_part
from ersattning.projection.visits import VisitState
from ersattning.store import Store

CACHE_SCHEMA = 4  # 4: the fold keeps each visit's aggregate version


# ---------------------------------------------------------------------------
# the projection and its cache


@dataclass
class Projection:
    """Columnar view of a store at a position (and optionally as known at a time)."""

    visits: pd.DataFrame
    recipients: pd.DataFrame
    decisions: pd.DataFrame
    stays: pd.DataFrame
    providers: pd.DataFrame
    provider_choices: pd.DataFrame
    position: int
    as_of: datetime | str | None
    store_id: str
    visit_keys: pd.DataFrame  # key_hi, key_lo aligned with visits

    @property
    def bytes_per_visit(self) -> float:
        n = len(self.visits)
        return float(self.visits.memory_usage(deep=True, index=True).sum()) / n if n else 0.0

    def service_period(self, start: str | None, end: str | None) -> Projection:
        """Only visits planned in [start, end) (local dates, 'YYYY-MM-DD' or 'YYYY-MM')."""
        mask = np.ones(len(self.visits), dtype=bool)
        ps = self.visits["planned_start"]
        if start:
            mask &= (ps >= pd.Timestamp(start)).to_numpy()
        if end:
            mask &= (ps < pd.Timestamp(end)).to_numpy()
        return Projection(
            self.visits[mask].reset_index(drop=True), self.recipients, self.decisions, self.stays, self.providers,
            self.provider_choices, self.position, self.as_of, self.store_id, self.visit_keys[mask].reset_index(drop=True),
        )  # fmt: skip


@dataclass
class CachedFold:
    state: VisitState
    entity_events: pd.DataFrame
    position: int


def _empty_entities() -> pd.DataFrame:
    return pd.DataFrame({"notification_id": pd.Series(dtype=np.int64), "aggregate": pd.Series(dtype=str), "version": pd.Series(dtype=np.int64), "event": pd.Series(dtype=str), "recorded_at": pd.Series(dtype="datetime64[s]"), "fields": pd.Series(dtype=str)})


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(method: Callable[Concatenate[ProjectionCache, _P], _R]) -> Callable[Concatenate[ProjectionCache, _P], _R]:
    """The method runs holding the cache directory's lock (:meth:`ProjectionCache.lock`)."""

    @wraps(method)
    def locked(self: ProjectionCache, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock():
            return method(self, *args, **kwargs)

    return locked


class ProjectionCache:
    """Parquet files in the store's projection directory (``Store.projection_dir``): the fold, every event row, and the position."""

    META = "meta.json"
    #: a cache that is read, never written (a dry run's): no worker writes part files for it
    read_only: ClassVar[bool] = False

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory
        self._memory: CachedFold | None = None  # memory:// stores keep it here
        self._meta: dict = {}  # the meta.json last read or written
        self._lock = FileLock(directory.with_name(directory.name + ".lock")) if directory is not None else None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's lock (re-entrant): loads, saves, part files and clearing never interleave
        with another process's or store object's, so none reads a half-saved cache or deletes files
        another is saving (docs/ARCHITECTURE.md)."""
        if self._lock is None:
            yield
            return
        with self._lock.held():
            yield

    @_locked
    def load(self, store_id: str) -> CachedFold | None:
        if self.dir is None:
            return self._memory
        meta_path = self.dir / self.META
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        if meta.get("store_id") != store_id or meta.get("schema") != CACHE_SCHEMA:
            return None
        try:
            vocab = json.loads((self.dir / meta.get("vocab", "vocab.json")).read_text())
            state = VisitState.from_table(pq.read_table(self.dir / meta.get("fold", "visits.parquet")), vocab)
            for name in meta.get("deltas", []):
                state.apply_delta(pq.read_table(self.dir / name))
            entities = pd.read_parquet(self.dir / meta.get("entities", "entity_events.parquet"))
        except (OSError, ValueError, KeyError, pa.ArrowException):
            return None
        self._meta = meta
        return CachedFold(state, entities, int(meta["position"]))

    @_locked
    def save(self, store_id: str, cached: CachedFold, new_events: VisitEvents, first: int, *, written: Collection[str] = ()) -> None:
        """Save the fold at ``cached.position``: ``new_events`` (notifications ``first`` … position) become part
        files, beside those already ``written`` for them; parts of a save that did not finish are removed.
        A write the system refuses (disk full, read-only) is one line naming the directory; the old meta.json
        still names the old, consistent cache."""
        if self.dir is None:
            cached.state.touched = []
            self._memory = cached
            return
        try:
            self._save_files(store_id, cached, new_events, first, written)
        except (OSError, WriteError) as e:
            said = str(e) if isinstance(e, WriteError) else describe_os_error(e, self.dir)
            raise ProjectionError(f"{said} (the projection cache; the store is unchanged)") from None

    def _save_files(self, store_id: str, cached: CachedFold, new_events: VisitEvents, first: int, written: Collection[str]) -> None:
        assert self.dir is not None
        make_private_dir(self.dir)  # pseudonymised personal data: owner-only (docs/personal-data.md)
        parts = self.parts_dir()
        make_private_dir(parts)
        for stale in parts.glob("part-*.parquet"):  # left by a save or an import that did not finish
            if stale.name not in written and int(stale.stem.split("-")[1]) >= first:
                stale.unlink(missing_ok=True)
        self.write_parts(first, cached.position, new_events)
        # The fold: a full file, plus delta files of the rows each later update
        # touched, until the deltas hold a fifth as many rows as the fold; then
        # the full file is written again. Plain encodings write and read fastest.
        # Every file is named by the position it holds and listed in meta.json,
        # written last: until then the old meta names only the old files, so a
        # kill anywhere before it leaves the old, consistent cache.
        position = cached.position
        previous = self._meta if self._meta.get("store_id") == store_id else {}
        fold = previous.get("fold", "visits.parquet")
        deltas = list(previous.get("deltas", [])) if (self.dir / fold).exists() else []
        delta_rows = int(previous.get("delta_rows", 0)) if deltas or previous else 0
        touched = len(cached.state.touched_rows())
        if "position" not in previous or not (self.dir / fold).exists() or delta_rows + touched > 0.2 * max(len(cached.state), 1):
            fold = f"visits-{position:015d}.parquet"
            _write_parquet(cached.state.to_table(), self.dir / fold, use_dictionary=False, write_statistics=False)
            deltas, delta_rows = [], 0
        else:
            name = f"visits-delta-{position:015d}.parquet"
            _write_parquet(cached.state.delta_table(), self.dir / name, use_dictionary=False, write_statistics=False)
            deltas, delta_rows = [*deltas, name], delta_rows + touched
        cached.state.touched = []
        entities, vocab = f"entity_events-{position:015d}.parquet", f"vocab-{position:015d}.json"
        _write_parquet(pa.Table.from_pandas(cached.entity_events, preserve_index=False), self.dir / entities)
        write_text_atomic(self.dir / vocab, json.dumps(cached.state.vocab_table(), ensure_ascii=False))
        # the position is written last: a crash before this leaves the old, consistent cache
        self._meta = {
            "store_id": store_id, "position": position, "schema": CACHE_SCHEMA, "version": __version__,
            "fold": fold, "deltas": deltas, "delta_rows": delta_rows, "entities": entities, "vocab": vocab,
        }  # fmt: skip
        write_text_atomic(self.dir / self.META, json.dumps(self._meta))
        # what the new meta does not name: the previous files, and any left by a save that did not finish
        current = {fold, entities, vocab, *deltas}
        for pattern in ("visits*.parquet", "entity_events*.parquet", "vocab*.json"):
            for path in self.dir.glob(pattern):
                if path.name not in current:
                    path.unlink(missing_ok=True)

    def parts_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "visit_events"

    @_locked
    def write_parts(self, first: int, last: int, events: VisitEvents) -> list[str]:
        """Notifications ``first`` … ``last`` as the cache's per-event part files (none without a directory);
        their names. A saved meta.json (:meth:`save`) makes them part of the cache."""
        if self.dir is None:
            return []
        parts = self.parts_dir()
        make_private_dir(parts)
        names = [part_name(first, last, kind) for kind in events.kinds]
        for name, table in zip(names, events.kinds.values(), strict=True):
            write_atomic(parts / name, partial(write_part, table))
        return names

    @_locked
    def holds(self, store_id: str) -> bool:
        """Whether meta.json names a cache of this store in this schema (its files are not read)."""
        if self.dir is None:
            return self._memory is not None
        try:
            meta = json.loads((self.dir / self.META).read_text())
        except (OSError, ValueError):
            return False
        return isinstance(meta, dict) and meta.get("store_id") == store_id and meta.get("schema") == CACHE_SCHEMA

    @_locked
    def meta_position(self) -> int | None:
        """The position meta.json on disk names now (None: no cache saved)."""
        if self.dir is None:
            return self._memory.position if self._memory is not None else None
        try:
            return int(json.loads((self.dir / self.META).read_text())["position"])
        except (OSError, ValueError, KeyError):
            return None

    @_locked
    def events(self, position: int) -> VisitEvents | None:
        """Every visit event up to ``position`` from the part files (None without a directory)."""
        if self.dir is None:
            return None
        out = VisitEvents()
        for p in sorted((self.dir / "visit_events").glob("part-*.parquet")):
            _, first, last, kind = p.stem.split("-")
            if int(last) > position:
                p.unlink(missing_ok=True)  # left by an update that did not finish
                continue
            out.extend(VisitEvents({int(kind): pq.read_table(p)}))
        return out

    @_locked
    def clear(self) -> None:
        self._memory = None
        self._meta = {}
        if self.dir is not None and self.dir.exists():
            shutil.rmtree(self.dir)


def _write_parquet(table: pa.Table, path: Path, **options: Any) -> None:
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="lz4", **options))


def cache_for(store: Store) -> ProjectionCache:
    """The store's projection cache, made on first use; it lives as long as the store object."""
    if store.projection_cache is None:
        store.projection_cache = ProjectionCache(store.projection_dir())
    return store.projection_cache


def update(store: Store, *, page_size: int = 250_000, rebuild: bool = False) -> CachedFold:
    """Bring the cached fold up to the store's current position, reading only what is new."""
    cache = cache_for(store)
    with cache.lock():  # another process updating the same cache waits, then finds it current
        return _update(store, cache, page_size, rebuild)


def _update(store: Store, cache: ProjectionCache, page_size: int, rebuild: bool) -> CachedFold:
    if rebuild:
        cache.clear()
    current = store.position()
    cached = _loaded(cache, store, current)
    if cached.position == current:
        return cached
    workers = workers_for(store, current) if cached.position == 0 else 1
    if workers > 1 and cache.dir is not None and not cache.read_only:  # a rebuild of a big store: on every core
        visits, entities, written = read_parallel(store, cache.parts_dir(), current, workers)
        _apply(cached, visits, entities, current)
        cache.save(store.store_id, cached, VisitEvents(), 1, written=written)
        return cached
    first = cached.position + 1
    visits, entities, position = read_decoded(store, cached.position, page_size)
    _apply(cached, visits, entities, position)
    cache.save(store.store_id, cached, visits, first)
    return cached


def _apply(cached: CachedFold, visits: VisitEvents, entities: list[pd.DataFrame], position: int) -> None:
    """Fold the events after ``cached.position`` up to ``position``, in notification order."""
    cached.state.apply(visits)
    if entities:
        cached.entity_events = pd.concat([cached.entity_events, *entities], ignore_index=True)
    cached.position = position


def _loaded(cache: ProjectionCache, store: Store, current: int) -> CachedFold:
    """The cached fold, or an empty one at position 0 (a cache ahead of the store is not this store's history)."""
    cached = cache.load(store.store_id)
    if cached is not None and cached.position > current:
        cached = None
    if cached is None:
        cache.clear()
        cached = CachedFold(VisitState.empty(), _empty_entities(), 0)
    return cached


@dataclass
class DecodedRange:
    """Notifications ``first`` … ``last`` (committed batches, ids contiguous), decoded in memory."""

    first: int
    last: int
    visits: VisitEvents
    entities: pd.DataFrame | None


class RangeFold:
    """Ranges of the log decoded elsewhere (an import's committed batches, in order) folded into the cache.

    :meth:`add` folds each range into the loaded fold as it comes and writes its part files, so memory
    holds the fold, not the import's events; it never touches the store, which the import's writer
    has to itself. A range that does not follow the fold (another writer appended in between) is kept
    until :meth:`save`, which reads what lies between from the store and folds everything in
    notification order, so the saved position never passes an event the cache lacks. Events after
    the last range are left to the next load. When another process saved the cache meanwhile, this
    fold is dropped (its part files removed) and the cache brought up to date from the store.
    """

    def __init__(self, store_id: str, cache: ProjectionCache) -> None:
        self.store_id = store_id
        self.cache = cache
        self.cached: CachedFold | None = None
        self.start = 0  # the loaded cache's position
        self.held: list[DecodedRange] = []
        self.written: list[str] = []

    def add(self, r: DecodedRange) -> None:
        """Fold ``r`` (or keep it): the cache's lock is held only to load it, not while folding."""
        self._begin()
        assert self.cached is not None
        if self.held or r.first != self.cached.position + 1:
            self.held.append(r)
        else:
            self._take(r.visits, [] if r.entities is None else [r.entities], r.first, r.last)

    def _begin(self) -> None:
        """Load the cache to fold into (once). A cache that does not load is cleared; without a saved one, the
        files there (part files already written for this fold) stay: the save removes any others."""
        if self.cached is not None:
            return
        with self.cache.lock():
            loaded = self.cache.load(self.store_id)
            if loaded is None:
                if self.cache.meta_position() is not None:
                    self.cache.clear()
                loaded = CachedFold(VisitState.empty(), _empty_entities(), 0)
            self.cached, self.start = loaded, loaded.position

    def _take(self, visits: VisitEvents, entities: list[pd.DataFrame], first: int, last: int) -> None:
        assert self.cached is not None
        self.written += self.cache.write_parts(first, last, visits)
        _apply(self.cached, visits, entities, last)

    def save(self, store: Store, *, page_size: int = 250_000) -> CachedFold | None:
        """Fold the kept ranges and the gaps before them, and save (None: nothing was saved here); the check
        that no other process saved meanwhile and this save are one step under the directory's lock."""
        with self.cache.lock():
            return self._save(store, page_size)

    def _save(self, store: Store, page_size: int) -> CachedFold | None:
        if self.cached is None:
            return None
        current = store.position()
        moved = self.cache.dir is not None and self.cache.meta_position() != (self.start or None)
        if self.start > current or moved or any(r.first <= self.start for r in self.held):
            self._drop()  # the cache is not this store's history, or another process saved it meanwhile
            return update(store) if self.start <= current else None
        for r in self.held:
            position = self.cached.position
            if r.first > position + 1:
                gap, gap_entities, _ = read_decoded(store, position, page_size, stop=r.first - 1)
                self._take(gap, gap_entities, position + 1, r.first - 1)
            self._take(r.visits, [] if r.entities is None else [r.entities], r.first, r.last)
        self.held = []
        self.cache.save(self.store_id, self.cached, VisitEvents(), self.start + 1, written=self.written)
        return self.cached

    def _drop(self) -> None:
        if self.cache.dir is not None:
            saved = self.cache.meta_position() or 0
            for name in self.written:  # those the saved cache may name (another save's of the same range) stay
                if int(name.split("-")[1]) > saved:
                    (self.cache.parts_dir() / name).unlink(missing_ok=True)
        self.cached, self.held, self.written = None, [], []


def load(store: Store, *, as_of: datetime | str | None = None, rebuild: bool = False) -> Projection:
    """The projection of ``store`` (updated incrementally), optionally as known at ``as_of``."""
    cached = update(store, rebuild=rebuild)
    if as_of is None:
        state, entity_events = cached.state, cached.entity_events
    else:
        t = _as_utc(as_of)
        events = cache_for(store).events(cached.position)
        if events is None:  # no cache directory (memory store): read the log again
            events = read_decoded(store, 0, 250_000)[0]
        state = VisitState.empty()
        state.apply(events.recorded_until(t), drop_orphans=True)
        entity_events = cached.entity_events[cached.entity_events["recorded_at"].to_numpy() <= t]
    tables = fold_entities(entity_events)
    keys = pd.DataFrame({"key_hi": state.cols["key_hi"], "key_lo": state.cols["key_lo"]})
    return Projection(
        visits=state.frame(),
        recipients=tables["recipients"],
        decisions=tables["decisions"],
        stays=tables["stays"],
        providers=tables["providers"],
        provider_choices=tables["provider_choices"],
        position=cached.position,
        as_of=as_of,
        store_id=store.store_id,
        visit_keys=keys,
    )


def _as_utc(t: datetime | str) -> np.datetime64:
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize(TZ)
    return np.datetime64(ts.tz_convert("UTC").tz_localize(None).to_datetime64(), "s")

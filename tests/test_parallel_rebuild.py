"""The rebuild on every core equals the single-process fold, now and as of any time (projection/rebuild.py).

Random small stores: plans, performed and cancelled visits (separate and combined events), corrections
recorded late (after other visits in the log), recipient and provider events; the parallel path is forced
on them with several range counts.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.domain import Area, CancelledBy, CancelReason, Category, Ownership, Per, Provider, Recipient, Registration, Visit
from ersattning.projection import cache as projection_cache
from ersattning.projection import rebuild
from ersattning.store import Store, open_store
from tests.test_projection import _assert_same

T0 = datetime(2024, 3, 1, 7, tzinfo=UTC)
CUTS = ["2024-03-01 12:00", "2024-03-03", "2024-03-10", "2024-04-20", "2030-01-01"]


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2, mp_context=rebuild.worker_context()) as executor:
        yield executor


def _history(store: Store, seed: int, visits: int, recipients: int) -> None:
    """A random history saved in random groups; some corrections and revisions are recorded weeks later."""
    rng = random.Random(seed)
    p = Provider.register(code="P1", name="Omsorg", ownership=Ownership.private, teams=("P1-A", "P1-B"), recorded_at=T0 - timedelta(days=30))
    people = []
    for k in range(recipients):
        r = Recipient.enrol(pseudonym=f"r{k}", birth_year=1930 + k, area=Area.urban, enrolled_on=date(2024, 3, 1), recorded_at=T0 + timedelta(hours=k))
        r.choose_provider("P1", date(2024, 3, 1), T0 + timedelta(hours=k))
        r.grant(decision_id=f"d{k}", category=Category.personal_care, granted_minutes=600 + k, per=Per.month, valid_from=date(2024, 3, 1), valid_to=None, recorded_at=T0 + timedelta(hours=k))
        people.append(r)
    made: list[Visit] = []
    starts: dict[int, datetime] = {}  # performed visits' actual start, by position in ``made``
    for i in range(visits):
        start = T0 + timedelta(days=rng.randrange(40), minutes=15 * rng.randrange(40))
        common: dict[str, Any] = dict(key=f"v{seed}-{i}", recipient_id=people[i % recipients].id, provider="P1", team=rng.choice(["P1-A", "P1-B"]), category=rng.choice(list(Category)), planned_start=start, planned_minutes=rng.choice([15, 30, 45]), recorded_at=start - timedelta(days=rng.randrange(1, 5)))
        end = start + timedelta(minutes=rng.randrange(5, 60))
        how = rng.randrange(5)
        if how == 0:
            v = Visit.plan(**common)
        elif how == 1:
            v = Visit.plan(**common)
            v.perform(actual_start=start, actual_end=end, staff=("s1", "s2")[: rng.randrange(1, 3)], registration=Registration.mobile, recorded_at=end + timedelta(minutes=rng.randrange(600)))
        elif how == 2:
            v = Visit.plan(**common)
            v.cancel(by=CancelledBy.recipient, reason=CancelReason.declined, cancelled_at=start - timedelta(hours=2), recorded_at=start - timedelta(hours=2))
        elif how == 3:
            v = Visit.plan_performed(**common, actual_start=start, actual_end=end, staff=("s3",), registration=Registration.nfc, performed_recorded_at=end)
        else:
            v = Visit.plan_cancelled(**common, by=CancelledBy.provider, reason=CancelReason.other, cancelled_at=start - timedelta(days=1), cancelled_recorded_at=start - timedelta(days=1))
        if how in (1, 3):
            starts[i] = start
        made.append(v)
    everything: list[Recipient | Provider | Visit] = [p, *people, *made]
    rng.shuffle(everything)
    while everything:
        k = rng.randrange(1, 6)
        store.app.save(*everything[:k])
        everything = everything[k:]
    late: list[Recipient | Visit] = []
    for i, v in enumerate(made):
        if i in starts and rng.random() < 0.4:
            a = starts[i]
            for days in sorted(rng.sample(range(1, 30), rng.randrange(1, 3))):  # one or two corrections: the last one counts
                v.correct(actual_start=a, actual_end=a + timedelta(minutes=rng.randrange(1, 90)), reason="late", recorded_at=a + timedelta(days=days))
                late.append(v)
    for r in people[: rng.randrange(recipients + 1)]:
        r.revise(decision_id=next(iter(r.decisions)), granted_minutes=900, valid_from=date(2024, 4, 1), recorded_at=T0 + timedelta(days=20))
        late.append(r)
    rng.shuffle(late)
    for j in range(0, len(late), 3):  # an aggregate saved twice saves its pending events once
        store.app.save(*{a.id: a for a in late[j : j + 3]}.values())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), visits=st.integers(1, 60), recipients=st.integers(1, 5), ranges=st.integers(1, 7))
def test_the_parallel_rebuild_equals_the_single_process_fold(pool: ProcessPoolExecutor, monkeypatch: pytest.MonkeyPatch, seed: int, visits: int, recipients: int, ranges: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="ersattning-parallel-"))
    try:
        url = f"sqlite:///{directory / 's.db'}"
        _history(open_store(url), seed, visits, recipients)
        single = projection.load(open_store(url), rebuild=True)
        single_cuts = [projection.load(open_store(url), as_of=t) for t in CUTS]
        with monkeypatch.context() as mp:
            mp.setattr(projection_cache, "workers_for", lambda store, events: 2)
            mp.setattr(projection_cache, "read_parallel", partial(rebuild.read_parallel, ranges=ranges, executor=pool))
            parallel = projection.load(open_store(url), rebuild=True)
        _assert_same(single, parallel)
        pd.testing.assert_frame_equal(single.visits, parallel.visits)  # the same rows in the same order, the same vocabularies
        pd.testing.assert_frame_equal(single.visit_keys, parallel.visit_keys)
        assert parallel.position == single.position == open_store(url).position()
        for t, cut in zip(CUTS, single_cuts, strict=True):  # as-of loads refold the cache's part files, here the workers'
            _assert_same(cut, projection.load(open_store(url), as_of=t))
        store = open_store(url)
        assert projection.update(store).position == single.position  # the saved cache is current: a later load folds nothing
    finally:
        shutil.rmtree(directory)


def test_a_big_store_rebuilds_on_every_core_and_a_memory_store_in_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(rebuild.os, "cpu_count", lambda: 3)
    assert rebuild.workers_for(open_store("memory://"), 10**7) == 1
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert rebuild.workers_for(store, rebuild.PARALLEL_MIN_EVENTS - 1) == 1
    assert rebuild.workers_for(store, rebuild.PARALLEL_MIN_EVENTS) == 3


def test_the_first_load_without_a_cache_goes_parallel_with_its_own_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Through ``update`` alone: the pool of workers started, used and shut down by the rebuild itself."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    _history(open_store(url), 3, 40, 3)
    single = projection.load(open_store(url), rebuild=True)
    shutil.rmtree(tmp_path / "s.db.projection")
    monkeypatch.setattr(rebuild, "PARALLEL_MIN_EVENTS", 1)
    monkeypatch.setattr(rebuild.os, "cpu_count", lambda: 2)
    calls: list[int] = []
    read_parallel = rebuild.read_parallel

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return read_parallel(*args, **kwargs)

    monkeypatch.setattr(projection_cache, "read_parallel", counted)
    _assert_same(single, projection.load(open_store(url)))
    assert calls == [1]


class _BrokenPool(Executor):
    """Workers that never started (a script without a main guard re-runs itself in them and stops)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(BrokenProcessPool("a worker stopped"))
        return future


def test_workers_that_cannot_start_leave_the_rebuild_to_this_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _history(open_store(url), 11, 30, 2)
    single = projection.load(open_store(url), rebuild=True)
    cuts = [projection.load(open_store(url), as_of=t) for t in CUTS]
    monkeypatch.setattr(projection_cache, "workers_for", lambda store, events: 2)
    monkeypatch.setattr(projection_cache, "read_parallel", partial(rebuild.read_parallel, ranges=3, executor=_BrokenPool()))
    _assert_same(single, projection.load(open_store(url), rebuild=True))
    for t, cut in zip(CUTS, cuts, strict=True):  # the part files for as-of loads were written by this process
        _assert_same(cut, projection.load(open_store(url), as_of=t))

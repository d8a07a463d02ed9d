"""Run a comparison partition by partition: in a local process pool, or on a Dask cluster.

Local by default: the partitions are settled in a pool of processes on this machine's cores
(started fresh, so a worker holds one partition at a time and its peak memory is set by the
partition size). ``scheduler`` (or ``ERSATTNING_DASK_SCHEDULER``) sends the tasks to a running
Dask scheduler, ``workers`` starts a ``LocalCluster``; either way a task receives the dataset's
path and a partition number, reads the partition itself and returns a small summary, so no
frame of visits goes through the scheduler (docs/ARCHITECTURE.md, README "Large regions").
"""

from __future__ import annotations

import multiprocessing
import os
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ersattning import projection
from ersattning.analysis.breakeven import break_even_summary
from ersattning.analysis.engine import Evaluator, PointPart
from ersattning.checks import Coverage, check_parameters, preflight
from ersattning.compare import (
    Comparison,
    PartitionedComparisonError,
    PartitionSummary,
    combine,
    compare,
    compare_projection,
    comparison_manifest,
)
from ersattning.context import ContextError
from ersattning.partitioned.dataset import Dataset, DatasetError, ensure_dataset, existing_dataset, partition_count
from ersattning.partitioned.settle import (
    RegionInputs,
    TaskResult,
    needs_prepass,
    peak_rss,
    points_task,
    prepass_task,
    region_inputs,
    save_inputs,
    saved_inputs,
    settle_task,
)
from ersattning.scenario import Scenario
from ersattning.store import Store
from ersattning.workers import main_not_reimported

#: the partitioned path is chosen without being asked above this many visits
AUTO_VISITS = 2_000_000
SCHEDULER_ENV = "ERSATTNING_DASK_SCHEDULER"
#: a directory or fsspec URL (s3://bucket/prefix) every worker can read: the partitioned projections go there,
#: by store id, rather than beside the projection cache
ROOT_ENV = "ERSATTNING_PARTITIONS_ROOT"
#: how long to try to reach a scheduler before saying it cannot be reached
CONNECT_TIMEOUT = "10s"


class ClusterError(RuntimeError):
    """The Dask scheduler cannot be reached, or a worker failed (one line, what to do)."""


def not_partitionable(scenario: Scenario, as_of: datetime | str | None) -> str | None:
    """Why this comparison must run in one process, or None.

    A behaviour assumption that changes the visits draws its seeded choices by each visit's row
    in the whole region's context, which a partition does not know; ``--as-of`` refolds the
    store as known at a time, and the partitioned projection is written at the current position.
    """
    if as_of is not None:
        return "--as-of refolds the store at a time; the partitioned projection holds its current position"
    touching = [entry.name for entry, model in scenario.models if model.behaviour.touches_history()]
    if touching:
        return f"the behaviour assumptions of {', '.join(touching)} draw seeded choices by each visit's row in the whole region"
    return None


class Pool(Protocol):
    """Runs one function over argument tuples and returns the results in order."""

    def map(self, fn: Callable[..., TaskResult], args: Sequence[tuple[Any, ...]]) -> list[TaskResult]: ...

    def close(self) -> None: ...


class InlinePool:
    """Tasks run one after another in this process (tests, debugging: the same tasks, no processes)."""

    def map(self, fn: Callable[..., TaskResult], args: Sequence[tuple[Any, ...]]) -> list[TaskResult]:
        return [fn(*a) for a in args]

    def close(self) -> None:
        pass


class LocalPool:
    """A pool of fresh processes (spawned: they do not inherit the parent's memory) on the local cores."""

    def __init__(self, processes: int) -> None:
        self.executor = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"))

    def map(self, fn: Callable[..., TaskResult], args: Sequence[tuple[Any, ...]]) -> list[TaskResult]:
        with main_not_reimported():  # the processes start as the tasks are submitted
            futures = [self.executor.submit(fn, *a) for a in args]
        return [f.result() for f in futures]

    def close(self) -> None:
        self.executor.shutdown()


class DaskPool:
    """Tasks on a Dask cluster: a running scheduler's address, or a LocalCluster of ``workers`` processes."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None) -> None:
        # dask is imported only when a cluster is asked for (it takes a second to import)
        from dask.distributed import Client, LocalCluster

        self.cluster: Any = None
        try:
            if scheduler:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            else:
                with main_not_reimported():
                    self.cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None)
                self.client = Client(self.cluster)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler or 'a local cluster'}: {e}; start one with `dask scheduler` and workers with `dask worker tcp://HOST:8786`") from e

    def map(self, fn: Callable[..., TaskResult], args: Sequence[tuple[Any, ...]]) -> list[TaskResult]:
        futures = [self.client.submit(fn, *a, pure=False) for a in args]
        result: list[TaskResult] = self.client.gather(futures)
        return result

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@dataclass
class RunStats:
    """How a partitioned comparison ran: where, in how many partitions, how long, and peak memory per process."""

    mode: str
    partitions: int
    seconds: float = 0.0
    parent_peak_rss_bytes: int = 0
    tasks: list[TaskResult] = field(default_factory=list)

    def worker_peaks(self) -> dict[int, int]:
        """Peak memory of each worker process (by pid), bytes."""
        out: dict[int, int] = {}
        for t in self.tasks:
            out[t.pid] = max(out.get(t.pid, 0), t.peak_rss_bytes)
        return out


def open_pool(partitions: int, scheduler: str | None = None, workers: int | None = None) -> tuple[Pool, str]:
    """The pool to run on and its name: a scheduler, a LocalCluster, or local processes (one per core, at most P)."""
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler:
        return DaskPool(scheduler=scheduler), f"dask {scheduler}"
    if workers:
        return DaskPool(workers=workers), f"dask LocalCluster ({workers} workers)"
    processes = max(1, min(partitions, os.cpu_count() or 1))
    return LocalPool(processes), f"local pool ({processes} processes)"


def _run(pool: Pool, fn: Callable[..., TaskResult], args: Sequence[tuple[Any, ...]], stats: RunStats) -> list[TaskResult]:
    try:
        results = pool.map(fn, args)
    except DatasetError:
        raise
    except BrokenExecutor as e:
        raise ClusterError(f"a worker process died ({e}); if it ran out of memory, use more partitions (--partitions)") from e
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"a worker failed: {e.__class__.__name__}: {e}") from e
    stats.tasks.extend(results)
    return results


#: points settled per round of tasks (each task reads its partition once for all of them; their parts are small)
POINTS_PER_ROUND = 32


class PartitionedEvaluator(Evaluator):
    """The analysis engine's evaluator for a comparison settled in partitions: the points of a round go to every
    partition in one task each (``settle.points_task``), which re-settles the models they touch and returns small
    parts (exact sums, admin unit counts, provider-month masks, team-month keys, continuity windows); the parts are
    reduced as in one process (``Evaluator._outcome``), so cost, admin hours and continuity are the same.

    ``owns_pool``: the evaluator closes ``pool`` (``close``, at the latest at exit); ``reopen`` opens a new one
    when a point comes after it was closed (a report written after ``compare`` returned).
    """

    def __init__(
        self, c: Comparison, pool: Pool, ds: Dataset, inputs: RegionInputs, stats: RunStats, *, owns_pool: bool = False, reopen: Callable[[], Pool] | None = None
    ) -> None:
        super().__init__(c)
        self.ds, self.inputs, self.stats, self.reopen = ds, inputs, stats, reopen
        self.pool: Pool | None = pool
        self._owned: Pool | None = None
        self._finalizer: weakref.finalize | None = None
        if owns_pool:
            self._own(pool)

    def _settle(self, points: list[dict[str, float]], exact_bins: bool) -> list[list[dict[str, PointPart]]]:
        pool = self._pool()
        path = self.ds.location
        out: list[list[dict[str, PointPart]]] = []
        for start in range(0, len(points), POINTS_PER_ROUND):
            chunk = points[start : start + POINTS_PER_ROUND]
            args = [(path, i, self.scenario, self.inputs, chunk, exact_bins) for i in range(self.ds.partitions)]
            values: list[list[dict[str, PointPart]]] = [r.value for r in _run(pool, points_task, args, self.stats) if r.value is not None]  # type: ignore[misc]
            out.extend([v[j] for v in values] for j in range(len(chunk)))
        return out

    def _pool(self) -> Pool:
        if self.pool is not None:
            return self.pool
        if self.reopen is None:
            raise PartitionedComparisonError("the pool this comparison was settled on is closed, and no other can be opened")
        return self._own(self.reopen())

    def _own(self, pool: Pool) -> Pool:
        self.pool = self._owned = pool
        self._finalizer = weakref.finalize(self, pool.close)  # closed at exit at the latest, and once
        return pool

    def close(self) -> None:
        """Close the pool this evaluator opened (or was handed), if any; a later point opens a new one (``reopen``)."""
        if self._finalizer is not None:
            self._finalizer()
        self.pool = self._owned = self._finalizer = None


def ensure_region_inputs(ds: Dataset, scenario: Scenario, pool: Pool, stats: RunStats | None = None, progress: Callable[[str], None] | None = None) -> RegionInputs:
    """What the scenario's models need of the whole region before they settle: saved beside the dataset, or a first pass."""
    if not needs_prepass(scenario):
        return RegionInputs()
    path = ds.location
    saved = saved_inputs(path, scenario)
    if saved is not None:
        return saved
    if progress is not None:
        progress(f"region-wide inputs ({ds.partitions} partitions)")
    results = _run(pool, prepass_task, [(path, i, scenario) for i in range(ds.partitions)], stats or RunStats("", ds.partitions))
    inputs = region_inputs([r.value for r in results if r.value is not None])  # type: ignore[misc]
    save_inputs(path, scenario, inputs)
    return inputs


def compare_partitioned(
    scenario: Scenario,
    store: Store | None,
    *,
    partitions: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    suppress: bool = True,
    progress: Callable[[str], None] | None = None,
    pool: Pool | None = None,
    dataset: Dataset | None = None,
    break_even: bool = True,
    keep_pool: bool = False,
    root: str | None = None,
) -> tuple[Comparison, RunStats]:
    """The comparison of ``scenario`` on ``store``, settled partition by partition (same figures as ``compare``).

    ``dataset``: a partitioned projection already written (then ``store`` may be None: the manifest names the dataset).
    ``break_even``: also solve the break-even ``compare`` prints (each step re-settles the partitions, while the pool is open).
    The comparison's analyses (``analysis.Evaluator.of``: the report's break-even, tornado and sweep, ``sensitivity`` …)
    settle their points on the partitions too; ``keep_pool`` leaves the pool open for them (``release`` closes it),
    else a later point opens a new one. ``root``: where the partitioned projection goes (``ERSATTNING_PARTITIONS_ROOT``;
    default beside the projection cache).
    """
    step = progress or (lambda _: None)
    t = time.perf_counter()
    step("partitioned projection")
    if dataset is None and store is None:
        raise ValueError("compare_partitioned needs a store or a dataset")
    ds = dataset if dataset is not None else ensure_dataset(store, partitions, root=root or os.environ.get(ROOT_ENV) or None)  # type: ignore[arg-type]
    where = store if store is not None else (f"partitioned projection {ds.location}", ds.store_id)
    shown = where[0] if isinstance(where, tuple) else where.location.display_url
    if ds.coverage is not None:
        found = preflight(scenario, Coverage.from_json(ds.coverage), shown)
    else:  # a dataset written before coverage was kept: only the parameters are checked beforehand
        check_parameters(scenario)
        found = []
    own = pool is None
    if pool is None:
        pool, mode = open_pool(ds.partitions, scheduler, workers)
    else:
        mode = "given pool"
    stats = RunStats(mode, ds.partitions)
    try:
        path = ds.location
        inputs = ensure_region_inputs(ds, scenario, pool, stats, step)
        step(f"settle {ds.partitions} partitions on {mode}")
        results = _run(pool, settle_task, [(path, i, scenario, inputs) for i in range(ds.partitions)], stats)
        summaries: list[PartitionSummary] = [r.value for r in results if r.value is not None]  # type: ignore[misc]
        if not summaries:
            raise ContextError(f"no recipients or visits in {scenario.spec.period.start} … {scenario.spec.period.end}")
        step("combine")
        c = combine(scenario, summaries, comparison_manifest(scenario, where, ds.position, None), suppress=suppress)
        c.checks = found + c.checks
        # the evaluator owns a pool opened here: closed below unless kept (then ``release``), reopened when asked
        ev = PartitionedEvaluator(c, pool, ds, inputs, stats, owns_pool=own, reopen=lambda: open_pool(ds.partitions, scheduler, workers)[0])
        c.__dict__["_evaluator"] = ev
        if break_even:
            step("break-even")
            break_even_summary(c)
    except BaseException:
        if own:
            pool.close()
        raise
    if own and not keep_pool:
        ev.close()
    stats.seconds = time.perf_counter() - t
    stats.parent_peak_rss_bytes = peak_rss()
    return c, stats


def compare_auto(
    scenario: Scenario,
    store: Store,
    *,
    as_of: datetime | str | None = None,
    suppress: bool = True,
    progress: Callable[[str], None] | None = None,
    partitions: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    needs_context: str | None = None,
    note: Callable[[str], None] | None = None,
    keep_pool: bool = False,
    break_even: bool = True,
) -> Comparison:
    """``compare`` in one process or in partitions, whichever fits.

    Partitioned when asked (``partitions`` ≥ 1, ``scheduler``, ``ERSATTNING_DASK_SCHEDULER``, ``workers``) or,
    unasked, when the region has more than ``AUTO_VISITS`` visits; in one process when ``partitions`` is 0,
    when the comparison cannot be partitioned (``not_partitionable``) or when ``needs_context`` says why the
    caller needs the settlement context. ``note`` hears why an asked-for partitioned run was not made;
    ``keep_pool`` keeps a partitioned run's pool open for the analyses and report that follow (``release``);
    ``break_even`` False leaves the break-even to be solved when asked (then in the order one process asks).
    """
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    root = os.environ.get(ROOT_ENV) or None
    asked = bool(partitions or scheduler or workers)
    reason = needs_context or not_partitionable(scenario, as_of)
    single = partitions == 0 or reason is not None
    if asked and reason is not None and note is not None:
        note(f"settling in one process: {reason}")
    proj = None
    if not single and not asked:
        found = existing_dataset(store, store.position(), root)
        if found is not None:
            visits = sum(found.visits)
        else:
            if progress is not None:
                progress("projection")
            proj = projection.load(store)
            visits = len(proj.visits)
        single = visits <= AUTO_VISITS
    if single:
        if proj is not None:  # loaded to count the visits: settle on it rather than load it again
            return compare_projection(scenario, store, proj, suppress=suppress, progress=progress)
        return compare(scenario, store, as_of=as_of, suppress=suppress, progress=progress)
    if proj is not None:
        ensure_dataset(store, partition_count(len(proj.visits)), proj=proj, root=root)
        del proj
    c, _ = compare_partitioned(scenario, store, partitions=partitions, scheduler=scheduler, workers=workers, suppress=suppress, progress=progress, keep_pool=keep_pool, break_even=break_even, root=root)
    return c


def release(c: Comparison) -> None:
    """Close the pool a partitioned comparison's analyses kept open (``keep_pool``); nothing for one settled in one process."""
    ev = c.__dict__.get("_evaluator")
    if isinstance(ev, Evaluator):
        ev.close()


__all__ = ["AUTO_VISITS", "ROOT_ENV", "SCHEDULER_ENV", "ClusterError", "DaskPool", "InlinePool", "LocalPool", "RunStats", "compare_auto", "compare_partitioned", "ensure_region_inputs", "not_partitionable", "release"]

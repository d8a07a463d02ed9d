"""What a worker does with one partition: read it, build its settlement context, settle, summarise.

Tasks take the dataset's path and a partition number and return small summaries
(``compare.PartitionSummary``: exact sums, counts, provider-month bins, one payment per
recipient-month); a worker never receives a frame of visits. Two quantities of a model
need the whole region before it can settle: the providers' continuity medians (the
trust-based quality bonus) and the team-months' planned minutes (the trust-based team
amount). A first pass gathers them (``prepass``), and each settlement task gets them; they
depend only on the dataset and the period, so they are kept beside the dataset for the next run.
"""

from __future__ import annotations

import io
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ersattning.allocator import keep_freed_memory
from ersattning.analysis.engine import settle_point
from ersattning.compare import PartitionSummary, settle_partition
from ersattning.context import SettlementContext, build_context
from ersattning.exact import GroupedSum, exact_bincount
from ersattning.indicators import continuity_medians, window_counts
from ersattning.models.trust_based import TrustBased
from ersattning.partitioned.dataset import dataset_file, read_file, read_partition, write_file
from ersattning.scenario import Scenario

#: partition i's recipients are numbered from i × this in the gathered payments and provider pairs
RECIPIENT_STRIDE = 1 << 32


@dataclass
class RegionInputs:
    """What settling a partition needs of the whole region (from ``prepass``; empty when no model needs it)."""

    continuity_medians: np.ndarray | None = None
    team_month_keys: np.ndarray | None = None
    team_month_minutes: np.ndarray | None = None

    def apply(self, ctx: SettlementContext) -> None:
        """Put the region's figures where the models look for them (indicators.continuity_by_provider, trust_based)."""
        if self.continuity_medians is not None:
            ctx.cache["continuity_by_provider"] = self.continuity_medians
        if self.team_month_keys is not None:
            ctx.cache["team_month_minutes"] = (self.team_month_keys, self.team_month_minutes)


@dataclass
class TaskResult:
    """A task's summary and what it cost: seconds and the worker process's peak memory."""

    partition: int
    value: object
    seconds: float
    peak_rss_bytes: int
    pid: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def needs_prepass(scenario: Scenario) -> bool:
    """Whether a model needs region-wide figures before it settles (the trust-based quality bonus or team amount)."""
    return any(isinstance(m, TrustBased) and (m.quality is not None or m.basis == "team") for _, m in scenario.models)


def peak_rss() -> int:
    """This process's peak resident memory, bytes: VmHWM where /proc has it (``ru_maxrss`` on Linux carries
    the parent's peak over fork and exec, so a fresh worker would seem as big as the process that started it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # kilobytes on Linux


def _context(path: str, i: int, scenario: Scenario) -> SettlementContext | None:
    """Partition ``i``'s settlement context; None when no recipient hashed to it (a small region in many partitions)."""
    keep_freed_memory()  # the worker settles partition after partition: reuse freed arrays rather than fault them in again
    proj = read_partition(path, i)
    if not len(proj.recipients) and not len(proj.visits):
        return None
    return build_context(proj, scenario.spec.period.start, scenario.spec.period.end, scenario.default_ownership)


@dataclass
class Prepass:
    """One partition's share of the region-wide inputs."""

    windows: pd.DataFrame
    team_months: GroupedSum
    team_present: np.ndarray  # team-month keys with a visit
    providers: int  # the region's providers (every partition numbers them alike)


def prepass_task(path: str, i: int, scenario: Scenario) -> TaskResult:
    """The partition's continuity windows (provider, distinct staff → how many) and planned minutes per team-month (None: an empty partition)."""
    t = time.perf_counter()
    ctx = _context(path, i, scenario)
    if ctx is None:
        return TaskResult(i, None, time.perf_counter() - t, peak_rss(), os.getpid())
    n_m = len(ctx.months)
    n_t = max(len(ctx.visits["team"].cat.categories), 1)
    keys = ctx.v_team.astype(np.int64) * n_m + ctx.v_month
    planned = ctx.visits["planned_minutes"].to_numpy(np.float64)
    value = Prepass(window_counts(ctx), exact_bincount(keys, planned, n_t * n_m), np.unique(keys), len(ctx.provider_ids))
    return TaskResult(i, value, time.perf_counter() - t, peak_rss(), os.getpid())


def _inputs_location(path: str, scenario: Scenario) -> str:
    spec = scenario.spec
    return dataset_file(path, "inputs", f"{spec.period.start}_{spec.period.end}_{scenario.default_ownership or 'none'}.npz")


def saved_inputs(path: str, scenario: Scenario) -> RegionInputs | None:
    """The region-wide inputs a previous run saved beside the dataset for this period (they depend on nothing else)."""
    try:
        with np.load(io.BytesIO(read_file(_inputs_location(path, scenario))), allow_pickle=False) as f:
            return RegionInputs(f["continuity_medians"], f["team_month_keys"], f["team_month_minutes"])
    except (OSError, KeyError, ValueError):
        return None


def save_inputs(path: str, scenario: Scenario, inputs: RegionInputs) -> None:
    """Keep the region-wide inputs beside the dataset (written whole or not at all), so the next compare skips the first pass."""
    if inputs.continuity_medians is None or inputs.team_month_keys is None or inputs.team_month_minutes is None:
        return
    buffer = io.BytesIO()
    np.savez(buffer, continuity_medians=inputs.continuity_medians, team_month_keys=inputs.team_month_keys, team_month_minutes=inputs.team_month_minutes)
    write_file(_inputs_location(path, scenario), buffer.getvalue())


def region_inputs(parts: list[Prepass]) -> RegionInputs:
    """The region-wide inputs from every partition's prepass."""
    windows = pd.concat([p.windows for p in parts], ignore_index=True)
    total = parts[0].team_months
    for p in parts[1:]:
        total = total + p.team_months
    keys = np.unique(np.concatenate([p.team_present for p in parts]))
    minutes = total.to_floats()[keys] if len(keys) else np.zeros(0)
    return RegionInputs(continuity_medians(windows, parts[0].providers), keys, minutes)


def settle_task(path: str, i: int, scenario: Scenario, inputs: RegionInputs) -> TaskResult:
    """Settle every model on partition ``i`` and return its summary (None: an empty partition; settlements stay in the worker)."""
    t = time.perf_counter()
    ctx = _context(path, i, scenario)
    if ctx is None:
        return TaskResult(i, None, time.perf_counter() - t, peak_rss(), os.getpid())
    inputs.apply(ctx)
    summary: PartitionSummary = settle_partition(scenario, ctx, recipient_offset=i * RECIPIENT_STRIDE).summary
    return TaskResult(i, summary, time.perf_counter() - t, peak_rss(), os.getpid())


def points_task(path: str, i: int, scenario: Scenario, inputs: RegionInputs, points: list[dict[str, float]], exact_bins: bool = False) -> TaskResult:
    """Settle points of the analyses on partition ``i``: per point, the small part of each model it touches
    (``analysis.engine.settle_point``); the partition is read once for all of them (None: an empty partition)."""
    t = time.perf_counter()
    ctx = _context(path, i, scenario)
    if ctx is None:
        return TaskResult(i, None, time.perf_counter() - t, peak_rss(), os.getpid())
    inputs.apply(ctx)
    histories: dict[str, SettlementContext] = {}
    value = [settle_point(ctx, scenario, point, histories, exact_bins) for point in points]
    return TaskResult(i, value, time.perf_counter() - t, peak_rss(), os.getpid())

"""Settle points of a scenario's parameter space on one comparison's history.

The projection and the context are built once (by ``compare``); a point
re-settles only the models whose parameters it changes, and re-derives a
model's counterfactual history only when a parameter of its entry (a behaviour
assumption) changes (docs/models.md, "Sensitivity, sweeps, break-even and
uncertainty"). Admin assumptions change administrative hours only.

A point is settled the way ``compare`` settles a region: each re-settled model
gives a small ``PointPart`` per piece of the region (the whole region in one
process, each recipient partition in ``partitioned/``), and the parts are
reduced exactly — the same cost, admin hours and continuity however the region
is split (docs/models.md, "On a partitioned comparison").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ersattning.admin import admin_table, count_units, under_behaviour
from ersattning.behaviour import apply as apply_behaviour
from ersattning.compare import _REGION_UNITS, Comparison, _provider_month_sums
from ersattning.context import SettlementContext
from ersattning.exact import ExactSum, GroupedSum, exact_sum
from ersattning.indicators import continuity_from, window_counts
from ersattning.models.base import Settlement
from ersattning.scenario import Scenario

from .paths import check, model_of, with_values

Point = dict[str, float]


@dataclass(frozen=True)
class Outcome:
    """One point: each model's cost (SEK), administrative hours and continuity (median distinct staff per 14 days)."""

    cost: dict[str, float]
    admin_hours: dict[str, float]
    continuity: dict[str, float | None]

    def delta(self, model: str, baseline: str) -> float:
        """The model's cost difference against the baseline, SEK."""
        return self.cost[model] - self.cost[baseline]


@dataclass
class PointPart:
    """One model re-settled at one point on a piece of the region: what its cost, admin hours and continuity need.

    Exact component sums and admin unit counts add up across pieces; provider-months with a payment go as a
    packed mask when every amount of the piece is ≥ 0 (a region sum of such amounts is non-zero exactly when a
    piece's is), else as exact provider × month sums (``exact_bins``); team-month keys and continuity windows
    (only when the behaviour changed, so the counterfactual history did) are gathered.
    """

    components: dict[str, ExactSum]
    units: dict[str, float]
    paid_provider_months: np.ndarray | None  # np.packbits of the provider-months with a payment
    provider_months: dict[str, GroupedSum] | None  # component → provider × month sums, when amounts can cancel
    team_months: np.ndarray
    windows: pd.DataFrame | None


def point_part(s: Settlement, acts: dict[str, str], windows: pd.DataFrame | None, exact_bins: bool = False) -> PointPart:
    """The part of one settlement (on a region or one partition) a point's outcome needs."""
    ctx = s.ctx
    units = set(acts.values())
    per_rm = {c: s.component_rm(c) for c in s.components}
    mask = bins = None
    if "provider_month" in units:
        sums = _provider_month_sums(s, per_rm)
        non_negative = all(bool((a >= 0).all()) for a in [*s.visit.values(), *s.month.values()])  # NaN is not ≥ 0
        if exact_bins or not non_negative:
            bins = sums
        else:
            n = len(ctx.provider_ids) * len(ctx.months)
            paid = np.zeros(n, dtype=bool)
            for g in sums.values():
                paid |= np.fromiter((x != 0 for x in g.scaled), dtype=bool, count=n)
            mask = np.packbits(paid)
    team_months = np.unique(ctx.v_team.astype(np.int64) * len(ctx.months) + ctx.v_month) if "team_month" in units else np.zeros(0, dtype=np.int64)
    return PointPart(
        components={c: exact_sum(v) for c, v in per_rm.items()},
        units={u: count_units(ctx, s, u) for u in units if u not in _REGION_UNITS},
        paid_provider_months=mask,
        provider_months=bins,
        team_months=team_months,
        windows=windows,
    )


def settle_point(ctx: SettlementContext, scenario: Scenario, point: Point, histories: dict[str, SettlementContext], exact_bins: bool = False) -> dict[str, PointPart]:
    """Re-settle on ``ctx`` (a region or one partition) the models ``point`` touches; ``histories`` keeps each model's
    counterfactual history under its written behaviour, for the next point."""
    changed = with_values(scenario, point)
    touched = {model_of(p) for p in point}
    out: dict[str, PointPart] = {}
    for (_, old), (entry, model) in zip(scenario.models, changed.models, strict=True):
        name = entry.name
        if name not in touched:
            continue
        same = model.behaviour == old.behaviour
        cf = histories.get(name) if same else None
        if cf is None:
            cf = apply_behaviour(ctx, model.behaviour)
            if same:
                histories[name] = cf
        s = model.settle(cf)
        s.name = name
        out[name] = point_part(s, changed.acts(entry, model), None if same else window_counts(cf), exact_bins)
    return out


def _sum_bins(bins: list[GroupedSum]) -> np.ndarray:
    total = bins[0]
    for b in bins[1:]:
        total = total + b
    return total.to_floats() if len(total.scaled) else np.zeros(0)


def paid_provider_months(parts: Sequence[PointPart]) -> float | None:
    """Provider-months with a payment over the pieces (as ``compare.combine`` counts them); None when some pieces sent
    masks and others sums (amounts that may cancel): then every piece must send sums."""
    masks = [p.paid_provider_months for p in parts]
    if all(m is not None for m in masks):
        return float(np.unpackbits(np.bitwise_or.reduce(np.stack(masks))).sum())  # type: ignore[arg-type]
    sums = [p.provider_months for p in parts]
    if not all(b is not None for b in sums):
        return None
    components = list(dict.fromkeys(c for b in sums for c in b))  # type: ignore[union-attr]
    frame = pd.DataFrame({c: _sum_bins([b[c] for b in sums if c in b]) for c in components})  # type: ignore[index, operator]
    total = frame.sum(axis=1).to_numpy() if components else np.zeros(0)
    return float((total != 0).sum())


class NeedsExactBins(Exception):
    """A point's pieces sent provider-month masks and sums both: it is settled again with sums from every piece."""


class Evaluator:
    """Evaluates points (path → value) on a comparison's history; counts the settlements it ran.

    This one settles on the comparison's context in this process; ``partitioned.runner.PartitionedEvaluator``
    settles the same points on recipient partitions, with the same outcomes.
    """

    def __init__(self, c: Comparison) -> None:
        self.c = c
        self.scenario: Scenario = c.scenario
        self.baseline = c.baseline
        self.names = [e.name for e, _ in c.scenario.models]
        models = c.models.set_index("model")
        self.base = Outcome(
            cost={n: float(models.loc[n, "cost_sek"]) for n in self.names},
            admin_hours={n: float(models.loc[n, "admin_hours"]) for n in self.names},
            continuity={n: _opt(c.indicators[n].get("continuity_median")) for n in self.names},
        )
        months = [str(m) for m in c.monthly.columns]
        self._day = np.array([np.datetime64(months[0], "D")]) if months else np.array([], dtype="datetime64[D]")
        #: each model's admin unit counts in the comparison (an admin assumption alone changes only minutes and cost)
        self._counts = {n: dict(zip(g["unit"], g["count"].astype(float), strict=True)) for n, g in c.admin.groupby("model", sort=False)}
        self.settles = 0
        self._memo: dict[frozenset[tuple[str, float]], Outcome] = {}
        self._histories: dict[str, SettlementContext] = {}

    @classmethod
    def of(cls, c: Comparison) -> Evaluator:
        """The comparison's evaluator, made once: break-even, the report's sensitivity and sweep share its points."""
        if "_evaluator" not in c.__dict__:
            c.__dict__["_evaluator"] = cls(c)
        ev: Evaluator = c.__dict__["_evaluator"]
        return ev

    def check(self, paths: list[str]) -> None:
        for p in paths:
            check(self.scenario, p)

    def evaluate(self, point: Point) -> Outcome:
        """Costs, admin hours and continuity with each path set to its value (all else as in the scenario)."""
        return self.evaluate_many([point])[0]

    def evaluate_many(self, points: Sequence[Point]) -> list[Outcome]:
        """``evaluate`` of each point; the points not yet seen are settled together (on partitions: one round of tasks)."""
        keys = [_key(p) for p in points]
        todo = list({k: dict(p) for k, p in zip(keys, points, strict=True) if p and k not in self._memo}.values())
        for exact in (False, True):  # with masks where they serve; the points that need sums again, with sums
            again = []
            for point, parts in zip(todo, self._settle(todo, exact) if todo else [], strict=True):
                try:
                    self._memo[_key(point)] = self._outcome(point, parts)
                except NeedsExactBins:
                    if exact:
                        raise
                    again.append(point)
            todo = again
        return [self._memo[k] if p else self.base for k, p in zip(keys, points, strict=True)]

    def _settle(self, points: list[Point], exact_bins: bool) -> list[list[dict[str, PointPart]]]:
        """Each point's re-settled models, per piece of the region (here: the region in one piece)."""
        if not self._histories:
            self._histories = {n: s.ctx for n, s in self.c.settlements.items()}
        return [[settle_point(self.c.ctx, self.scenario, p, self._histories, exact_bins)] for p in points]

    def _outcome(self, point: Point, parts: list[dict[str, PointPart]]) -> Outcome:
        """A point's outcome from its pieces' parts (exact sums and gathers, as ``compare.combine``)."""
        scenario = with_values(self.scenario, point)
        touched = {model_of(p) for p in point}
        admin_changed = None in touched
        cost, hours, cont = dict(self.base.cost), dict(self.base.admin_hours), dict(self.base.continuity)
        for entry, model in scenario.models:
            name = entry.name
            if name not in touched and not admin_changed:
                continue
            acts = scenario.acts(entry, model)
            counts = self._counts.get(name, {})
            if name in touched:
                mine = [p[name] for p in parts if name in p]
                components = [float(sum((p.components[c] for p in mine if c in p.components), ExactSum())) for c in dict.fromkeys(c for p in mine for c in p.components)]
                cost[name] = float(sum(components))  # as compare.combine: the components' exact sums, added in order
                counts = {u: float(sum(p.units.get(u, 0.0) for p in mine)) for u in set(acts.values()) if u not in _REGION_UNITS}
                if "provider_month" in acts.values():
                    paid = paid_provider_months(mine)
                    if paid is None:
                        raise NeedsExactBins(name)
                    counts["provider_month"] = paid
                if "team_month" in acts.values():
                    counts["team_month"] = float(len(np.unique(np.concatenate([p.team_months for p in mine]))))
                windows = [p.windows for p in mine if p.windows is not None]
                if windows:  # the behaviour changed: continuity on the new counterfactual history
                    cont[name] = _opt(continuity_from(pd.concat(windows, ignore_index=True))["continuity_median"])
            admin = under_behaviour(scenario.spec.admin, model.behaviour.admin_minutes)
            hours[name] = float(admin_table(self._day, acts, admin, counts)["hours"].sum())
        self.settles += len(touched & set(self.names))
        return Outcome(cost, hours, cont)

    def close(self) -> None:
        """Release what the evaluator holds (a partitioned one: its pool of workers)."""


def _key(point: Point) -> frozenset[tuple[str, float]]:
    return frozenset((k, float(v)) for k, v in point.items())


def _opt(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None

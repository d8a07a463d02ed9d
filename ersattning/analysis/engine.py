"""Settle points of a scenario's parameter space on one comparison's context.

The projection and the context are built once (by ``compare``); a point
re-settles only the models whose parameters it changes, and re-derives a
model's counterfactual history only when a parameter of its entry (a behaviour
assumption) changes (docs/models.md, "Sensitivity, sweeps, break-even and
uncertainty"). Admin assumptions change administrative hours only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ersattning.admin import admin_load, under_behaviour
from ersattning.behaviour import apply as apply_behaviour
from ersattning.compare import Comparison
from ersattning.indicators import continuity
from ersattning.models.base import Settlement
from ersattning.scenario import Scenario

from .paths import check, model_of, with_values


@dataclass(frozen=True)
class Outcome:
    """One point: each model's cost (SEK), administrative hours and continuity (median distinct staff per 14 days)."""

    cost: dict[str, float]
    admin_hours: dict[str, float]
    continuity: dict[str, float | None]

    def delta(self, model: str, baseline: str) -> float:
        """The model's cost difference against the baseline, SEK."""
        return self.cost[model] - self.cost[baseline]


class Evaluator:
    """Evaluates points (path → value) on a comparison's history; counts the settlements it ran."""

    def __init__(self, c: Comparison) -> None:
        self.c = c
        self.scenario: Scenario = c.scenario
        self.baseline = c.baseline
        self.names = [e.name for e, _ in c.scenario.models]
        admin_hours = dict(zip(c.models["model"], c.models["admin_hours"].astype(float), strict=True))
        self.base = Outcome(
            cost={n: s.total() for n, s in c.settlements.items()},
            admin_hours=admin_hours,
            continuity={n: _opt(c.indicators[n].get("continuity_median")) for n in self.names},
        )
        self.settles = 0
        self._memo: dict[frozenset[tuple[str, float]], Outcome] = {}

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

    def evaluate(self, point: dict[str, float]) -> Outcome:
        """Costs, admin hours and continuity with each path set to its value (all else as in the scenario)."""
        if not point:
            return self.base
        key = frozenset((k, float(v)) for k, v in point.items())
        if key not in self._memo:
            self._memo[key] = self._evaluate(point)
        return self._memo[key]

    def _evaluate(self, point: dict[str, float]) -> Outcome:
        scenario = with_values(self.scenario, point)
        touched = {model_of(p) for p in point}
        admin_changed = None in touched
        cost, hours, cont = dict(self.base.cost), dict(self.base.admin_hours), dict(self.base.continuity)
        for (_, old_model), (entry, model) in zip(self.scenario.models, scenario.models, strict=True):
            name = entry.name
            if name not in touched and not admin_changed:
                continue
            s: Settlement = self.c.settlements[name]
            ctx = s.ctx
            if name in touched:
                if model.behaviour != old_model.behaviour:  # a behaviour assumption changed: the model's counterfactual history again
                    ctx = apply_behaviour(self.c.ctx, model.behaviour)
                    cont[name] = _opt(continuity(ctx)["continuity_median"])
                s = model.settle(ctx)
                s.name = name
                cost[name] = s.total()
                self.settles += 1
            admin = under_behaviour(scenario.spec.admin, model.behaviour.admin_minutes)
            hours[name] = float(admin_load(ctx, s, scenario.acts(entry, model), admin)["hours"].sum())
        return Outcome(cost, hours, cont)


def _opt(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None

"""Sweeps: one- and two-way grids of parameter values, each point settled (docs/models.md)."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ersattning.compare import Comparison

from .engine import Evaluator
from .paths import PRICES
from .sensitivity import _plain, default_parameter

MAX_POINTS = 10_000


@dataclass(frozen=True)
class Axis:
    """One varied parameter: ``PATH=LOW..HIGH/STEPS``."""

    path: str
    low: float
    high: float
    steps: int

    @classmethod
    def parse(cls, text: str) -> Axis:
        m = re.fullmatch(r"\s*([^=\s]+)\s*=\s*([-+0-9.eE]+)\s*\.\.\s*([-+0-9.eE]+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ValueError(f"--vary {text!r}: expected PARAM=LOW..HIGH/STEPS, e.g. models.granted.price_factor=0.7..1.0/7")
        digits = m.group(4).lstrip("0")
        if len(digits) > 6 or int(digits or "0") > MAX_POINTS:  # checked before anything is allocated
            raise ValueError(f"--vary {text!r}: {m.group(4)} steps: at most {MAX_POINTS:,} points in a sweep")
        axis = cls(m.group(1), float(m.group(2)), float(m.group(3)), int(m.group(4)))
        if axis.steps < 1 or (axis.steps == 1 and axis.low != axis.high):
            raise ValueError(f"--vary {text!r}: STEPS must be at least 2 (1 only when LOW equals HIGH)")
        return axis

    def values(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.steps)


@dataclass
class Sweep:
    baseline: str
    axes: list[Axis]
    rows: pd.DataFrame  # one column per axis path, then model, cost_sek, delta_sek, admin_hours (long)
    suppressed: bool
    manifest: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "suppressed": self.suppressed,
            "axes": [{"parameter": a.path, "low": a.low, "high": a.high, "steps": a.steps} for a in self.axes],
            "points": [{k: _plain(v) for k, v in r.items()} for r in self.rows.to_dict("records")],
            "manifest": self.manifest,
        }


def check_points(axes: list[Axis]) -> None:
    """Refuse a grid of more than :data:`MAX_POINTS` points before it (or the comparison) is made."""
    points_asked = math.prod(a.steps for a in axes)
    if points_asked > MAX_POINTS:
        raise ValueError(f"{points_asked:,} points: at most {MAX_POINTS:,} in a sweep")


def sweep(c: Comparison, axes: list[Axis], evaluator: Evaluator | None = None) -> Sweep:
    """Every point of the grid of ``axes`` (one or two of them)."""
    if not 1 <= len(axes) <= 2:
        raise ValueError("a sweep varies one or two parameters")
    if len({a.path for a in axes}) < len(axes):
        raise ValueError("a sweep varies two different parameters")
    check_points(axes)
    ev = evaluator or Evaluator.of(c)
    ev.check([a.path for a in axes])
    grid = list(itertools.product(*(a.values() for a in axes)))
    points = [{a.path: float(v) for a, v in zip(axes, values, strict=True)} for values in grid]
    rows = []
    for point, out in zip(points, ev.evaluate_many(points), strict=True):
        for m in ev.names:
            rows.append({**point, "model": m, "cost_sek": out.cost[m], "delta_sek": out.delta(m, ev.baseline), "admin_hours": out.admin_hours[m]})
    return _result(c, ev, axes, rows, len(grid))


def price_sweep(c: Comparison, low: float = 0.8, high: float = 1.2, steps: int = 5, evaluator: Evaluator | None = None) -> Sweep:
    """Each alternative model with its prices × a factor from ``low`` to ``high`` (models.<name>.prices), against the
    baseline as written: where its line crosses zero is its break-even (the report's sweep when no other ran)."""
    axis = Axis(PRICES, low, high, steps)
    check_points([axis])
    ev = evaluator or Evaluator.of(c)
    ev.evaluate_many([{default_parameter(m): float(f)} for f in axis.values() for m in ev.names if m != ev.baseline])
    rows = []
    for f in axis.values():
        for m in ev.names:
            out = ev.evaluate({default_parameter(m): float(f)}) if m != ev.baseline else ev.base
            rows.append({PRICES: float(f), "model": m, "cost_sek": out.cost[m], "delta_sek": out.delta(m, ev.baseline), "admin_hours": out.admin_hours[m]})
    return _result(c, ev, [axis], rows, steps)


def _result(c: Comparison, ev: Evaluator, axes: list[Axis], rows: list[dict[str, Any]], points: int) -> Sweep:
    frame = pd.DataFrame(rows)
    if c.region_hidden:
        frame[["cost_sek", "delta_sek", "admin_hours"]] = float("nan")
    return Sweep(ev.baseline, axes, frame, c.region_hidden, {"points": points, "settlements": ev.settles})

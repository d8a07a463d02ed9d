"""One-way sensitivity: each ranged parameter at its low and its high end, all else as written.

For each alternative model, the change in its cost difference against the
baseline (and in its administrative hours and continuity) as each parameter
goes low and high; a tornado is one model's rows sorted by swing (docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ersattning.compare import Comparison
from ersattning.parameters import Bound

from .engine import Evaluator, Outcome
from .paths import PRICES, is_factor, scenario_parameters

COLUMNS = [
    "model", "parameter", "low", "high", "low_source", "high_source", "delta_sek",
    "delta_low_sek", "delta_high_sek", "change_low_sek", "change_high_sek", "swing_sek",
    "admin_hours_change_low", "admin_hours_change_high", "continuity_change_low", "continuity_change_high",
]  # fmt: skip
FIGURES = COLUMNS[6:]  # about the region: hidden with it


@dataclass
class Sensitivity:
    baseline: str
    rows: pd.DataFrame  # COLUMNS, each model's rows sorted by swing
    suppressed: bool  # the region's figures are hidden (suppression.py): every figure is None
    manifest: dict[str, Any] = field(default_factory=dict)

    def tornado(self, model: str) -> pd.DataFrame:
        return self.rows[self.rows["model"] == model].reset_index(drop=True)

    def to_json(self) -> dict[str, Any]:
        models: dict[str, list[dict[str, Any]]] = {}
        for r in self.rows.to_dict("records"):
            models.setdefault(r["model"], []).append({k: _plain(v) for k, v in r.items() if k != "model"})
        return {"baseline": self.baseline, "suppressed": self.suppressed, "tornado": models, "manifest": self.manifest}


#: the range of a model's price factor (models.<name>.prices), when no parameter of the scenario has one
FACTOR_RANGE = (Bound(value=0.9, assumption=True, note="prices −10 %"), Bound(value=1.1, assumption=True, note="prices +10 %"))


def ranged(c: Comparison) -> list[str]:
    """The scenario's parameters that carry a range, in the order they are written; without any, each model's price factor."""
    out = [k for k, p in scenario_parameters(c.scenario).items() if p.low is not None and p.high is not None]
    return out or [default_parameter(e.name) for e, _ in c.scenario.models]


def sensitivity(c: Comparison, parameters: list[str] | None = None, evaluator: Evaluator | None = None) -> Sensitivity:
    """Each parameter (default: every ranged one) at low and at high; one row per alternative model and parameter."""
    ev = evaluator or Evaluator.of(c)
    params = scenario_parameters(c.scenario)
    names = parameters if parameters is not None else ranged(c)
    ev.check(names)
    ends = []
    for path in names:
        low, high = FACTOR_RANGE if is_factor(path) else (params[path].low, params[path].high)
        if low is None or high is None:
            raise ValueError(f"{path} has no range (low and high)")
        ends.append((path, low, high))
    ev.evaluate_many([{path: b.value} for path, low, high in ends for b in (low, high)])  # settled together (one round on partitions)
    rows = []
    for path, low, high in ends:
        lo, hi = ev.evaluate({path: low.value}), ev.evaluate({path: high.value})
        for m in ev.names:
            if m != ev.baseline:
                rows.append(_row(ev, m, path, low, high, lo, hi))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = frame.sort_values(["model", "swing_sek"], ascending=[True, False], kind="stable")
    order = {m: i for i, m in enumerate(ev.names)}
    frame = frame.sort_values("model", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    hidden = c.region_hidden
    if hidden:
        frame[FIGURES] = float("nan")
    manifest = {"parameters": names, "runs": 2 * len(names), "settlements": ev.settles}
    return Sensitivity(baseline=ev.baseline, rows=frame, suppressed=hidden, manifest=manifest)


def default_parameter(model: str) -> str:
    """A uniform factor on the model's prices (paths.py)."""
    return f"models.{model}.{PRICES}"


def _row(ev: Evaluator, m: str, path: str, low: Bound, high: Bound, lo: Outcome, hi: Outcome) -> dict[str, Any]:
    base, b = ev.base, ev.baseline
    d0 = base.delta(m, b)
    dl, dh = lo.delta(m, b), hi.delta(m, b)

    def change(after: float | None, before: float | None) -> float:
        return float("nan") if after is None or before is None else after - before

    return {
        "model": m, "parameter": path, "low": low.value, "high": high.value,
        "low_source": low.source or "assumption", "high_source": high.source or "assumption",
        "delta_sek": d0, "delta_low_sek": dl, "delta_high_sek": dh, "change_low_sek": dl - d0, "change_high_sek": dh - d0,
        "swing_sek": abs(dh - dl),
        "admin_hours_change_low": lo.admin_hours[m] - base.admin_hours[m], "admin_hours_change_high": hi.admin_hours[m] - base.admin_hours[m],
        "continuity_change_low": change(lo.continuity[m], base.continuity[m]), "continuity_change_high": change(hi.continuity[m], base.continuity[m]),
    }  # fmt: skip


def _plain(v: Any) -> Any:
    """A JSON value: NaN (hidden or undefined) as null, numbers rounded to 4 decimals."""
    if isinstance(v, float):
        return None if v != v else round(v, 4)
    return v

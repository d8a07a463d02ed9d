"""Uncertainty: every parameter with a distribution drawn at once, N times, from one seed.

Each model's cost and its difference against the baseline are summarised as
median and 90 % interval, with the probability that the alternative is cheaper.
Draws come from ``numpy.random.Generator(PCG64(seed))``, parameter by parameter
in path order, and no global state: the same seed gives the same numbers on any
machine (with the same numpy). A model whose drawn parameters are all prices is
linear in them (paths.PRICE_LEAVES): it is settled at the centre and once per
price to get the line, which is verified against a full settlement of the first
draw (else every draw is settled) — docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ersattning.compare import Comparison

from .breakeven import TOLERANCE_SEK
from .engine import Evaluator
from .paths import is_price, model_of, scenario_parameters
from .sensitivity import _plain

GENERATOR = "PCG64"
INTERVAL = (5.0, 95.0)  # a 90 % interval
SUMMARY = ["model", "cost_median_sek", "cost_p05_sek", "cost_p95_sek", "delta_median_sek", "delta_p05_sek", "delta_p95_sek", "p_cheaper"]


@dataclass
class Uncertainty:
    baseline: str
    summary: pd.DataFrame  # SUMMARY, one row per model
    costs: pd.DataFrame  # one row per draw, one column per model
    suppressed: bool
    manifest: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "suppressed": self.suppressed,
            "models": [{k: _plain(v) for k, v in r.items()} for r in self.summary.to_dict("records")],
            "manifest": self.manifest,
        }


def distributed(c: Comparison) -> list[str]:
    """The scenario's parameters that carry a distribution, in path order (the order they are drawn in)."""
    return sorted(k for k, p in scenario_parameters(c.scenario).items() if p.distribution is not None)


#: the most joint draws an uncertainty analysis makes (the CLI's --draws, and the API)
MAX_DRAWS = 100_000


def draw(c: Comparison, draws: int, seed: int) -> pd.DataFrame:
    """The drawn values: one row per draw, one column per distributed parameter."""
    params = scenario_parameters(c.scenario)
    rng = np.random.Generator(np.random.PCG64(seed))
    out = {}
    for path in distributed(c):
        p = params[path]
        assert p.distribution is not None
        lo, hi = (p.low.value if p.low else None), (p.high.value if p.high else None)
        out[path] = p.distribution.draw(rng, p.centre, lo, hi, draws)
    return pd.DataFrame(out, index=pd.RangeIndex(draws, name="draw"))


def uncertainty(c: Comparison, draws: int, seed: int, evaluator: Evaluator | None = None) -> Uncertainty:
    if not 1 <= draws <= MAX_DRAWS:  # before anything is drawn
        raise ValueError(f"--draws must be 1 to {MAX_DRAWS:,} (got {draws:,})")
    ev = evaluator or Evaluator.of(c)
    values = draw(c, draws, seed)
    costs = pd.DataFrame(index=values.index)
    methods = {}
    for m in ev.names:
        paths = [p for p in values.columns if model_of(p) == m]
        if not paths:
            costs[m] = ev.base.cost[m]
            methods[m] = "as written (no drawn parameter)"
            continue
        linear = _linear(ev, m, values[paths]) if all(is_price(p) for p in paths) else None
        if linear is not None:
            costs[m] = linear
            methods[m] = "linear in its prices (verified on the first draw)"
        else:
            costs[m] = [out.cost[m] for out in ev.evaluate_many(values[paths].to_dict("records"))]
            methods[m] = "settled at every draw"
    rows = []
    base = costs[ev.baseline].to_numpy()
    for m in ev.names:
        cost = costs[m].to_numpy()
        delta = cost - base
        lo, mid, hi = np.percentile(cost, [INTERVAL[0], 50, INTERVAL[1]])
        dlo, dmid, dhi = np.percentile(delta, [INTERVAL[0], 50, INTERVAL[1]])
        rows.append([m, mid, lo, hi, dmid, dlo, dhi, float((delta < 0).mean()) if m != ev.baseline else float("nan")])
    summary = pd.DataFrame(rows, columns=SUMMARY)
    hidden = c.region_hidden
    if hidden:
        summary[SUMMARY[1:]] = float("nan")
    manifest = {
        "seed": seed,
        "draws": draws,
        "generator": f"numpy.random.Generator({GENERATOR}(seed)), numpy {np.__version__}",
        "interval": "90 % (5th to 95th percentile)",
        "parameters": {p: _describe(c, p) for p in values.columns},
        "methods": methods,
        "settlements": ev.settles,
    }
    return Uncertainty(ev.baseline, summary, costs, hidden, manifest)


def _linear(ev: Evaluator, m: str, values: pd.DataFrame) -> np.ndarray | None:
    """The model's cost at every draw from its line in its prices; None when the first draw does not lie on it."""
    params = scenario_parameters(ev.scenario)
    centre = {p: params[p].centre for p in values.columns}
    steps = {p: max(abs(x), 1.0) * 0.1 for p, x in centre.items()}
    ev.evaluate_many([centre, *({**centre, p: x + steps[p]} for p, x in centre.items()), dict(values.iloc[0])])  # one round
    c0 = ev.evaluate(centre).cost[m]
    slopes = {}
    for p, x in centre.items():
        slopes[p] = (ev.evaluate({**centre, p: x + steps[p]}).cost[m] - c0) / steps[p]
    predicted = np.full(len(values), c0)
    for p in values.columns:
        predicted += slopes[p] * (values[p].to_numpy() - centre[p])
    first = ev.evaluate(dict(values.iloc[0])).cost[m]
    if abs(first - predicted[0]) > TOLERANCE_SEK + 1e-9 * abs(first):
        return None
    predicted[0] = first
    return predicted


def _describe(c: Comparison, path: str) -> dict[str, Any]:
    p = scenario_parameters(c.scenario)[path]
    assert p.distribution is not None
    return {"value": p.centre, **p.distribution.model_dump(exclude_none=True), "low": p.low.value if p.low else None, "high": p.high.value if p.high else None}

"""Break-even: the value of a parameter at which a model costs exactly what the baseline costs.

Costs are piecewise linear in prices (docs/models.md): on each piece the
difference against the baseline is a line, so two evaluations give the root
exactly. The root is verified by settling at it; when a rounding, cap or tier
puts it on another piece, the next secant step uses two points on that piece
(a piecewise-linear function is solved after finitely many steps). A value is
reported only when the settled difference is within half an öre (TOLERANCE_SEK).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ersattning.compare import Comparison

from .engine import Evaluator
from .paths import is_factor, resolve
from .sensitivity import default_parameter

TOLERANCE_SEK = 0.005  # half an öre: the verified difference rounds to 0.00 SEK
MAX_STEPS = 30


@dataclass(frozen=True)
class BreakEven:
    model: str
    parameter: str  # a path, or models.<name>.prices (a uniform factor on the model's prices)
    current: float  # the value as written (1 for the price factor)
    value: float | None  # the break-even value; None when there is none (a flat or unsolvable difference)
    delta_at_value_sek: float | None  # the settled difference at ``value`` (|·| ≤ TOLERANCE_SEK)
    delta_sek: float  # the difference as written
    evaluations: int

    def to_json(self, hidden: bool = False) -> dict[str, Any]:
        """As JSON; ``hidden`` (the region's figures are suppressed) leaves out every figure derived from the history."""
        keep = not hidden
        return {
            "model": self.model,
            "parameter": self.parameter,
            "current": self.current,
            "value": self.value if keep else None,
            "delta_at_value_sek": self.delta_at_value_sek if keep else None,
            "delta_sek": self.delta_sek if keep else None,
            "suppressed": hidden,
        }


def break_even(c: Comparison, model: str, parameter: str | None = None, evaluator: Evaluator | None = None) -> BreakEven:
    """Solve cost(model) − cost(baseline) = 0 for ``parameter`` (default: a uniform factor on the model's prices)."""
    ev = evaluator or Evaluator.of(c)
    path = parameter or default_parameter(model)
    ev.check([path])
    current = 1.0 if is_factor(path) else resolve(c.scenario, path).centre
    x0 = current
    evaluations = 0

    def g(x: float) -> float:
        nonlocal evaluations
        evaluations += 1
        return ev.evaluate({path: x}).delta(model, ev.baseline)

    d_written = ev.base.delta(model, ev.baseline)
    x1 = _second(x0)
    ev.evaluate_many([{path: x0}, {path: x1}])  # the first two points together (one round on partitions)
    g0 = g(x0)
    g1 = g(x1)
    value: float | None = None
    at_value: float | None = None
    if abs(g0) <= TOLERANCE_SEK:
        value, at_value = x0, g0
    for _ in range(MAX_STEPS):
        if value is not None or g1 == g0:
            break
        x2 = x1 - g1 * (x1 - x0) / (g1 - g0)
        g2 = g(x2)
        if abs(g2) <= TOLERANCE_SEK:
            value, at_value = x2, g2
            break
        x0, g0, x1, g1 = x1, g1, x2, g2
    return BreakEven(model, path, current, value, at_value, d_written, evaluations)


def _second(x0: float) -> float:
    """The secant's second starting point."""
    return x0 * 1.1 if x0 else 1.0


def break_evens(c: Comparison, evaluator: Evaluator | None = None) -> list[BreakEven]:
    """The default break-even of every alternative model (its price factor)."""
    ev = evaluator or Evaluator.of(c)
    ev.evaluate_many([{default_parameter(m): x} for m in ev.names if m != ev.baseline for x in (1.0, _second(1.0))])  # every model's start, one round
    return [break_even(c, m, evaluator=ev) for m in ev.names if m != ev.baseline]


def break_even_summary(c: Comparison) -> list[dict[str, Any]]:
    """Per alternative model, the uniform factor on its prices at which it costs what the baseline costs, solved and verified
    (docs/models.md); hidden with the region's figures. Computed once per comparison."""
    if "_break_even" not in c.__dict__:
        c.__dict__["_break_even"] = [b.to_json(hidden=c.region_hidden) for b in break_evens(c)]
    out: list[dict[str, Any]] = c.__dict__["_break_even"]
    return out

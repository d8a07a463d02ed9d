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
    return _solve(ev, [_Secant(ev, model, path)])[0]


def break_evens(c: Comparison, evaluator: Evaluator | None = None) -> list[BreakEven]:
    """The default break-even of every alternative model (its price factor), the searches side by side."""
    ev = evaluator or Evaluator.of(c)
    return _solve(ev, [_Secant(ev, m, default_parameter(m)) for m in ev.names if m != ev.baseline])


class _Secant:
    """One break-even search: the secant's next point, and what it found."""

    def __init__(self, ev: Evaluator, model: str, path: str) -> None:
        self.ev, self.model, self.path = ev, model, path
        self.current = 1.0 if is_factor(path) else resolve(ev.scenario, path).centre
        second = self.current * 1.1 if self.current else 1.0
        self.xs: list[float] = [self.current, second]
        self.gs: list[float] = []
        self.next: list[float] = list(self.xs)  # the points to settle next (none: done)
        self.value: float | None = None
        self.at_value: float | None = None
        self.steps = 0

    def advance(self) -> None:
        """Read the differences at the points asked for (settled by now); solved, stuck, or the next secant point."""
        for x in self.next:
            self.gs.append(self.ev.evaluate({self.path: x}).delta(self.model, self.ev.baseline))
        x, g = (self.xs[0], self.gs[0]) if len(self.gs) == 2 else (self.xs[-1], self.gs[-1])
        if abs(g) <= TOLERANCE_SEK:
            self.value, self.at_value = x, g
        (x0, x1), (g0, g1) = self.xs[-2:], self.gs[-2:]
        if self.value is not None or g1 == g0 or self.steps >= MAX_STEPS:
            self.next = []
            return
        self.steps += 1
        self.xs.append(x1 - g1 * (x1 - x0) / (g1 - g0))
        self.next = [self.xs[-1]]

    def result(self) -> BreakEven:
        return BreakEven(self.model, self.path, self.current, self.value, self.at_value, self.ev.base.delta(self.model, self.ev.baseline), len(self.gs))


def _solve(ev: Evaluator, searches: list[_Secant]) -> list[BreakEven]:
    """The searches in lockstep: each step's points of all of them settled together (one round of tasks on partitions)."""
    while any(s.next for s in searches):
        ev.evaluate_many([{s.path: x} for s in searches for x in s.next])
        for s in searches:
            if s.next:
                s.advance()
    return [s.result() for s in searches]


def break_even_summary(c: Comparison) -> list[dict[str, Any]]:
    """Per alternative model, the uniform factor on its prices at which it costs what the baseline costs, solved and verified
    (docs/models.md); hidden with the region's figures. Computed once per comparison."""
    if "_break_even" not in c.__dict__:
        c.__dict__["_break_even"] = [b.to_json(hidden=c.region_hidden) for b in break_evens(c)]
    out: list[dict[str, Any]] = c.__dict__["_break_even"]
    return out

"""Dated parameters with their source, as OpenFisca keeps tax parameters.

A parameter is written in a scenario either as a plain number (valid from the
beginning of time) or with dated values and a source::

    personal_care: 464
    personal_care: {values: {2024-01-01: 485, 2025-01-01: 498}, source: "Stockholm stad, ersättning 2024"}
    hourly_cost: {values: {2024-01-01: 420}, assumption: true, note: "staff cost incl. social fees"}

A parameter may carry a range and a distribution for the sensitivity and
uncertainty analyses (docs/models.md, "Sensitivity, sweeps, break-even and
uncertainty")::

    personal_care: {values: {2024-01-01: 485}, source: "…",
                    low: {value: 450, source: "Solna 2024"}, high: 520,   # a plain number is an assumption
                    distribution: {kind: normal, sd: 15}}

A value of the range or a draw stands for the parameter over the whole period
(``Param.fixed``); a range must hold the value when it has only one.

Evaluation is vectorized: ``param.at(days)`` looks up the value in force on
each day with one ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

BEGINNING = date(1900, 1, 1)


class ParameterError(ValueError):
    """A parameter has no value for a day that is settled."""


class Bound(BaseModel):
    """One end of a parameter's range, with its own source or marked as an assumption."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    source: str | None = None
    assumption: bool = False
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"value": data, "assumption": True}  # a bare number has no source: it is an assumption
        return data

    @model_validator(mode="after")
    def _sourced(self) -> Bound:
        if not self.source and not self.assumption:
            raise ValueError("a range's end needs a source, or assumption: true")
        return self


class Distribution(BaseModel):
    """How an uncertain parameter is drawn, around its value (docs/models.md).

    ``normal``: mean the value, ``sd``; ``lognormal``: median the value, ``sd``
    of its logarithm; ``triangular``: low, mode the value, high; ``uniform``:
    low to high; ``beta`` (shares in 0..1): mean the value, ``sd``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["normal", "lognormal", "triangular", "uniform", "beta"]
    sd: float | None = Field(None, gt=0, description="normal and beta: standard deviation; lognormal: of the logarithm")
    source: str | None = None
    assumption: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    def draw(self, rng: np.random.Generator, centre: float, low: float | None, high: float | None, n: int) -> np.ndarray:
        """``n`` draws (the generator is the caller's, so one seed gives the same draws everywhere)."""
        if self.kind == "normal":
            return rng.normal(centre, float(self.sd or 0), n)
        if self.kind == "lognormal":
            return centre * np.exp(rng.normal(0.0, float(self.sd or 0), n))
        if self.kind == "beta":
            a, b = beta_shape(centre, float(self.sd or 0))
            return rng.beta(a, b, n)
        lo, hi = float(centre if low is None else low), float(centre if high is None else high)
        if self.kind == "uniform":
            return rng.uniform(lo, hi, n)
        return rng.triangular(lo, centre, hi, n) if hi > lo else np.full(n, centre)


def beta_shape(mean: float, sd: float) -> tuple[float, float]:
    """The beta distribution's (α, β) with this mean and standard deviation (method of moments)."""
    k = mean * (1 - mean) / sd**2 - 1
    return mean * k, (1 - mean) * k


class Param(BaseModel):
    """A number that may change over time, with where it comes from (and, optionally, how uncertain it is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    values: dict[date, float] = Field(description="value in force from each date on")
    source: str | None = Field(None, description="where the figure comes from")
    assumption: bool = Field(False, description="true when the figure is an assumption rather than a sourced fact")
    note: str | None = None
    low: Bound | None = Field(None, description="low end of the range the sensitivity analysis tries")
    high: Bound | None = Field(None, description="high end of the range the sensitivity analysis tries")
    distribution: Distribution | None = Field(None, description="how the uncertainty analysis draws the parameter")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"values": {BEGINNING: data}}
        if isinstance(data, dict) and data and "values" not in data and all(isinstance(k, (date, str)) for k in data):
            try:
                return {"values": {date.fromisoformat(str(k)) if not isinstance(k, date) else k: v for k, v in data.items()}}
            except ValueError:
                return data
        return data

    @model_validator(mode="after")
    def _not_empty(self) -> Param:
        if not self.values:
            raise ValueError("a parameter needs at least one value")
        low, high = self.low, self.high
        if (low is None) != (high is None):
            raise ValueError("a range needs both low and high")
        if low is not None and high is not None:
            if low.value > high.value:
                raise ValueError(f"low ({low.value:g}) is above high ({high.value:g})")
            if len(self.values) == 1 and not low.value <= self.centre <= high.value:
                raise ValueError(f"the value {self.centre:g} is outside its range {low.value:g}..{high.value:g}")
        d = self.distribution
        if d is not None:
            if d.kind in ("triangular", "uniform") and low is None:
                raise ValueError(f"a {d.kind} distribution needs low and high")
            if d.kind in ("normal", "lognormal", "beta") and d.sd is None:
                raise ValueError(f"a {d.kind} distribution needs sd")
            if d.kind == "lognormal" and self.centre <= 0:
                raise ValueError("a lognormal distribution needs a positive value")
            if d.kind == "beta":
                m, sd = self.centre, float(d.sd or 0)
                if not 0 < m < 1 or sd**2 >= m * (1 - m):
                    raise ValueError("a beta distribution needs a share strictly between 0 and 1 and sd² < value × (1 − value)")
        return self

    @property
    def centre(self) -> float:
        """The value a range and a distribution are about: the only value, or the latest one."""
        return float(self.values[max(self.values)])

    def fixed(self, value: float) -> Param:
        """The parameter at ``value`` over the whole period (a point of a sensitivity, sweep or draw)."""
        return self.model_copy(update={"values": {BEGINNING: float(value)}})

    @property
    def dated(self) -> bool:
        return list(self.values) != [BEGINNING]

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        items = sorted(self.values.items())
        return np.array([d for d, _ in items], dtype="datetime64[D]"), np.array([v for _, v in items], dtype=np.float64)

    def at(self, days: np.ndarray, name: str = "parameter", *, strict: bool = True) -> np.ndarray:
        """Value in force on each day (``datetime64``); before the first date an error (or NaN when not strict)."""
        starts, values = self._arrays()
        d = np.asarray(days).astype("datetime64[D]")
        idx = np.searchsorted(starts, d, side="right") - 1
        if len(d) and (idx < 0).any():
            if not strict:
                return np.where(idx < 0, np.nan, values[np.maximum(idx, 0)])
            raise_before(name, d[idx < 0].min(), starts[0])
        return values[np.maximum(idx, 0)]

    def value_at(self, day: date | np.datetime64, name: str = "parameter") -> float:
        return float(self.at(np.array([day], dtype="datetime64[D]"), name)[0])

    def describe(self) -> str:
        if not self.dated:
            text = f"{self.values[BEGINNING]:g}"
        else:
            text = ", ".join(f"from {d}: {v:g}" for d, v in sorted(self.values.items()))
        if self.source:
            text += f" (source: {self.source})"
        elif self.assumption:
            text += " (assumption)"
        return text

    def scaled(self, k: float) -> Param:
        return self.model_copy(update={"values": {d: v * k for d, v in self.values.items()}})


def raise_before(name: str, day: object, first: object) -> None:
    raise ParameterError(f"{name} has no value on {day} (its first value is from {first})")


def param(value: float, source: str | None = None, *, assumption: bool = False, since: date = BEGINNING) -> Param:
    """A parameter in code, for defaults: ``param(0.064, "Stockholm 2023 escort scale")``."""
    return Param(values={since: value}, source=source, assumption=assumption)


def iter_params(obj: object, prefix: str = "") -> Iterator[tuple[str, Param]]:
    """Every ``Param`` inside a validated object (a model, a scenario section), by its dotted path: ``rates.personal_care``, ``tiers[0].amount``."""
    if isinstance(obj, Param):
        yield prefix, obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from iter_params(getattr(obj, name), f"{prefix}.{name}" if prefix else name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from iter_params(v, f"{prefix}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from iter_params(v, f"{prefix}[{i}]")

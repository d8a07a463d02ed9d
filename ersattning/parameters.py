"""Dated parameters with their source, as OpenFisca keeps tax parameters.

A parameter is written in a scenario either as a plain number (valid from the
beginning of time) or with dated values and a source::

    personal_care: 464
    personal_care: {values: {2024-01-01: 485, 2025-01-01: 498}, source: "Stockholm stad, ersättning 2024"}
    hourly_cost: {values: {2024-01-01: 420}, assumption: true, note: "staff cost incl. social fees"}

Evaluation is vectorized: ``param.at(days)`` looks up the value in force on
each day with one ``searchsorted``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

BEGINNING = date(1900, 1, 1)


class ParameterError(ValueError):
    """A parameter has no value for a day that is settled."""


class Param(BaseModel):
    """A number that may change over time, with where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    values: dict[date, float] = Field(description="value in force from each date on")
    source: str | None = Field(None, description="where the figure comes from")
    assumption: bool = Field(False, description="true when the figure is an assumption rather than a sourced fact")
    note: str | None = None

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
        return self

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

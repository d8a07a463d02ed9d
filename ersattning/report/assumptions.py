"""Every parameter a comparison used, with its dates and where it comes from.

Reports list these so a reader can see which figures are sourced facts and
which are assumptions (docs/models.md). The list is read off the validated
scenario, so defaults a scenario file left out are listed too, with the source
the code gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel

from ersattning.parameters import BEGINNING, Param
from ersattning.scenario import Scenario


@dataclass(frozen=True)
class Assumption:
    """One value of one parameter: from ``valid_from`` on (None: always)."""

    section: str  # a model's name, "admin", "indicators" or "providers"
    parameter: str  # dotted path inside the section, e.g. rates.personal_care
    valid_from: date | None
    value: float | str | None
    source: str | None
    assumption: bool  # labelled an assumption (or given without a source)
    note: str | None


def scenario_assumptions(scenario: Scenario) -> list[Assumption]:
    """The parameters of every model, the admin assumptions, the indicator settings and what is assumed of providers."""
    out: list[Assumption] = []
    for entry, model in scenario.models:
        out.extend(_walk(entry.name, "", model))
    out.extend(_walk("admin", "", scenario.spec.admin))
    out.extend(_walk("indicators", "", scenario.spec.indicators))
    if scenario.spec.providers is not None:  # e.g. the ownership assumed of providers imported without one
        out.extend(_walk("providers", "", scenario.spec.providers))
    return out


def _walk(section: str, path: str, value: Any) -> list[Assumption]:
    if isinstance(value, Param):
        return [
            Assumption(
                section=section,
                parameter=path,
                valid_from=None if day == BEGINNING else day,
                value=float(v),
                source=value.source,
                assumption=value.assumption or not value.source,
                note=value.note,
            )
            for day, v in sorted(value.values.items())
        ]
    if isinstance(value, BaseModel):
        out: list[Assumption] = []
        for name in type(value).model_fields:
            out.extend(_walk(section, _join(path, name), getattr(value, name)))
        return out
    if isinstance(value, dict):
        return [a for k, v in value.items() for a in _walk(section, _join(path, str(k)), v)]
    if isinstance(value, (list, tuple)):
        return [a for i, v in enumerate(value) for a in _walk(section, f"{path}[{i + 1}]", v)]
    if value is None:
        return []
    plain = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    return [Assumption(section=section, parameter=path, valid_from=None, value=plain, source=None, assumption=True, note=None)]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name

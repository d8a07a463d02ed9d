"""Parameters of a scenario addressed by dotted paths, and a scenario with some of them set.

A path names a dated parameter anywhere in a scenario (docs/models.md, "Sensitivity,
sweeps, break-even and uncertainty"): ``models.<name>.<path in the model>`` — e.g.
``models.per_minute.rates.personal_care``, ``models.trust.tiers[0].amount`` — or a
parameter of the model's entry (its behaviour assumptions), or ``admin.hourly_cost``,
``admin.minutes_per_act.<act>``. ``models.<name>.prices`` is a uniform factor on the
model's prices (its rates, fees and fixed amounts), 1 as written.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from ersattning.parameters import Param, iter_params
from ersattning.scenario import Scenario

PRICES = "prices"
#: a model's parameter is a price when it is a rate, a fee or a fixed amount: every payment component is
#: proportional to exactly one price, so a model's cost is linear in its prices taken together
PRICE_LEAVES = frozenset({"fee", "private_fee", "amount", "team_amount"})


class PathError(ValueError):
    """A path that names no parameter of the scenario."""


def scenario_parameters(scenario: Scenario) -> dict[str, Param]:
    """Every dated parameter of the scenario by its path: the models', their entries' (behaviour) and the admin assumptions."""
    out: dict[str, Param] = {}
    for entry, model in scenario.models:
        prefix = f"models.{entry.name}"
        out.update({f"{prefix}.{k}": p for k, p in iter_params(model, "")})
        for field in type(entry).model_fields:
            if field not in ("params", "name", "kind", "label", "description", "admin_acts"):
                out.update({f"{prefix}.{k}": p for k, p in iter_params(getattr(entry, field), field)})
    out.update({f"admin.{k}": p for k, p in iter_params(scenario.spec.admin, "")})
    return out


def is_price(path: str) -> bool:
    """Whether a model's parameter (``models.<name>.…``) is one of its prices."""
    parts = path.split(".")
    return len(parts) > 3 and parts[0] == "models" and (parts[2] == "rates" or _tokens(parts[-1])[0] in PRICE_LEAVES)


def model_prices(scenario: Scenario, model: str) -> dict[str, Param]:
    return {k: p for k, p in scenario_parameters(scenario).items() if k.startswith(f"models.{model}.") and is_price(k)}


def is_factor(path: str) -> bool:
    parts = path.split(".")
    return len(parts) == 3 and parts[0] == "models" and parts[2] == PRICES


def model_of(path: str) -> str | None:
    """The model a path belongs to (None for the admin assumptions, which every model shares)."""
    parts = path.split(".")
    return parts[1] if parts[0] == "models" and len(parts) > 2 else None


def resolve(scenario: Scenario, path: str) -> Param:
    """The parameter at ``path``; a PathError naming the known ones otherwise."""
    params = scenario_parameters(scenario)
    if path in params:
        return params[path]
    close = [k for k in params if k.startswith(path.rsplit(".", 1)[0])][:8]
    raise PathError(f"no parameter {path!r} in the scenario" + (f"; near it: {', '.join(close)}" if close else f"; e.g. {', '.join(list(params)[:5])}"))


def check(scenario: Scenario, path: str) -> None:
    """Raise PathError unless ``path`` is a parameter or a model's price factor."""
    if is_factor(path):
        names = [e.name for e, _ in scenario.models]
        if path.split(".")[1] not in names:
            raise PathError(f"no model {path.split('.')[1]!r} (models: {', '.join(names)})")
        return
    resolve(scenario, path)


def with_values(scenario: Scenario, point: dict[str, float]) -> Scenario:
    """The scenario with each path set to its value over the whole period (a price factor scales the model's prices)."""
    if not point:
        return scenario
    spec, models = scenario.spec, list(scenario.models)
    names = [e.name for e, _ in models]
    for path, value in sorted(point.items(), key=lambda kv: is_factor(kv[0])):  # values first, then factors
        if is_factor(path):
            i = names.index(path.split(".")[1])
            entry, model = models[i]
            for name in model_prices(replace(scenario, spec=spec, models=models), entry.name):
                model = _set(model, _tokens_of(name.split(".", 2)[2]), lambda p, v=value: p.scaled(v))
            models[i] = (entry, model)
            continue
        check(scenario, path)
        parts = path.split(".")
        if parts[0] == "admin":
            spec = spec.model_copy(update={"admin": _set(spec.admin, _tokens_of(".".join(parts[1:])), lambda p, v=value: p.fixed(v))})
            continue
        i = names.index(parts[1])
        entry, model = models[i]
        tokens = _tokens_of(".".join(parts[2:]))
        if tokens[0] in type(model).model_fields:
            model = _set(model, tokens, lambda p, v=value: p.fixed(v))
        else:
            entry = _set(entry, tokens, lambda p, v=value: p.fixed(v))
        models[i] = (entry, model)
    return replace(scenario, spec=spec, models=models)


def _tokens(part: str) -> list[str | int]:
    """``tiers[0]`` → ["tiers", 0]."""
    m = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", part)
    if not m:
        return [part]
    out: list[str | int] = [m.group(1)] if m.group(1) else []
    out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


def _tokens_of(path: str) -> list[str | int]:
    return [t for part in path.split(".") for t in _tokens(part)]


def _set(obj: Any, tokens: list[str | int], change: Any) -> Any:
    """A copy of ``obj`` with the parameter at ``tokens`` replaced by ``change(parameter)``."""
    if not tokens:
        if not isinstance(obj, Param):
            raise PathError("the path names something that is not a parameter")
        return change(obj)
    head, rest = tokens[0], tokens[1:]
    if isinstance(obj, BaseModel) and isinstance(head, str) and head in type(obj).model_fields:
        return obj.model_copy(update={head: _set(getattr(obj, head), rest, change)})
    if isinstance(obj, dict):
        for k in obj:
            if str(k) == str(head):
                return {**obj, k: _set(obj[k], rest, change)}
    if isinstance(obj, (list, tuple)) and isinstance(head, int) and 0 <= head < len(obj):
        items = list(obj)
        items[head] = _set(items[head], rest, change)
        return type(obj)(items)
    raise PathError(f"no {head!r} here")

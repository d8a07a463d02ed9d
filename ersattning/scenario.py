"""Scenario files: which models to compare, at what prices, on which period.

A scenario is YAML, written by a policy analyst. Unknown keys are errors, and
every error names the file, the line and the key (``FILE:LINE: KEY: message``).
Each model's parameters are validated by that model's own class, found by
``kind`` (a bundled kind, an installed plugin, or ``module:Class`` of a module
the caller allowed: docs/models.md, "A model outside the package").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ersattning.admin import UNITS, AdminAssumptions
from ersattning.models import BUNDLED, ReimbursementModel, UnknownModel, resolve_kind
from ersattning.yamlconf import ConfigError, load_yaml, locate_error

DEFAULT_SCENARIO = "default"


#: the years a period may lie in (a period past them is a typing mistake, and would be allocated month by month)
FIRST_YEAR, LAST_YEAR = 1900, 2100


def _month(v: str) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", v):
        raise ValueError("expected a month, YYYY-MM")
    if not FIRST_YEAR <= int(v[:4]) <= LAST_YEAR:
        raise ValueError(f"expected a month between {FIRST_YEAR}-01 and {LAST_YEAR}-12")
    return v


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(description="first month settled, YYYY-MM")
    end: str = Field(description="last month settled, YYYY-MM")

    _check = field_validator("start", "end", mode="before")(_month)

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2024-09..2024-10`` (or one month, ``2024-09``), as ``--period`` takes it; ValueError says what was expected."""
        start, sep, end = text.strip().partition("..")
        if not sep:
            end = start
        try:
            period = cls(start=start.strip(), end=end.strip())
        except pydantic.ValidationError as e:
            raise ValueError(f"--period: {text!r}: {e.errors()[0]['msg'].removeprefix('Value error, ')} (e.g. 2024-09..2024-10)") from None
        if period.end < period.start:
            raise ValueError(f"--period: {text!r} ends before it starts")
        return period


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="the model's name in tables")
    kind: str = Field(description=f"one of {', '.join(BUNDLED)}; or an installed plugin's name or module:Class (entry-point group ersattning.models); or module:Class with --allow-plugin MODULE")
    label: str | None = Field(None, description="a longer label for reports (Swedish is fine)")
    description: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    behaviour: dict[str, Any] | None = Field(None, description="behaviour assumptions under this model (ersattning.behaviour.Behaviour: performed_change, consolidate, team, provider_cancellations_change, registration, admin_minutes, seed); none: the replayed history")
    admin_acts: dict[str, str] | None = Field(None, description="override the acts this model requires: act → unit")


class IndicatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    punctuality_tolerance_minutes: float = Field(15.0, ge=0, description="assumption: a visit is on time within this many minutes")


class DemoRegion(BaseModel):
    """What `compare` synthesises when the store is empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipients: int = Field(1000, ge=1)
    seed: int = 1


class ProviderAssumptions(BaseModel):
    """What to assume of providers the history does not describe (docs/models.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_ownership: Literal["municipal", "private"] | None = Field(
        None,
        description="assumption: the ownership of providers imported without one (with visits only); without it, models that pay private providers other rates refuse such providers",
    )


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str | None = None
    period: Period
    store: str | None = Field(None, description="store URL; --store and ERSATTNING_STORE take precedence")
    baseline: str = Field(description="the model others are compared with")
    models: list[ModelEntry] = Field(min_length=1)
    admin: AdminAssumptions
    indicators: IndicatorSettings = IndicatorSettings()
    demo_region: DemoRegion = DemoRegion()
    providers: ProviderAssumptions | None = None


@dataclass(frozen=True)
class Scenario:
    spec: ScenarioFile
    models: list[tuple[ModelEntry, ReimbursementModel]]
    path: str
    sha256: str
    #: where the period came from: "scenario" (its period:) or "--period" (the command line)
    period_from: str = "scenario"

    @property
    def name(self) -> str:
        return self.spec.name

    def with_period(self, period: Period | None) -> Scenario:
        """The scenario settled over ``period`` instead of its own (None: unchanged)."""
        if period is None:
            return self
        return replace(self, spec=self.spec.model_copy(update={"period": period}), period_from="--period")

    def model(self, name: str) -> ReimbursementModel:
        for entry, model in self.models:
            if entry.name == name:
                return model
        raise KeyError(name)

    def acts(self, entry: ModelEntry, model: ReimbursementModel) -> dict[str, str]:
        return required_acts(entry, model)

    @property
    def default_ownership(self) -> str | None:
        return self.spec.providers.default_ownership if self.spec.providers is not None else None

    def ownership_models(self) -> list[str]:
        """The models that pay private providers other rates (they need every provider's ownership)."""
        return [entry.name for entry, model in self.models if model.uses_ownership()]

    def months(self) -> int:
        a, b = self.spec.period.start, self.spec.period.end
        return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:]) - int(a[5:]) + 1


def required_acts(entry: ModelEntry, model: ReimbursementModel) -> dict[str, str]:
    """The administrative acts a model requires (act → unit): the scenario's override, else the model's own."""
    return dict(entry.admin_acts) if entry.admin_acts is not None else dict(type(model).admin_acts)


def bundled_scenarios() -> dict[str, Path]:
    root = files("ersattning.scenarios")
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def resolve_scenario_path(name_or_path: str | None) -> Path:
    """A file path, or the name of a bundled scenario (``default`` when None)."""
    if name_or_path is None:
        name_or_path = DEFAULT_SCENARIO
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return path
    bundled = bundled_scenarios()
    if name_or_path in bundled:
        return bundled[name_or_path]
    raise ConfigError([(name_or_path, None, "", f"no such file, and no bundled scenario of that name (bundled: {', '.join(sorted(bundled))})")])


def load_scenario(name_or_path: str | Path | None = None, allow_plugins: Iterable[str] = ()) -> Scenario:
    """Load and validate a scenario; every problem is reported at once as a ConfigError. A model kind outside
    the package is imported only from an installed plugin or a module in ``allow_plugins`` (--allow-plugin)."""
    path = resolve_scenario_path(str(name_or_path) if name_or_path is not None else None)
    file = str(path)
    data, lines = load_yaml(path)
    try:
        spec = ScenarioFile.model_validate(data)
    except pydantic.ValidationError as e:
        raise ConfigError(sorted((locate_error(file, data, lines, err) for err in e.errors()), key=_by_line)) from None
    problems = []
    models: list[tuple[ModelEntry, ReimbursementModel]] = []
    for i, entry in enumerate(spec.models):
        try:
            cls = resolve_kind(entry.kind, allow_plugins)
        except UnknownModel as e:
            problems.append((file, lines.get(("models", i, "kind")), f"models[{i}].kind", str(e)))
            continue
        params = dict(entry.params) if entry.behaviour is None else {**entry.params, "behaviour": entry.behaviour}
        try:
            models.append((entry, cls.model_validate(params)))
        except pydantic.ValidationError as e:
            for err in e.errors():
                # behaviour is written beside params: its errors are located there
                at = ("models", i) if entry.behaviour is not None and err["loc"][:1] == ("behaviour",) else ("models", i, "params")
                problems.append(locate_error(file, data, lines, err, prefix=at))
    names = [e.name for e in spec.models]
    for i, n in enumerate(names):
        if names.index(n) != i:
            problems.append((file, lines.get(("models", i, "name")), f"models[{i}].name", f"model name {n!r} is used twice"))
    if spec.baseline not in names:
        problems.append((file, lines.get(("baseline",)), "baseline", f"{spec.baseline!r} is not one of the models ({', '.join(names)})"))
    if spec.period.end < spec.period.start:
        problems.append((file, lines.get(("period", "end")), "period.end", "the period ends before it starts"))
    for entry, model in models:
        j = names.index(entry.name)
        for act, unit in required_acts(entry, model).items():
            if unit not in UNITS:
                problems.append((file, lines.get(("models", j, "admin_acts", act)), f"models[{j}].admin_acts.{act}", f"unknown unit {unit!r}; known: {', '.join(UNITS)}"))
            if act not in spec.admin.minutes_per_act:
                problems.append((file, lines.get(("admin", "minutes_per_act")), "admin.minutes_per_act", f"no minutes for {act!r}, which model {entry.name!r} requires"))
        for act in model.behaviour.admin_minutes:
            if act not in required_acts(entry, model):
                problems.append((file, lines.get(("models", j, "behaviour", "admin_minutes", act)), f"models[{j}].behaviour.admin_minutes.{act}", f"model {entry.name!r} does not require the act {act!r} (it requires: {', '.join(required_acts(entry, model)) or 'none'})"))
    if problems:
        raise ConfigError(sorted(problems, key=_by_line))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Scenario(spec=spec, models=models, path=file, sha256=digest)


def _by_line(problem: tuple[str, int | None, str, str]) -> tuple[bool, int]:
    return (problem[1] is None, problem[1] or 0)


def json_schema() -> dict[str, Any]:
    """JSON Schema for scenario files, with each bundled model's parameters (for editors)."""
    schema = ScenarioFile.model_json_schema()
    defs = schema.setdefault("$defs", {})
    variants = []
    for kind, cls in BUNDLED.items():
        sub = cls.model_json_schema(ref_template="#/$defs/{model}")
        for name, d in sub.pop("$defs", {}).items():
            defs.setdefault(name, d)
        defs[cls.__name__] = sub
        entry = json.loads(json.dumps(defs["ModelEntry"]))
        entry["properties"]["kind"] = {"const": kind, "type": "string"}
        entry["properties"]["params"] = {"$ref": f"#/$defs/{cls.__name__}"}
        entry["title"] = f"ModelEntry[{kind}]"
        variants.append(entry)
    custom = json.loads(json.dumps(defs["ModelEntry"]))
    custom["properties"]["kind"] = {"type": "string", "pattern": r"^[\w.]+(:\w+)?$", "description": "an installed plugin's name (entry-point group ersattning.models), or module:Class (a plugin's, or with --allow-plugin MODULE)"}
    variants.append(custom)
    schema["properties"]["models"]["items"] = {"anyOf": variants}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ersattning scenario"
    return schema

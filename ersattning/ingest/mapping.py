"""Mapping files: how a user's export maps onto the canonical import columns.

Exports from time-registration and case systems name columns their own way
(``Brukare``, ``Utförd tid (h)``), code values their own way (``Omvårdnad``)
and mix units ("0.5 h" next to "0:30"). A mapping file (YAML) says all of it
explicitly — units are declared, never guessed::

    columns: {Brukare: recipient, Utförare: provider, Besök: visit_id, Insats: category,
              Planerad start: planned_start, Planerad tid (h): planned_duration,
              Utförd start: actual_start, Utförd tid (h): actual_duration, Personal: staff, Status: status}
    values:
      category: {Omvårdnad: personal_care, Städ: cleaning, Inköp: shopping}
      status: {Utförd: performed, Avbokad: cancelled_by_recipient}
    units: {planned_duration: decimal_hours, actual_duration: decimal_hours}
    timezone: Europe/Stockholm
    skip:
      - {column: Insats, equals: Rast, reason: staff break}

A planning export (one start and one end per row, no registered times) can be
imported *as performed*: one source column can feed several canonical columns
(``StartTime: [planned_start, actual_start]``), and ``performed_as_planned: true``
says the whole export is what was performed — a row without a status is
performed, and a row without registered times was performed at its planned
times. The import summary counts the rows this applied to. See the README's
import section (worked example: ``tests/data/planning_export.mapping.yaml``).

Every key, its default and an example: docs/mapping.md (``ersattning schema --mapping`` prints them as
JSON Schema; ``ersattning inspect`` proposes a mapping for a file). Where a mapping leaves the decimal mark
or the staff separator out, ``detect.py`` decides or stops.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ersattning.yamlconf import ConfigError, validate

if TYPE_CHECKING:
    import pandas as pd

Unit = Literal["minutes", "decimal_hours", "h:mm"]

VISIT_COLUMNS = {
    "recipient": "the recipient's id in the source system (pseudonymised at import)",
    "provider": "provider code",
    "visit_id": "the visit's id in the source system (the source key; without it: recipient, provider, team, category, planned start, planned length and staff)",
    "category": "personal_care | cleaning | laundry | shopping | escort | other_service",
    "team": "the provider's team (optional)",
    "planned_start": "planned start, local time unless it carries an offset",
    "planned_end": "planned end (or planned_duration)",
    "planned_duration": "planned length, in the unit the mapping declares",
    "actual_start": "registered start",
    "actual_end": "registered end (or actual_duration)",
    "actual_duration": "registered length, in the unit the mapping declares",
    "staff": "staff ids separated by | (pseudonymised at import)",
    "status": "performed | cancelled_by_recipient | cancelled_by_provider | missed | planned",
    "cancelled_at": "when the cancellation was made",
    "registration": "mobile | nfc | manual",
    "recorded_at": "when the source system recorded the row",
    "ownership": "municipal | private: the provider's ownership, which registers the provider (optional; see --kind providers)",
}
VISIT_REQUIRED = ("recipient", "provider", "planned_start", "category")

DECISION_COLUMNS = {
    "recipient": "the recipient's id in the source system (pseudonymised at import)",
    "decision_id": "the decision's id in the source system",
    "provider": "the provider the recipient chose",
    "category": "personal_care | cleaning | laundry | shopping | escort | other_service",
    "granted": "granted time, in the unit the mapping declares (default minutes)",
    "per": "month | week (default month)",
    "valid_from": "first day of the decision",
    "valid_to": "day the decision ends (optional)",
    "area": "urban | rural (default urban)",
    "birth_year": "the recipient's year of birth (optional; unknown years are not counted as 65+)",
    "recorded_at": "when the source system recorded the row",
}
DECISION_REQUIRED = ("recipient", "decision_id", "category", "granted", "valid_from")

STAY_COLUMNS = {
    "recipient": "the recipient's id in the source system (pseudonymised at import)",
    "stay_id": "the stay's id in the source system (without it: recipient + start)",
    "kind": "hospital | short_term",
    "start": "first day away",
    "end": "day back home (optional)",
    "recorded_at": "when the source system recorded the row",
}
STAY_REQUIRED = ("recipient", "kind", "start")

EVENT_COLUMNS = {
    "case": "the case id (XES trace name, case:concept:name): the recipient, or the visit with events: {case: visit}",
    "activity": "the activity (concept:name); its category comes from values: category",
    "timestamp": "when the event happened (time:timestamp), local time unless it carries an offset",
    "lifecycle": "schedule | start | complete | withdraw | ate_abort | pi_abort (lifecycle:transition; complete when empty)",
    "resource": "who did it (org:resource): staff ids separated by | (pseudonymised at import)",
    "duration": "length, in the unit the mapping declares: planned on a schedule event, performed on a complete event without a start",
    "recipient": "the recipient's id (required with events: {case: visit})",
    "provider": "provider code",
    "team": "the provider's team (optional)",
    "registration": "mobile | nfc | manual",
}
EVENT_REQUIRED = ("case", "activity", "timestamp")
# process-mining (XES standard extension) names taken as the canonical event columns without a mapping
PROCESS_MINING_NAMES = {"case:concept:name": "case", "concept:name": "activity", "time:timestamp": "timestamp", "lifecycle:transition": "lifecycle", "org:resource": "resource"}

PROVIDER_COLUMNS = {
    "code": "the provider's code (as visits and decisions name it)",
    "name": "the provider's name",
    "ownership": "municipal | private (which rates apply)",
    "teams": "the provider's team codes separated by | (optional)",
    "area": "urban | rural (optional; checked, not yet kept: the store has no provider area)",
    "recorded_at": "when the source system recorded the row (default: known from the start of every history)",
}
PROVIDER_REQUIRED = ("code", "name", "ownership")

KIND_COLUMNS = {"visits": VISIT_COLUMNS, "decisions": DECISION_COLUMNS, "stays": STAY_COLUMNS, "events": EVENT_COLUMNS, "providers": PROVIDER_COLUMNS}

Transition = Literal["schedule", "start", "complete", "withdraw", "abort"]
VisitStatus = Literal["performed", "cancelled_by_recipient", "cancelled_by_provider", "missed", "planned"]


class EventOptions(BaseModel):
    """How an event log becomes visits (``--kind events``; see ``import_events.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case: Literal["recipient", "visit"] = Field(default="recipient", description="what a case is: a recipient (a trace per recipient) or one visit (the case id is the visit's source key)")
    transitions: dict[str, Transition] = Field(default_factory=dict, description="other lifecycle values → schedule | start | complete | withdraw | abort (the XES standard's are known)")
    outcomes: dict[str, VisitStatus] = Field(
        default_factory=dict, description="lifecycle value of a withdraw or abort → visit status (defaults: withdraw cancelled_by_recipient, ate_abort and pi_abort cancelled_by_provider)"
    )
    instant_minutes: float | None = Field(default=None, gt=0, le=16 * 60, description="length of a visit made from a complete event with neither a start nor a duration; unset: such events are quarantined")


class SkipRule(BaseModel):
    """Rows that are not visits (e.g. staff breaks): skipped and counted, never silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(description="the column, by its name in the file or its canonical name")
    equals: str | None = Field(default=None, description="skip rows whose cell is this value")
    one_of: list[str] | None = Field(default=None, description="skip rows whose cell is one of these values")
    reason: str = Field(description="why such rows are not visits (counted under it in the import's summary)")

    def describe(self) -> str:
        return self.reason


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = Field(default_factory=dict, description="source column → canonical column (or a list of them: the same cells in each)")
    copies: dict[str, list[str]] = Field(
        default_factory=dict, description="canonical column → further canonical columns given the same cells (what a list under columns: becomes)"
    )
    performed_as_planned: bool = Field(
        default=False,
        description="visits: the export is what was performed — rows without a status are performed, and rows without registered times performed at their planned times",
    )
    values: dict[str, dict[str, str]] = Field(default_factory=dict, description="canonical column → {source value: canonical value}")
    units: dict[str, Unit] = Field(default_factory=dict, description="unit of each duration column (planned_duration, actual_duration, granted): minutes | decimal_hours | h:mm")
    timezone: str = Field(default="Europe/Stockholm", description="time zone of local times without an offset")
    date_format: str | None = Field(default=None, description="strptime format of dates and times; ISO 8601 when not given")
    decimal: Literal[",", "."] | None = Field(default=None, description="decimal separator; from the file when not given")
    encoding: str | None = Field(default=None, description="the file's text encoding (cp1252, utf-8-sig, utf-8, utf-16); sniffed when not given: UTF-8 (with or without BOM) else cp1252")
    delimiter: str | None = Field(default=None, description="the column separator (one character: ';' ',' or a tab); sniffed when not given")
    skip: list[SkipRule] = Field(default_factory=list, description="rows that are not visits (staff breaks): skipped and counted by reason")
    default_provider: str | None = Field(default=None, description="provider for rows without one")
    defaults: dict[str, str] = Field(default_factory=dict, description="canonical column → value for rows without one (also a column the file does not have)")
    staff_separator: str = Field(
        default="|",
        min_length=1,
        description="what separates two staff in one cell (A|B; ',' for 'Lena Ström, Ahmed Hassan'); undeclared, a cell with , ; / & + or 'och' between names stops the import",
    )
    end_dates: Literal["exclusive", "through"] = Field(
        default="exclusive",
        description="decisions' valid_to and stays' end: exclusive (the day after the last day: the day a decision no longer applies, "
        "the day home) or through (the last day itself, which the import moves to the day after); docs/models.md, \"End dates\"",
    )
    events: EventOptions = Field(default_factory=lambda: EventOptions(), description="event logs only (--kind events)")

    @model_validator(mode="before")
    @classmethod
    def _column_lists(cls, data: Any) -> Any:
        """``columns: {StartTime: [planned_start, actual_start]}``: the first target renames, the others are copies."""
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            return data
        columns, copies = {}, {k: list(v) if isinstance(v, list) else v for k, v in (data.get("copies") or {}).items()}
        for source, target in data["columns"].items():
            if isinstance(target, list) and target and all(isinstance(t, str) for t in target):
                columns[source] = target[0]
                copies.setdefault(target[0], []).extend(t for t in target[1:] if t not in copies.get(target[0], []))
            else:
                columns[source] = target
        return {**data, "columns": columns, "copies": {k: v for k, v in copies.items() if v}}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("defaults")
    @classmethod
    def _default_columns(cls, v: dict[str, str]) -> dict[str, str]:
        known = {c for columns in KIND_COLUMNS.values() for c in columns}
        for column in v:
            if column not in known:
                raise ValueError(f"{column!r} is not a canonical column ({', '.join(sorted(known))})")
        return v

    def fill_defaults(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The renamed rows with the mapping's ``copies`` (a column mapped to several) and its ``defaults`` in empty
        cells and for columns the file lacks."""
        if not self.defaults and not self.copies:
            return frame
        frame = frame.copy()
        for column, targets in self.copies.items():
            for target in targets:
                if column in frame:
                    frame[target] = frame[column]
        for column, value in self.defaults.items():
            frame[column] = frame[column].fillna(value) if column in frame else value
        return frame

    @field_validator("columns")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        known = {c for columns in KIND_COLUMNS.values() for c in columns}
        for source, target in v.items():
            if target not in known:
                raise ValueError(f"column {source!r} maps to {target!r}, which is not a canonical column ({', '.join(sorted(known))})")
        return v

    @field_validator("copies")
    @classmethod
    def _copy_targets(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        known = {c for columns in KIND_COLUMNS.values() for c in columns}
        for column, targets in v.items():
            for target in targets:
                if target not in known:
                    raise ValueError(f"{column!r} is copied to {target!r}, which is not a canonical column ({', '.join(sorted(known))})")
        return v


def load_mapping(path: str | Path | None) -> Mapping:
    """The mapping in a YAML file (errors name file, line and key; an unknown key's error lists the valid ones),
    or the identity mapping."""
    if path is None:
        return Mapping()
    try:
        return validate(Mapping, path)
    except ConfigError as e:
        raise ConfigError([(f, line, key, _with_valid_keys(key, message)) for f, line, key, message in e.problems]) from None


def _with_valid_keys(key: str, message: str) -> str:
    """An unknown key's message with the keys valid where it stands (the top level, ``events:`` or a ``skip:`` rule)."""
    if message != "unknown key":
        return message
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    model: type[BaseModel] = EventOptions if parent == "events" else SkipRule if parent.startswith("skip[") else Mapping
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(model.model_fields), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown key; {hint}valid keys: {', '.join(model.model_fields)} (docs/mapping.md)"


def mapping_schema() -> dict[str, Any]:
    """JSON Schema of mapping files (``ersattning schema --mapping``; for editors)."""
    schema = Mapping.model_json_schema()
    schema["title"] = "ersattning import mapping"
    schema["description"] = "How an export's columns, values and units map onto the canonical import columns (docs/mapping.md)."
    canonical = sorted({c for columns in KIND_COLUMNS.values() for c in columns})
    one = {"type": "string", "enum": canonical}
    schema["properties"]["columns"]["additionalProperties"] = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]}
    return schema

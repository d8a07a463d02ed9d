"""The stored event encoding: one schema per event class, its compact topic, and the legacy JSON.

Each service-history event class has a schema (:func:`event_schema`, from its
annotated fields in ``ersattning.domain``) and a short *compact topic*
(:data:`COMPACT_TOPICS`, e.g. ``c1:VPF``) that is also the version tag of the
stored state: an event stored under its compact topic has the binary state of
``ersattning.store.compact`` (whose header numbers its layout: format 1 or 2); under its long topic (``module:qualname``) it has
the library's JSON (the *legacy* format, written before the compact one and
still read everywhere). The library resolves both topics to the class
(``register_topic``). See docs/events.md, "Stored encoding".

Legacy JSON is the library's ``JSONTranscoder`` (values of registered types
wrapped as ``{"_type_": NAME, "_data_": VALUE}``) with the transcodings below
for dates, enums and tuples, so that a replayed event equals the one recorded.

The compact writer (``ersattning.store.compact``), the bulk encoder
(``ersattning.store.bulk``) and the columnar decoder
(``ersattning.projection.decode``) all take the fields from :func:`event_schema`,
so they never drift apart.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding, UUIDAsHex
from eventsourcing.utils import get_topic, register_topic

from ersattning.domain import ENUMS, Provider, Recipient, Visit

if TYPE_CHECKING:
    import pyarrow as pa

#: The keys of a wrapped value, as the library writes them.
TYPE_KEY = "_type_"
DATA_KEY = "_data_"
#: Fields of an event's state that belong to the library, not to the event's meaning.
LIBRARY_FIELDS = ("originator_id", "originator_version")
ORIGINATOR_TOPIC = "originator_topic"
CLASS_VERSION = "class_version"


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class TupleAsList(Transcoding):
    type = tuple
    name = "tuple"

    def encode(self, obj: tuple[Any, ...]) -> list[Any]:
        return list(obj)

    def decode(self, data: list[Any]) -> tuple[Any, ...]:
        return tuple(data)


class EnumAsValue(Transcoding):
    """One transcoding per enum class, named after the class in snake case."""

    def __init__(self, enum: type[StrEnum]) -> None:
        self.type = enum
        self.name = enum_transcoding_name(enum)

    def encode(self, obj: StrEnum) -> str:
        return obj.value

    def decode(self, data: str) -> StrEnum:
        return self.type(data)


def enum_transcoding_name(enum: type[StrEnum]) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in enum.__name__).lstrip("_")


class ServiceTranscoder(JSONTranscoder):
    """JSONTranscoder that also keeps tuples and enums as what they are.

    Python's json encoder writes tuples as arrays and str-enums as plain strings
    before it ever asks for a custom encoding, so both are wrapped first.
    """

    def encode(self, obj: Any) -> bytes:
        return super().encode(self._wrap(obj))

    def _wrap(self, obj: Any) -> Any:
        if isinstance(obj, StrEnum):
            return {TYPE_KEY: self.types[type(obj)].name, DATA_KEY: obj.value}
        if isinstance(obj, tuple):
            return {TYPE_KEY: TupleAsList.name, DATA_KEY: [self._wrap(v) for v in obj]}
        if isinstance(obj, dict):
            return {k: self._wrap(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._wrap(v) for v in obj]
        return obj


def register_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    transcoder.register(TupleAsList())
    for enum in ENUMS:
        transcoder.register(EnumAsValue(enum))


# -- the schema of each event class ----------------------------------------------------


def type_tag(tp: type) -> str | None:
    """The ``_type_`` name a value of ``tp`` is wrapped under, or None for plain JSON (str, int)."""
    if tp is datetime:
        return DatetimeAsISO.name
    if tp is date:
        return DateAsISO.name
    if tp is UUID:
        return UUIDAsHex.name
    if tp is tuple:
        return TupleAsList.name
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return enum_transcoding_name(tp)
    if tp in (str, int):
        return None
    raise TypeError(f"the stored encoding does not support field type {tp!r}")


def wrapped_prefix(tag: str) -> str:
    """The JSON text before a wrapped value's data: ``{"_type_":"TAG","_data_":``."""
    return f'{{"{TYPE_KEY}":"{tag}","{DATA_KEY}":'


def wrap(tag: str, data_json: str) -> str:
    """A wrapped value as the library writes it, around the JSON text of its data."""
    return wrapped_prefix(tag) + data_json + "}"


def unwrap(value: Any) -> Any:
    """A value parsed from stored JSON without its wrapper (the ISO text of a date, an enum's value)."""
    return value[DATA_KEY] if isinstance(value, dict) and DATA_KEY in value else value


@dataclass(frozen=True)
class StoredField:
    """One field of an event's stored state: its name and the annotated type (without ``None``)."""

    name: str
    python_type: type
    optional: bool
    item: type | None = None  # for ``tuple[X, ...]``: X

    @property
    def tag(self) -> str | None:
        return type_tag(self.python_type)

    def arrow_type(self) -> pa.DataType:
        """The type Arrow's JSON reader parses the stored value as (wrapped values as a struct of ``_data_``)."""
        import pyarrow as pa

        data: pa.DataType
        if self.item is not None:
            item = StoredField(self.name, self.item, False)
            if item.tag is not None:
                raise TypeError(f"field {self.name!r}: tuples of wrapped values are not read as columns")
            data = pa.list_(item.arrow_type())
        elif self.python_type is int:
            data = pa.int64()
        else:
            data = pa.string()  # str, and the text of every wrapped value
        return data if self.tag is None else pa.struct([(DATA_KEY, data)])


@dataclass(frozen=True)
class EventSchema:
    """What an event class stores: its topic, its fields in order, its class version."""

    event_class: type
    topic: str
    fields: tuple[StoredField, ...]
    class_version: int
    originator_topic: str | None  # for a Created event: the aggregate's topic

    def field(self, name: str) -> StoredField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.event_class.__qualname__} has no field {name!r}")

    def arrow_schema(self) -> pa.Schema:
        """The columns the projection reads: every field of meaning, and ``class_version`` where a class has
        more than one (an old event lacks it; see the upcast rule in ``ersattning.domain``)."""
        import pyarrow as pa

        columns = [(f.name, f.arrow_type()) for f in self.fields if f.name != ORIGINATOR_TOPIC]
        if self.class_version > 1:
            columns.append((CLASS_VERSION, pa.int64()))
        return pa.schema(columns)


@cache
def event_schema(event_class: type) -> EventSchema:
    """The schema of ``event_class``, from its dataclass fields and their annotations."""
    hints = typing.get_type_hints(event_class)
    fields = []
    for f in dataclasses.fields(event_class):
        if f.name in LIBRARY_FIELDS:
            continue
        tp = hints[f.name]
        optional = False
        if isinstance(tp, UnionType) or typing.get_origin(tp) is typing.Union:
            args = [a for a in typing.get_args(tp) if a is not NoneType]
            optional = len(args) < len(typing.get_args(tp))
            tp = args[0]
        item = None
        if typing.get_origin(tp) is tuple:
            item = typing.get_args(tp)[0]
            tp = tuple
        stored = StoredField(f.name, tp, optional, item)
        type_tag(tp)  # refuses what the encoding does not support
        fields.append(stored)
    originator_topic = None
    if any(f.name == ORIGINATOR_TOPIC for f in fields):
        originator_topic = f"{event_class.__module__}:{event_class.__qualname__.rsplit('.', 1)[0]}"
    return EventSchema(
        event_class=event_class,
        topic=get_topic(event_class),
        fields=tuple(fields),
        class_version=int(getattr(event_class, "class_version", 1)),
        originator_topic=originator_topic,
    )


# -- compact topics ---------------------------------------------------------------------

#: The version tag of the compact stored state: the prefix of every compact topic. A new layout of the
#: state gets a new format number in its header (``ersattning.store.compact.FORMAT``), not a new tag.
COMPACT_TAG = "c1"

#: The short code of each service-history event class; its compact topic is ``c1:CODE``.
#: Codes are stored: never change or reuse one (a new class gets a new code).
COMPACT_CODES: dict[type, str] = {
    Provider.Registered: "PRG",
    Recipient.Enrolled: "REN",
    Recipient.ProviderChosen: "RPC",
    Recipient.DecisionGranted: "RDG",
    Recipient.DecisionRevised: "RDR",
    Recipient.DecisionEnded: "RDE",
    Recipient.StayStarted: "RSS",
    Recipient.StayEnded: "RSE",
    Recipient.Departed: "RDP",
    Visit.Planned: "VPL",
    Visit.Performed: "VPE",
    Visit.Cancelled: "VCA",
    Visit.Corrected: "VCO",
    Visit.PlannedAndPerformed: "VPF",
    Visit.PlannedAndCancelled: "VPC",
}
COMPACT_TOPICS: dict[type, str] = {c: f"{COMPACT_TAG}:{code}" for c, code in COMPACT_CODES.items()}
_COMPACT_CLASSES: dict[str, type] = {t: c for c, t in COMPACT_TOPICS.items()}
for _cls, _topic in COMPACT_TOPICS.items():
    register_topic(_topic, _cls)  # the library's resolve_topic finds the class by its compact topic


def compact_topic(event_class: type) -> str | None:
    """The compact topic of ``event_class``, or None when it is not stored compactly."""
    return COMPACT_TOPICS.get(event_class)


def compact_class(topic: str) -> type | None:
    """The event class stored compactly under ``topic``, or None (a legacy or foreign topic)."""
    return _COMPACT_CLASSES.get(topic)


def long_topic(topic: str) -> str:
    """The class topic (``module:qualname``) of a stored topic, compact or legacy."""
    cls = _COMPACT_CLASSES.get(topic)
    return topic if cls is None else get_topic(cls)


def by_long_topic(counts: dict[str, int]) -> dict[str, int]:
    """Event counts per stored topic → per class topic (compact and legacy counted together)."""
    out: dict[str, int] = {}
    for topic, n in counts.items():
        key = long_topic(topic)
        out[key] = out.get(key, 0) + n
    return out

"""The stored event encoding: one schema per event class, and everything derived from it.

Events are stored as the library's JSON (``JSONTranscoder``: compact separators,
values of registered types wrapped as ``{"_type_": NAME, "_data_": VALUE}``).
The library knows UUID, Decimal and datetime. A ``date`` is not handled, an enum
would come back as a plain string and a tuple as a list, so a replayed event
would differ from the one recorded: the transcodings below add them.

The same format is written by the vectorised bulk encoder
(``ersattning.store.bulk``) and read by the columnar decoder
(``ersattning.projection.decode``). Both take it from :func:`event_schema`,
derived from the annotated fields of the event classes in ``ersattning.domain``
(see docs/events.md), so the three never drift apart.
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
from eventsourcing.utils import get_topic

from ersattning.domain import ENUMS

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

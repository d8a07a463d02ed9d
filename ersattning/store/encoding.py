"""JSON transcodings so that dates, enums and tuples round-trip through the store.

The library's JSON transcoder knows UUID, Decimal and datetime. A ``date`` is not
handled, an enum would come back as a plain string and a tuple as a list, so a
replayed event would differ from the one recorded. The bulk writer emits exactly
these encodings too (see ``ersattning.store.bulk``).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from ersattning.domain import ENUMS


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
            return {"_type_": self.types[type(obj)].name, "_data_": obj.value}
        if isinstance(obj, tuple):
            return {"_type_": TupleAsList.name, "_data_": [self._wrap(v) for v in obj]}
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

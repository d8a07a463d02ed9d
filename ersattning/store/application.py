"""The event-sourced application that is the system of record.

Its mapper writes every service-history event compactly, under its compact topic
(``ersattning.store.compact``), and reads both that and the legacy JSON stored
under the long topic (docs/events.md, "Stored encoding").
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Mapper, MapperDeserialisationError, StoredEvent, Transcoder

from ersattning.store.compact import decode_state, encode_state
from ersattning.store.encoding import CLASS_VERSION, ServiceTranscoder, compact_class, compact_topic, register_transcodings


class CompactMapper(Mapper[UUID]):
    """The library's mapper, with the compact state for the classes that have a compact topic.

    The library hands its transcoder only a dict, never the class, so the choice is made here;
    everything else (legacy long topics, snapshots) goes through the JSON transcoder.
    """

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        cls = type(domain_event)
        topic = compact_topic(cls)
        if topic is None:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        data = encode_state(cls, state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic, state=data)

    def to_legacy_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """The event as it was stored before the compact encoding (long topic, JSON state): for tests of old stores."""
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = compact_class(stored_event.topic)
        if cls is None:
            return super().to_domain_event(stored_event)
        data = stored_event.state
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state: dict[str, Any] = decode_state(cls, data)
        except Exception as e:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic '{stored_event.topic}', originator_id "
                f"'{stored_event.originator_id}' and originator_version {stored_event.originator_version}: {e}"
            ) from e
        oid = stored_event.originator_id
        state["originator_id"] = oid if isinstance(oid, UUID) else UUID(str(oid))
        state["originator_version"] = stored_event.originator_version
        from_version = state.pop(CLASS_VERSION, 1)
        while from_version < getattr(cls, "class_version", 1):
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return cast(DomainEventProtocol[UUID], event)


class ServiceHistory(Application):
    """All service histories of one store: providers, recipients and visits."""

    name = "ServiceHistory"

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=CompactMapper)

    def construct_transcoder(self) -> Transcoder:
        transcoder = ServiceTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)

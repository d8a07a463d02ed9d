"""The event-sourced application that is the system of record."""

from __future__ import annotations

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Transcoder

from ersattning.store.encoding import ServiceTranscoder, register_transcodings


class ServiceHistory(Application):
    """All service histories of one store: providers, recipients and visits."""

    name = "ServiceHistory"

    def construct_transcoder(self) -> Transcoder:
        transcoder = ServiceTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)

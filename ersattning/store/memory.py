"""The in-memory backend (``memory://``): the library's plain-object recorder, for tests and trials.

Nothing outlives the process: the meta data is a dictionary, and every store
opened is a new, empty one with an id of its own.
"""

from __future__ import annotations

import uuid
from urllib.parse import SplitResult

from ersattning.store.application import ServiceHistory
from ersattning.store.base import Store, StoreLocation


class MemoryStore(Store):
    """A store in this process's memory."""

    persistence_module = "eventsourcing.popo"

    def __init__(self, location: StoreLocation, app: ServiceHistory) -> None:
        self._meta: dict[str, str] = {}
        super().__init__(location, app)

    @classmethod
    def parse_location(cls, url: str, parts: SplitResult) -> StoreLocation:
        return StoreLocation(url=url, scheme="memory")

    def _ensure_meta(self) -> str:
        return f"memory-{uuid.uuid4()}"

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value


BACKEND: type[Store] = MemoryStore

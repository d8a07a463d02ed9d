"""The system of record: an ``eventsourcing`` application recorder chosen by URL.

``open_store(url)`` gives a :class:`Store`; the backends, the stored event encoding
and the bulk writer live in this package (see ``docs/ARCHITECTURE.md``).
"""

from typing import TYPE_CHECKING

# Imported lazily (PEP 562): the SQLite writer process runs ``python -m ersattning.store.sqlite_writer``
# and must start on the standard library alone, without the library, numpy or pandas.
if TYPE_CHECKING:
    from ersattning.store.base import (
        DEFAULT_STORE_URL,
        STORE_ENV,
        AppendConflict,
        RawPage,
        Store,
        StoreError,
        StoreLocation,
        open_store,
        parse_store_url,
        resolve_store_url,
    )


__all__ = [
    "DEFAULT_STORE_URL",
    "STORE_ENV",
    "AppendConflict",
    "RawPage",
    "Store",
    "StoreError",
    "StoreLocation",
    "open_store",
    "parse_store_url",
    "resolve_store_url",
]


def __getattr__(name: str) -> object:
    if name in __all__:
        from ersattning.store import base

        return getattr(base, name)
    raise AttributeError(f"module 'ersattning.store' has no attribute {name!r}")

"""Worker processes that do not run the caller's script again.

A process started by ``spawn`` or a fork server imports the parent's main script (as
``__mp_main__``) so that functions defined there can be unpickled. A researcher's script
without ``if __name__ == "__main__":`` then runs again in every worker — its imports, its
synthesis or import into a store, its own compares — before the worker does its task; a
projection rebuild in such a script waited forever on the store the copies were writing. Every
task ersattning sends to a worker (the rebuild's ranges, the partitions, Dask's tasks) is a
function of an ``ersattning`` module, so the workers need nothing of the script: while workers
start, the main module hides the two attributes ``multiprocessing`` finds it by (docs/ARCHITECTURE.md,
"Rooms").
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_MISSING = object()
_lock = threading.RLock()  # re-entrant: a pool started while another starts (nested blocks) must not wait on itself


@contextmanager
def main_not_reimported() -> Iterator[None]:
    """Processes started inside this block (``spawn``, fork server, Dask's nannies) do not import ``__main__``."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _lock:
        saved_file = main.__dict__.pop("__file__", _MISSING)
        saved_spec = main.__dict__.get("__spec__", _MISSING)
        if saved_spec is not _MISSING:
            main.__spec__ = None
        try:
            yield
        finally:
            if saved_file is not _MISSING:
                main.__file__ = saved_file
            if saved_spec is not _MISSING:
                main.__spec__ = saved_spec

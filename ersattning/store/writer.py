"""The bulk writer: appends each batch while the caller prepares the next one.

Reached through ``Store.bulk_writer()``, so the caller (an import) never decides how a
store is written: each backend gives its own (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ersattning.store.base import Store
    from ersattning.store.bulk import EventBatch


class BulkWriter:
    """Appends each chunk's batch while the next chunk is read and checked.

    At most one batch is in flight (memory stays bounded), batches go in file
    order, each in its own transaction; an append error surfaces at the next
    submit or at the end.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.events = 0
        self.journal = ""  # the journal mode a backend wrote in, where it has one
        self.busy_seconds = 0.0  # the writer's own time writing, for benchmarks (where known)
        #: per committed batch, in order, the notification id of its first row (its rows' ids follow in
        #: insert order); None where the backend cannot tell. The import folds them into the projection.
        self.first_ids: list[int | None] = []

    def submit(self, batch: EventBatch) -> None:
        """Hand over a batch, after the one in flight is written."""
        raise NotImplementedError

    def wait(self) -> None:
        """Wait for the batch in flight; its error, if any, is raised here."""
        raise NotImplementedError

    def _stop(self) -> None:
        """Stop whatever writes (the batch in flight has been waited for)."""

    def close(self) -> None:
        """Let a batch in flight finish (or fail) whole, then stop the writer; errors were raised by ``wait``."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - in the normal path wait() already raised it; here an error is on its way out
            pass
        finally:
            self._stop()


class ThreadBulkWriter(BulkWriter):
    """Writes through the store's own ``append`` on a thread."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[tuple[int, int | None]] | None = None

    def submit(self, batch: EventBatch) -> None:
        columns = batch.columns()  # the Python lists for the driver, built here: the thread only writes
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ersattning-append")
        self._pending = self._pool.submit(self._append, columns)

    def _append(self, columns: tuple[list[str], list[int], list[str], list[bytes]]) -> tuple[int, int | None]:
        first = self.store.append(*columns)
        self.store.checkpoint()  # what the store left aside folded back while the next chunk is checked
        return len(columns[3]), first

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            count, first = pending.result()
            self.events += count
            self.first_ids.append(first)

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

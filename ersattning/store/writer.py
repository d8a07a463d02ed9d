"""The bulk writer: appends each batch while the caller prepares the next one.

Reached through ``Store.bulk_writer()``, so the caller (an import) never decides how a
store is written.
"""


from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from ersattning.store import sqlite_writer
from ersattning.store.base import AppendConflict, Store, StoreError
from ersattning.store.bulk import EventBatch
from ersattning.store.sqlite_writer import AppendProcess


class BulkWriter:
    """Appends each chunk's batch while the next chunk is read and checked.

    SQLite stores are written by a child process (:mod:`ersattning.store.sqlite_writer`),
    other stores on a thread. At most one batch is in flight (memory stays
    bounded), batches go in file order, each in its own transaction; an append
    error surfaces at the next submit or at the end.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.events = 0
        self._process: AppendProcess | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.journal = ""
        self.busy_seconds = 0.0

    def submit(self, batch: EventBatch) -> None:
        if self.store.is_sqlite and sqlite_writer.available():
            ids, versions, order = batch.ids_versions_order()
            self.wait()
            if self._process is None:
                self.store.release_connections()
                self._process = AppendProcess(str(self.store.location.path))
            self._process.send(ids, versions, order, list(zip(batch.topic, batch.state, strict=True)))
            return
        columns = batch.columns()  # the Python lists for the driver, built here: the thread only writes
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ersattning-append")
        self._pending = self._pool.submit(self._append, columns)

    def _append(self, columns: tuple[list, list, list, list]) -> int:
        self.store.append(*columns)
        self.store.checkpoint()  # the write-ahead log folded back while the next chunk is checked
        return len(columns[3])

    def wait(self) -> None:
        """Wait for the batch in flight; its error, if any, is raised here."""
        if self._process is not None:
            try:
                self.events += self._process.result()
                self.journal = self._process.journal or self.journal
                self.busy_seconds = self._process.busy_seconds
            except sqlite_writer.AppendFailed as e:
                if e.conflict:
                    raise AppendConflict(
                        "append rejected: an event with the same aggregate id and version is already stored "
                        f"(another writer got there first); nothing of this batch was written ({e})"
                    ) from None
                raise StoreError(f"cannot write to the store: {e}") from None
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.events += pending.result()

    def close(self) -> None:
        """Let a batch in flight finish (or fail) whole, then stop the writer; errors were raised by ``wait``."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - in the normal path wait() already raised it; here an error is on its way out
            pass
        finally:
            if self._process is not None:
                self._process.close()
                self._process = None
            if self._pool is not None:
                self._pool.shutdown()

"""Bulk appends to an SQLite store from a child process, so that writing runs beside reading.

An import parses, checks and encodes one chunk while the previous chunk is
written. On a thread the two share the interpreter lock: the driver takes it
for every row, and the write took 2–3× longer than on its own (measured). A
child process has its own interpreter and runs on the other core.

The parent puts each batch's columns into shared memory (an anonymous
``memfd``) and sends one line over a pipe; the child writes the batch in one
transaction and answers one line. At most one batch is in flight. The child
dies with its parent (Linux ``PR_SET_PDEATHSIG``): an import killed with
SIGKILL leaves no writer behind, and the batch being written is rolled back by
SQLite like any unfinished transaction. When nobody else has the store open,
the child writes through a rollback journal (see :func:`_bulk_journal`). Where
this is not available (not Linux), the import writes on a thread instead.

This module imports only the standard library when run as the child, so the
child starts in a few tens of milliseconds.
"""

from __future__ import annotations

import gc
import json
import mmap
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import IO, Any

INSERT_SQL = "INSERT INTO stored_events VALUES (?,?,?,?)"
# Many rows per statement: the statement machinery runs once per 500 rows instead of per row
# (measured: 25-45 % less CPU for a batch; 2,000 parameters, far below SQLite's limit of 32,766).
ROWS_PER_INSERT = 500
MULTI_INSERT_SQL = "INSERT INTO stored_events VALUES " + ",".join(["(?,?,?,?)"] * ROWS_PER_INSERT)
# A large page cache keeps the primary-key index in memory while a batch goes in;
# NORMAL sync keeps the store from corruption in both journal modes; in WAL mode
# the log is folded back after each batch (checkpoint), not many times inside it.
BULK_PRAGMAS = ("PRAGMA cache_size=-262144", "PRAGMA synchronous=NORMAL", "PRAGMA wal_autocheckpoint=100000")
CHECKPOINT_SQL = "PRAGMA wal_checkpoint(TRUNCATE)"
LOCK_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1
_SIGKILL = 9


def insert_rows(cursor: Any, rows: Iterable[tuple[Any, Any, Any, Any]]) -> None:
    """Insert (id, version, topic, state) rows with ``cursor.executemany``, 500 to a statement."""
    flat = list(chain.from_iterable(rows))
    step = 4 * ROWS_PER_INSERT
    whole = len(flat) - len(flat) % step
    cursor.executemany(MULTI_INSERT_SQL, (flat[i : i + step] for i in range(0, whole, step)))
    cursor.executemany(INSERT_SQL, (flat[i : i + 4] for i in range(whole, len(flat), 4)))


def available() -> bool:
    """Whether a child writer can be tied to this process's life (Linux only)."""
    return sys.platform.startswith("linux")


class AppendFailed(Exception):
    """The child could not write a batch; ``conflict`` when the key refused it."""

    def __init__(self, message: str, *, conflict: bool) -> None:
        super().__init__(message)
        self.conflict = conflict


# -- the parent's side ------------------------------------------------------------


class AppendProcess:
    """Sends batches to a child writer; one in flight at a time.

    The rows go through shared memory (an anonymous ``memfd`` both map); the
    pipe carries only a line per batch each way. Copying 150 MB through a
    pipe cost the two processes ~0.4 s a batch each (measured).
    """

    def __init__(self, db_path: str) -> None:
        self._shm_fd = os.memfd_create("ersattning-append")
        self._shm: mmap.mmap | None = None
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ersattning.store.sqlite_writer", os.fspath(db_path), str(os.getpid()), str(self._shm_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(self._shm_fd,),
        )
        self._in_flight = False
        self.journal = ""  # the journal mode the child writes in ("delete" or "wal"), known after the first batch
        self.busy_seconds = 0.0  # the child's time writing batches (SQLite), for benchmarks
        self.first_ids: list[int | None] = []  # each written batch's first notification id (its rows' ids follow in insert order)

    def send(self, ids: Any, versions: Any, order: Any, parts: list[tuple[str, Any]]) -> None:
        """Hand over one batch.

        ``ids`` (S32) and ``versions`` (int64) are the rows in the order of
        ``parts`` (per event class its topic and states, ``ersattning.store.bulk.States``:
        a byte buffer and int64 offsets; classes one after another); ``order``
        (int64) is the order to insert the rows in. The caller has waited for the
        previous batch (:meth:`result`), so the child no longer reads the shared memory.
        """
        import numpy as np

        codes = np.repeat(np.arange(len(parts), dtype=np.uint8), [len(states) for _, states in parts])
        columns = [ids[order], versions[order], order, codes[order]]
        for _, states in parts:
            columns += [np.asarray(states.offsets, dtype=np.int64), states.buffer[: int(states.offsets[-1])]]
        size = sum(c.nbytes for c in columns)
        if self._shm is None or len(self._shm) < size:
            self._map(size + size // 4)
        assert self._shm is not None
        memory = np.frombuffer(self._shm, dtype=np.uint8)
        at = 0
        for c in columns:
            memory[at : at + c.nbytes] = np.ascontiguousarray(c).view(np.uint8).reshape(-1)
            at += c.nbytes
        del memory
        header = json.dumps({"n": len(ids), "size": len(self._shm), "parts": [[topic, len(states), int(states.offsets[-1])] for topic, states in parts]})
        pipe = self._proc.stdin
        assert pipe is not None
        try:
            pipe.write(header.encode() + b"\n")
            pipe.flush()
        except (BrokenPipeError, OSError):
            self._died()
        self._in_flight = True

    def _map(self, size: int) -> None:
        if self._shm is not None:
            self._shm.close()
        os.ftruncate(self._shm_fd, size)
        self._shm = mmap.mmap(self._shm_fd, size)
        if hasattr(mmap, "MADV_HUGEPAGE"):
            self._shm.madvise(mmap.MADV_HUGEPAGE)

    def result(self) -> int:
        """Wait for the batch in flight; the number of events it wrote."""
        if not self._in_flight:
            return 0
        self._in_flight = False
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode("utf-8", "replace").rstrip("\n")
        if not line:
            self._died()
        kind, _, rest = line.partition(" ")
        if kind == "ok":
            count, self.journal, seconds, first = rest.split(" ")
            self.busy_seconds += float(seconds)
            self.first_ids.append(int(first))
            return int(count)
        raise AppendFailed(rest, conflict=kind == "conflict")

    def close(self) -> None:
        """End the child after the batch in flight (which it finishes or rolls back whole)."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        self._proc.wait()
        for f in (self._proc.stdout, self._proc.stderr):
            if f is not None:
                f.close()
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        os.close(self._shm_fd)

    def _died(self) -> None:
        self._proc.wait()
        err = self._proc.stderr.read().decode("utf-8", "replace").strip() if self._proc.stderr else ""
        last = err.splitlines()[-1] if err else f"exit status {self._proc.returncode}"
        raise AppendFailed(f"the writer process stopped: {last}", conflict=False)


# -- the child's side ---------------------------------------------------------------


class _BatchReader:
    """Reads each batch's header line from the pipe and its rows from the shared memory."""

    def __init__(self, f: IO[bytes], shm_fd: int) -> None:
        self.f = f
        self.fd = shm_fd
        self.shm: mmap.mmap | None = None

    def batch(self) -> Iterator[tuple[str, int, str, memoryview]] | None:
        """The next batch's rows (id, version, topic, state) in insert order, or None at the end of input (the
        parent closed the pipe, or died). The states are views into the shared memory, valid until the next
        call."""
        line = self.f.readline()
        if not line.endswith(b"\n"):
            return None
        header = json.loads(line)
        n, parts = header["n"], header["parts"]
        if self.shm is None or len(self.shm) != header["size"]:
            if self.shm is not None:
                self.shm.close()  # the previous batch's views are gone: its rows were written
            self.shm = mmap.mmap(self.fd, header["size"], prot=mmap.PROT_READ)
        view = memoryview(self.shm)
        order = view[40 * n : 48 * n].cast("q")
        states: list[memoryview] = []
        at = 49 * n
        for _, count, nbytes in parts:  # per part: count + 1 offsets (int64), then the states' bytes
            offsets = view[at : at + 8 * (count + 1)].cast("q").tolist()
            at += 8 * (count + 1)
            states.extend(view[at + a : at + b] for a, b in zip(offsets[:-1], offsets[1:], strict=True))
            at += nbytes
        topics = [topic for topic, _, _ in parts]
        text = str(view[: 32 * n], "ascii")
        ids = [text[i : i + 32] for i in range(0, 32 * n, 32)]
        return zip(ids, view[32 * n : 40 * n].cast("q"), map(topics.__getitem__, view[48 * n : 49 * n]), map(states.__getitem__, order), strict=True)


def _die_with_parent(parent_pid: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


def serve(db_path: str, stdin: IO[bytes], stdout: IO[bytes], shm_fd: int) -> None:
    """Write each batch read from ``stdin`` in its own transaction and answer a line on ``stdout``:
    ``ok N JOURNAL SECONDS FIRST_ID``, ``conflict MESSAGE`` or ``error MESSAGE``."""
    con = sqlite3.connect(db_path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
    try:
        for pragma in BULK_PRAGMAS:
            con.execute(pragma)
        journal = _bulk_journal(con)
        reader = _BatchReader(stdin, shm_fd)
        while True:
            batch = reader.batch()
            if batch is None:
                return  # the parent closed the pipe, or died mid-batch: nothing of a partial batch is written
            started = time.perf_counter()
            changes = con.total_changes
            try:
                con.execute("BEGIN")
                insert_rows(con, batch)
                # the batch's rowids (notification ids) are contiguous in insert order: no one else writes inside the transaction
                first = con.execute("SELECT last_insert_rowid()").fetchone()[0] - (con.total_changes - changes) + 1
                con.execute("COMMIT")
            except sqlite3.IntegrityError as e:
                con.execute("ROLLBACK")
                stdout.write(f"conflict {e}\n".encode())
            except sqlite3.Error as e:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                stdout.write(f"error {e}\n".encode())
            else:
                # a reader that opened the store meanwhile may have put it back in WAL mode (the library does)
                journal = str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                if journal == "wal":
                    con.execute(CHECKPOINT_SQL)
                seconds = time.perf_counter() - started
                stdout.write(f"ok {con.total_changes - changes} {journal} {seconds:.3f} {first}\n".encode())
            batch = None  # no views into the shared memory outlive the batch: the parent writes the next one there
            stdout.flush()
    finally:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode=WAL")  # back to the store's mode, for readers beside writers
        except sqlite3.Error:
            pass  # the next open of the store sets it (the library does)
        con.close()


def _bulk_journal(con: sqlite3.Connection) -> str:
    """Switch to a rollback journal when no one else has the store open, else stay in WAL.

    In WAL mode every page is written twice: to the log, then back into the
    database at the checkpoint. A rollback journal only saves the few pages a
    batch changes (index pages); the appended pages are written once, and a
    killed import still rolls back to the last whole batch. The switch needs
    the store to itself, so it is taken only when nobody has it open. A reader
    that opens the store during the import waits for the batch being written
    and then puts the store back in WAL mode (the library does, on opening);
    the import goes on in WAL mode from its next batch.
    """
    con.execute("PRAGMA busy_timeout=0")  # do not wait for others to leave: then WAL it is
    try:
        return str(con.execute("PRAGMA journal_mode=DELETE").fetchone()[0]).lower()
    except sqlite3.OperationalError:  # locked: somebody else has the store open
        return "wal"
    finally:
        con.execute(f"PRAGMA busy_timeout={int(LOCK_TIMEOUT_S * 1000)}")


def main(argv: list[str]) -> None:
    db_path, parent_pid, shm_fd = argv[0], int(argv[1]), int(argv[2])
    # A batch makes a view per state: with the cyclic collector on, its passes over them took most of the child's
    # Python time (measured: 2.0 s against 0.4 s to build 390,000 rows). The child makes no reference cycles.
    gc.disable()
    # Ctrl-C reaches every process of the terminal's group: the writer leaves it to the import, which stops after
    # the batch in flight (written whole, or not at all) and closes the pipe, and so ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    serve(db_path, sys.stdin.buffer, sys.stdout.buffer, shm_fd)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Bulk appends to an SQLite store from a child process, so that writing runs beside reading.

An import parses, checks and encodes one chunk while the previous chunk is
written. On a thread the two share the interpreter lock: the driver takes it
for every row, and the write took 2–3× longer than on its own (measured). A
child process has its own interpreter, so on two cores the write is nearly free.

The parent sends each batch as raw column buffers over a pipe; the child writes
it in one transaction, folds the write-ahead log back and answers one line.
At most one batch is in flight. The child dies with its parent (Linux
``PR_SET_PDEATHSIG``): an import killed with SIGKILL leaves no writer behind,
and the batch being written is rolled back by SQLite like any unfinished
transaction. Where that is not available (not Linux), the import writes on a
thread instead.

This module imports only the standard library when run as the child, so the
child starts in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import mmap
import os
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import IO, Any

INSERT_SQL = "INSERT INTO stored_events VALUES (?,?,?,?)"
# A large page cache keeps the primary-key index in memory while a batch goes in;
# NORMAL sync is safe from corruption in WAL mode; the log is folded back after
# each batch (checkpoint), not many times inside it.
BULK_PRAGMAS = ("PRAGMA cache_size=-262144", "PRAGMA synchronous=NORMAL", "PRAGMA wal_autocheckpoint=100000")
CHECKPOINT_SQL = "PRAGMA wal_checkpoint(TRUNCATE)"
LOCK_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1
_SIGKILL = 9
_PIPE_BYTES = 1 << 20


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
    """Sends batches to a child writer; one in flight at a time."""

    def __init__(self, db_path: str) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ersattning.append_process", os.fspath(db_path), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self._in_flight = False
        self.journal = ""  # the journal mode the child writes in ("delete" or "wal"), known after the first batch
        _widen_pipe(self._proc.stdin)

    def send(self, ids: Any, versions: Any, order: Any, parts: list[tuple[str, Any]]) -> None:
        """Write one batch.

        ``ids`` (S32) and ``versions`` (int64) are the rows in the order of
        ``parts`` (per event class its topic and ``S``-width states, classes one
        after another); ``order`` (int64) is the order to insert the rows in.
        """
        import numpy as np

        codes = np.repeat(np.arange(len(parts), dtype=np.uint8), [len(states) for _, states in parts])
        header = json.dumps({"n": len(ids), "parts": [[topic, len(states), states.dtype.itemsize] for topic, states in parts]}).encode()
        header += b" " * (-len(header) % 8)  # keeps the columns after it 8-byte aligned
        buffers = [struct.pack("<Q", len(header)) + header, ids[order], versions[order], order, codes[order], *(states for _, states in parts)]
        pipe = self._proc.stdin
        assert pipe is not None
        try:
            for buf in buffers:
                view = memoryview(np.ascontiguousarray(buf)).cast("B") if not isinstance(buf, bytes) else memoryview(buf)
                while view:
                    view = view[pipe.write(view) :]
        except (BrokenPipeError, OSError):
            self._died()
        self._in_flight = True

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
            count, _, self.journal = rest.partition(" ")
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

    def _died(self) -> None:
        self._proc.wait()
        err = self._proc.stderr.read().decode("utf-8", "replace").strip() if self._proc.stderr else ""
        last = err.splitlines()[-1] if err else f"exit status {self._proc.returncode}"
        raise AppendFailed(f"the writer process stopped: {last}", conflict=False)


def _widen_pipe(pipe: IO[bytes] | None) -> None:
    """A 1 MiB pipe instead of 64 KiB: a batch of ~150 MB then crosses in far fewer rounds (Linux)."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError, AttributeError, ValueError):
        pass


# -- the child's side ---------------------------------------------------------------


class _BatchReader:
    """Reads batches into one reused buffer (hugepage-backed where the kernel allows: a fresh 150 MB
    allocation per batch costs more in page faults than the copy itself on this kind of machine)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.buf: mmap.mmap | None = None

    def _fill(self, n: int) -> memoryview | None:
        if self.buf is None or len(self.buf) < n:
            if self.buf is not None:
                self.buf.close()
            self.buf = mmap.mmap(-1, max(n, 1 << 20))
            if hasattr(mmap, "MADV_HUGEPAGE"):
                self.buf.madvise(mmap.MADV_HUGEPAGE)
        view = memoryview(self.buf)[:n]
        got = 0
        while got < n:
            k = self.f.readinto(view[got:])
            if not k:
                view.release()
                return None
            got += k
        return view

    def rows(self) -> Iterator[tuple[str, int, str, memoryview]] | None:
        """The next batch's rows in insert order, or None at the end of input (the parent closed the pipe,
        or died mid-batch). States are views into the buffer, valid until the next call."""
        head = self.f.read(8)
        if len(head) < 8:
            return None
        header = json.loads(self.f.read(struct.unpack("<Q", head)[0]) or b"null")
        n, parts = header["n"], header["parts"]
        widths = [count * width for _, count, width in parts]
        view = self._fill(49 * n + sum(widths))
        if view is None:
            return None
        text = str(view[: 32 * n], "ascii")
        ids = [text[i : i + 32] for i in range(0, 32 * n, 32)]
        versions = view[32 * n : 40 * n].cast("q")
        order = view[40 * n : 48 * n].cast("q")
        codes = view[48 * n : 49 * n]
        topics = [topic for topic, _, _ in parts]
        states: list[memoryview] = []
        at = 49 * n
        for (_, _, width), size in zip(parts, widths, strict=True):
            states.extend(view[i : i + width] for i in range(at, at + size, width))  # fixed-width rows (space-padded JSON)
            at += size
        return zip(ids, versions, map(topics.__getitem__, codes), map(states.__getitem__, order), strict=True)


def _die_with_parent(parent_pid: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


def serve(db_path: str, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Write each batch read from ``stdin`` in its own transaction and answer a line on ``stdout``:
    ``ok N JOURNAL``, ``conflict MESSAGE`` or ``error MESSAGE``."""
    con = sqlite3.connect(db_path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
    try:
        for pragma in BULK_PRAGMAS:
            con.execute(pragma)
        journal = _bulk_journal(con)
        reader = _BatchReader(stdin)
        while True:
            rows = reader.rows()
            if rows is None:
                return  # the parent closed the pipe, or died mid-batch: nothing of a partial batch is written
            changes = con.total_changes
            try:
                con.execute("BEGIN")
                con.executemany(INSERT_SQL, rows)
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
                stdout.write(f"ok {con.total_changes - changes} {journal}\n".encode())
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
    db_path, parent_pid = argv[0], int(argv[1])
    _die_with_parent(parent_pid)
    serve(db_path, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])

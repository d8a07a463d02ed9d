"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The content is written to a temporary file beside the target (same directory,
so same file system) and moved over it with ``os.replace``. A failed write
removes its temporary file and leaves the target as it was. Used by the
projection cache and the report writers (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_beside(path: Path) -> Path:
    """The temporary name a write to ``path`` goes through (hidden, so a directory listing skips it)."""
    return path.with_name(f".{path.name}.tmp")


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Let ``write`` fill a temporary file beside ``path``, then move it over ``path``; returns ``path``."""
    target = Path(path)
    tmp = temporary_beside(target)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(path: str | Path, text: str, encoding: str | None = None) -> Path:
    """Write ``text`` to ``path`` whole or not at all."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding=encoding))


class FileLock:
    """An exclusive lock on ``path`` across processes (``flock``), re-entrant within one object.

    The projection cache holds one while it loads, writes or clears its directory, so that two
    processes (or two store objects of one process: two imports into one shared store) never save
    into the same directory at once, nor read one half-saved (docs/ARCHITECTURE.md). Kept beside
    the directory it guards, so clearing the directory leaves the lock alone.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._guard:
            if self._depth == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    os.close(self._fd)  # closing lets the lock go
                    self._fd = None

"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The content is written to a temporary file beside the target (same directory,
so same file system; an unpredictable name created exclusively) and moved over it
with ``os.replace``, which replaces a symbolic link at the target rather than
writing through it. A failed write
removes its temporary file and leaves the target as it was. Used by the
projection cache and the report writers (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: owner-only modes for what holds pseudonymised personal data or unsuppressed figures (docs/personal-data.md)
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def temporary_beside(path: Path) -> Path:
    """A new, empty temporary file beside ``path``: an unpredictable hidden name created exclusively
    (``mkstemp``, mode 0600), so a link planted at a guessed name is never written through."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    return Path(name)


def _public_mode() -> int:
    """The mode an ordinary new file gets under the process's umask: read from ``/proc`` where it can be (setting
    the umask to read it would change it for every thread for a moment)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


class WriteError(Exception):
    """A file the system would not let us write (disk full, read-only, no such directory): one line naming it."""


def write_atomic(path: str | Path, write: Callable[[Path], object], *, private: bool = True) -> Path:
    """Let ``write`` fill a temporary file beside ``path``, then move it over ``path``; returns ``path``.

    The move replaces ``path`` itself: a symbolic link there is replaced by the new file, never followed.
    ``private`` files stay owner-only (0600) whatever the umask; others get the umask's ordinary mode.
    A write the system refuses raises :class:`WriteError` saying why, and leaves ``path`` as it was.
    """
    target = Path(path)
    try:
        tmp = temporary_beside(target)
    except OSError as e:
        raise WriteError(describe_os_error(e, target)) from None
    try:
        write(tmp)
        if not private:
            os.chmod(tmp, _public_mode())
        os.replace(tmp, target)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise WriteError(describe_os_error(e, target)) from None
        raise
    return target


def write_text_atomic(path: str | Path, text: str, encoding: str | None = None, *, private: bool = True) -> Path:
    """Write ``text`` to ``path`` whole or not at all."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding=encoding), private=private)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as an owner-only directory (0700) whatever the umask; an
    existing directory this process owns is made owner-only too."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    try:
        if path.stat().st_uid == os.getuid():
            os.chmod(path, PRIVATE_DIR)
    except OSError:  # a file system without modes: the creation mode is all there is
        pass


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


def describe_os_error(error: OSError, path: str | Path) -> str:
    """One line saying what happened to a write of ``path``: disk full, read-only file system, no such
    directory, permission denied, or the system's words (pyarrow's errors carry them only in the text)."""
    text = str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in text or "Disk quota exceeded" in text:
        return f"cannot write {path}: disk full (no space left on the device)"
    if error.errno == errno.EROFS or "Read-only file system" in text:
        return f"cannot write {path}: the file system is read-only"
    if error.errno == errno.ENOENT or "No such file or directory" in text:
        return f"cannot write {path}: directory {Path(path).parent} does not exist"
    if error.errno in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return f"cannot write {path}: permission denied"
    return f"cannot write {path}: {error.strerror or text}"

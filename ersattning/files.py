"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The content is written to a temporary file beside the target (same directory,
so same file system) and moved over it with ``os.replace``. A failed write
removes its temporary file and leaves the target as it was. Used by the
projection cache and the report writers (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
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

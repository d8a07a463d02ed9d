"""``--strict``: every row of every file is checked before anything is written.

Imports append one transaction per chunk, so a strict import that stopped at a
bad row in its tenth chunk would leave nine chunks behind. Instead a strict
import first runs as a dry run (which reads, checks and pseudonymises, and
writes nothing); only when that finds no problem does it run again for real.
The cost is reading the files twice, which is what strict asks for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

Run = TypeVar("Run", bound=Callable[..., Any])


def checked_first(run: Run) -> Run:
    """Wrap an import function ``run(store, paths, mapping, pseudonymiser, *, strict, quarantine, dry_run, progress, ...)``."""

    @functools.wraps(run)
    def wrapper(store: Any, paths: Any, mapping: Any, pseudonymiser: Any, *, strict: bool = False, dry_run: bool = False, quarantine: Any = None, progress: Any = None, **options: Any) -> Any:
        paths = [str(p) for p in paths]  # read twice: an iterator would be empty the second time
        if strict and not dry_run:
            run(store, paths, mapping, pseudonymiser, strict=True, dry_run=True, quarantine=None, progress=None, **options)
        return run(store, paths, mapping, pseudonymiser, strict=strict, dry_run=dry_run, quarantine=quarantine, progress=progress, **options)

    return wrapper  # type: ignore[return-value]

"""``--strict``: every row of every file is checked before anything is written.

Imports append one transaction per chunk, so a strict import that stopped at a
bad row in its tenth chunk would leave nine chunks behind. Instead a strict
import first runs as a dry run (which reads, checks and pseudonymises, and
writes nothing); only when that finds no problem does it run again for real.
The cost is reading the files twice, which is what strict asks for.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import TypeVar

from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.privacy import Pseudonymiser
from ersattning.store import Store

Report = TypeVar("Report")
Paths = Iterable[str | os.PathLike[str]]


def checked_first(
    run: Callable[[Store, list[str], Mapping, Pseudonymiser, ImportOptions], Report],
    store: Store,
    paths: Paths,
    mapping: Mapping,
    pseudonymiser: Pseudonymiser,
    options: ImportOptions,
) -> Report:
    """``run(store, paths, mapping, pseudonymiser, options)``, after a dry run of it (no quarantine, no progress) that
    checks everything when ``options.strict`` asks for it."""
    listed = [str(p) for p in paths]  # read twice: an iterator would be empty the second time
    if options.strict and not options.dry_run:
        run(store, listed, mapping, pseudonymiser, dataclasses.replace(options, dry_run=True, quarantine=None, progress=None))
    return run(store, listed, mapping, pseudonymiser, options)

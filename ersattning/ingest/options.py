"""How an import runs: one set of options for every kind of file (``ersattning import``'s flags).

See docs/ARCHITECTURE.md (the import) and ``strict.py`` for ``--strict``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

Progress = Callable[[int, float, float | None], None]
"""``progress(rows, seconds, fraction)`` after each chunk: rows read so far, seconds since the start, and the share
of the files' bytes read (for an estimate of the time left; None when not known)."""


@dataclass
class Stored:
    """What an import has committed to the store so far, kept current batch by batch: what ``ersattning import``
    says when it is interrupted (a rerun of the same command skips these rows and imports the rest)."""

    rows: int = 0  # rows imported (new or changed) in committed batches
    events: int = 0
    batches: int = 0
    fraction: float | None = None  # the share of the files' bytes read when the last committed batch was read

    def committed(self, rows_at_submit: list[int], fractions: list[float | None], batches: int, events: int) -> None:
        """The first ``batches`` submitted batches are committed: ``rows_at_submit``, the import's rows imported when
        each was submitted; ``fractions``, how much of the files had been read."""
        self.batches, self.events = batches, events
        self.rows = rows_at_submit[batches - 1] if batches else 0
        self.fraction = fractions[batches - 1] if batches else None


@dataclass(frozen=True)
class ImportOptions:
    """The options every import entry point takes (visits, events, decisions, stays)."""

    strict: bool = False  # stop at the first bad row; checked in a dry run first, so nothing is written (strict.py)
    quarantine: str | Path | None = None  # rejected rows as CSV with file, line and reason
    dry_run: bool = False  # read, check and pseudonymise; write nothing
    chunk_rows: int = 200_000  # rows read, checked and appended per transaction
    progress: Progress | None = None
    now: datetime | None = None  # when corrections and revisions are recorded (default: the time of the import)
    overlap_slack: timedelta = timedelta(days=1)  # visits: how far back rows may come and be checked against memory (overlaps.py)
    stored: Stored = field(default_factory=Stored)  # what is committed so far (read when the import is interrupted)


DEFAULT_OPTIONS = ImportOptions()

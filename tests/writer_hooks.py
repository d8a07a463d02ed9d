"""Hooks the store's writer process runs in tests instead of the feed's own (``ersattning.projection.feed.HOOK``).

The writer is a child process, so a test reaches it by naming one of these as the hook (its module is
imported in the child) and steering it through environment variables the child inherits.
"""

from __future__ import annotations

import fcntl
import os
import signal
from pathlib import Path
from typing import Any

from ersattning.projection import cache, feed
from ersattning.store.sqlite_writer import CommittedBatch

#: the file whose size counts the cache files the import and its writer have written (one byte each)
COUNTER = "ERSATTNING_TEST_FILE_COUNTER"
#: the count at which the import is killed, and the import's process id
CUT, IMPORT_PID = "ERSATTNING_TEST_KILL_AT", "ERSATTNING_TEST_IMPORT_PID"
#: every this-many-th batch the writer answers "-" (not decoded)
SKIP_EVERY = "ERSATTNING_TEST_SKIP_EVERY"

_count = [0]


def count_cache_writes() -> None:
    """Count the cache files written in this process (the import or its writer): at the ``CUT``-th of them
    all, the import is killed (its writer dies with it)."""
    write_atomic, write_text_atomic = cache.write_atomic, cache.write_text_atomic

    def writing(path: Path, *args: Any) -> Any:
        with open(os.environ[COUNTER], "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(b".")
            f.flush()
            if f.tell() == int(os.environ[CUT]):
                os.kill(int(os.environ[IMPORT_PID]), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)
        return (write_text_atomic if path.suffix == ".json" else write_atomic)(path, *args)

    cache.write_atomic, cache.write_text_atomic = writing, writing  # type: ignore[assignment]


def killing(batch: CommittedBatch, argument: str) -> str:
    """The feed's hook, counting (and killing at) the part files it writes."""
    if not _count[0]:
        _count[0] = 1
        count_cache_writes()
    return feed.write_committed(batch, argument)


def skipping(batch: CommittedBatch, argument: str) -> str:
    """The feed's hook, but every ``SKIP_EVERY``-th batch is not decoded (answered ``LAST:-``)."""
    _count[0] += 1
    if _count[0] % int(os.environ[SKIP_EVERY]) == 0:
        return f"{batch.first + batch.n - 1}:-"
    return feed.write_committed(batch, argument)


def echo(batch: CommittedBatch, argument: str) -> str:
    """What the writer tells a hook: ``FIRST:N:ARGUMENT:FIRST_ID_HEX:LAST_VERSION``."""
    return f"{batch.first}:{batch.n}:{argument}:{bytes(batch.ids[:32]).decode()}:{batch.versions[-1]}"


def failing(batch: CommittedBatch, argument: str) -> str:
    raise RuntimeError("a hook that fails")

"""Times and dates shared by the tests."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

T0 = datetime(2024, 3, 4, 7, 0, tzinfo=UTC)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


D0 = date(2024, 3, 1)


def wait_for_first_commit(proc: subprocess.Popen, db: Path, seconds: float = 120) -> None:
    """Wait until a writing process has committed its first events to the SQLite store ``db``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        except sqlite3.Error:
            continue
        # closed whatever happens: a connection left open here (with its read transaction) would keep
        # this process's view of the write-ahead log from before the writer's later checkpoints
        try:
            position = con.execute("SELECT COALESCE(MAX(rowid), 0) FROM stored_events").fetchone()[0]
        except sqlite3.Error:
            continue
        finally:
            con.close()
        if position > 0:
            return

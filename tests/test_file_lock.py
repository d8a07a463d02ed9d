"""The projection cache's directory lock (ersattning.files.FileLock): exclusive across objects, re-entrant within one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ersattning.files import FileLock


def test_a_second_holder_waits_until_the_first_lets_go(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "c.lock"), FileLock(tmp_path / "c.lock")
    order: list[str] = []

    def take_second() -> None:
        with second.held():
            order.append("second")

    with first.held():
        with first.held():  # re-entrant within one object
            order.append("first")
        t = threading.Thread(target=take_second)
        t.start()
        time.sleep(0.3)
        assert order == ["first"], "the second holder got in while the first held the lock"
        order.append("first done")
    t.join(5)
    assert order == ["first", "first done", "second"]


def test_the_cache_lock_lives_beside_the_directory_it_guards(tmp_path: Path) -> None:
    from ersattning.projection import ProjectionCache

    cache = ProjectionCache(tmp_path / "s.db.projection")
    with cache.lock():
        assert (tmp_path / "s.db.projection.lock").exists()
        cache.clear()  # clearing the directory leaves the lock alone
    assert (tmp_path / "s.db.projection.lock").exists()

"""A projection cache write that dies part-way leaves a cache whose next load still equals a rebuild.

Each file of the cache is named by the position it holds, and ``meta.json``, written last, names them:
until it is written the old meta names only the old files (projection/cache.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ersattning import projection
from ersattning.projection import cache as projection_cache
from ersattning.store import open_store
from tests.test_projection import ROWS, _assert_same


@pytest.mark.parametrize("failing", ["meta.json", "visits-", "entity_events", "vocab", "part-"])
def test_a_cache_write_that_fails_part_way_leaves_a_projection_equal_to_a_rebuild(tmp_path: Path, failing: str) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    half = len(ROWS[0]) // 2
    store.append(*(col[:half] for col in ROWS))
    projection.load(store)  # a cache at this position
    store.append(*(col[half:] for col in ROWS))  # more events after it
    write_atomic, write_text_atomic = projection_cache.write_atomic, projection_cache.write_text_atomic

    def failing_write(path: Path, *args: Any) -> None:
        if path.name.startswith(failing):
            raise OSError(f"killed before {path.name} was written")
        (write_text_atomic if path.suffix == ".json" else write_atomic)(path, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(projection_cache, "write_atomic", failing_write)
        mp.setattr(projection_cache, "write_text_atomic", failing_write)
        with pytest.raises(projection.ProjectionError, match="killed before .* the store is unchanged"):  # one line for the user
            projection.update(open_store(url))
    fresh = open_store(url)
    loaded = projection.load(fresh)
    assert loaded.position == fresh.position()
    _assert_same(loaded, projection.load(open_store(url), rebuild=True))
    _assert_same(projection.load(fresh, as_of="2024-02-15"), projection.load(open_store(url), as_of="2024-02-15", rebuild=True))

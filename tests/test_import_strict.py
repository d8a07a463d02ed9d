"""--strict: a bad row in a later chunk stops the import before any chunk is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.recipients import import_decisions, import_stays
from ersattning.ingest.report import ImportError_
from ersattning.ingest.visits import import_visits
from tests.test_import import ROWS, P, _canonical, _decisions, _store

GOOD_DECISIONS = ["R1,D1,P1,personal_care,600,month,2024-01-01,,urban,1938", "R2,D2,P1,cleaning,120,week,2024-01-01,,urban,1940"]


def test_strict_decisions_write_nothing_when_the_last_chunk_is_bad(tmp_path: Path) -> None:
    store = _store(tmp_path)
    src = _decisions(tmp_path, [*GOOD_DECISIONS, "R3,D3,P1,gardening,60,month,2024-01-01,,urban,1941"])
    with pytest.raises(ImportError_, match=r"d\.csv:4: category"):
        import_decisions(store, [src], Mapping(), P, ImportOptions(strict=True, chunk_rows=1))  # one row a chunk: two chunks were good
    assert store.position() == 0
    assert import_decisions(store, [src], Mapping(), P, ImportOptions(chunk_rows=1)).rows_imported == 2  # without strict: the good rows


def test_strict_stays_write_nothing_when_a_later_row_is_bad(tmp_path: Path) -> None:
    store = _store(tmp_path)
    import_decisions(store, [_decisions(tmp_path, GOOD_DECISIONS)], Mapping(), P)
    before = store.position()
    stays = tmp_path / "s.csv"
    stays.write_text("recipient,kind,start,end\nR1,hospital,2024-03-10,2024-03-12\nR2,hospital,2024-03-11,\nR9,hospital,2024-03-10,\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=r"s\.csv:4: unknown recipient"):
        import_stays(store, [stays], Mapping(), P, ImportOptions(strict=True, chunk_rows=1))
    assert store.position() == before


def test_strict_visits_write_nothing_when_the_last_chunk_is_bad(tmp_path: Path) -> None:
    store = _store(tmp_path)
    bad = "R1,P1,V9,personal_care,2024-03-06 09:00,2024-03-06 08:00,,,,planned"  # ends before it starts
    with pytest.raises(ImportError_, match=r"v\.csv:5: "):
        import_visits(store, [_canonical(tmp_path, [*ROWS[:3], bad])], Mapping(), P, ImportOptions(strict=True, chunk_rows=1))
    assert store.position() == 0

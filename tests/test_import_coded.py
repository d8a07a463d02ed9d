"""The visit import works on coded cells (each distinct value once): every coded step gives what the same step
on the cells one by one gives — the personnummer screen, mapping, filling, splitting staff, canonical identity
numbers, pseudonyms, recipient ids, event categories, and the rows' status."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning.ingest import visits
from ersattning.ingest.cells import _PNR_SCREEN, Coded, _pnr_screen, canonical_coded, mapped_values, split_staff_coded
from ersattning.ingest.ids import ImportIds
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.readers import Chunk
from ersattning.ingest.report import ImportReport
from ersattning.privacy import Pseudonymiser, canonical_ids

P = Pseudonymiser(b"k" * 32)

# messy cells: ids, identity numbers in their forms, separators, blanks, non-ASCII digits and letters
_cell = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(list("0123456789-+| aåÖ٣\t")), max_size=16),
    st.sampled_from(["19430514-1139", "194305141139", "430514-1139", "4305141139", "430514+1139", "811228-9874", "R-1", "R-1|S-2", "S-2 | R-1", "|x", "x|"]),
)
_cells = st.lists(_cell, min_size=1, max_size=40)


def _text(values: list[str | None]) -> pa.Array:
    """As the importer's stripped columns: text, empty cells null."""
    arr = pc.utf8_trim_whitespace(pa.array(values, pa.string()))
    return pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar(None, pa.string()), arr)


@settings(max_examples=300, deadline=None)
@given(_cells, st.integers(0, 3))
def test_the_personnummer_screen_is_the_pattern_on_every_cell(values: list[str | None], cut: int) -> None:
    arr = pa.array(values, pa.string()).slice(min(cut, len(values) - 1))
    expected = pc.match_substring_regex(arr, _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
    assert _pnr_screen(arr).tolist() == expected.tolist()


def test_the_personnummer_screen_on_long_columns_of_ids_and_times() -> None:
    ids = [f"V{i}" for i in range(1_000_000, 1_030_000)]  # seven digits: no ten in a row
    times = [f"2024-01-{1 + i % 28:02d} 07:{i % 60:02d}" for i in range(30_000)]  # runs of six across cells only
    for values in (ids, times, [*times[:-1], "note 811228-9874"], [*ids[:-1], "V8112289874"]):
        arr = pa.array(values, pa.string())
        expected = pc.match_substring_regex(arr, _PNR_SCREEN).fill_null(False).to_numpy(zero_copy_only=False)
        assert _pnr_screen(arr).tolist() == expected.tolist()
    assert _pnr_screen(pa.array([*times[:-1], "note 811228-9874"], pa.string()))[-1]


@settings(max_examples=200, deadline=None)
@given(_cells, st.dictionaries(st.sampled_from(["R-1", "x", "4305141139", "a"]), st.sampled_from(["R-1", "y", "a"]), max_size=3), st.sampled_from(["R-1", "new"]))
def test_coded_cells_map_fill_and_check_as_the_cells_one_by_one(values: list[str | None], table: dict[str, str], fill: str) -> None:
    arr = _text(values)
    coded = Coded.of(arr)
    cells = pd.Series(arr.to_pylist(), dtype=object)
    assert coded.objects().tolist() == cells.tolist()
    assert coded.missing().tolist() == cells.isna().tolist()
    assert coded.mapped(table).objects().tolist() == mapped_values(cells, table).tolist()
    assert coded.filled(fill).objects().tolist() == cells.fillna(fill).tolist()
    assert coded.isin(["R-1", "a"]).tolist() == cells.isin(["R-1", "a"]).tolist()
    other = Coded.of(_text(list(reversed(values))))
    assert coded.or_else(other).objects().tolist() == cells.fillna(other.series()).tolist()
    rows = np.flatnonzero(np.arange(len(values)) % 3 != 1)
    got = coded.categorical(rows)
    codes, uniques = pd.factorize(cells.to_numpy(dtype=object)[rows], use_na_sentinel=True)  # as the importer made them
    assert got.codes.tolist() == codes.tolist() and list(got.categories) == list(uniques)
    for a, b in zip(coded.mapped(table).uniques.tolist(), coded.mapped(table).uniques.tolist()[1:], strict=False):
        assert a != b  # distinct values stay distinct after mapping merged some


def _split_one_by_one(values: list[str | None], separator: str) -> tuple[list[str | None], list[str | None]]:
    """The staff split as the importer did it per cell."""
    first, second = [], []
    for v in values:
        if v is not None and separator in v:
            parts = [x.strip() for x in v.split(separator)]
            first.append(parts[0] or None)
            second.append(parts[1] or None if len(parts) > 1 else None)
        else:
            first.append(v)
            second.append(None)
    return first, second


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cells, st.lists(st.dates(date(1990, 1, 1), date(2030, 12, 31)), min_size=40, max_size=40))
def test_coded_staff_identity_numbers_and_pseudonyms_are_the_cells_one_by_one(values: list[str | None], days: list[date]) -> None:
    arr = _text(values)
    on = np.array(days[: len(values)], dtype="datetime64[D]").astype("datetime64[s]")
    cells = arr.to_pylist()
    first, second = split_staff_coded(Coded.of(arr), "|")
    expected_first, expected_second = _split_one_by_one(cells, "|")
    assert first.objects().tolist() == expected_first and second.objects().tolist() == expected_second
    canon = canonical_coded(first, on)
    assert canon.objects().tolist() == canonical_ids(pd.Series(expected_first, dtype=object), on).tolist()
    ids, reference = ImportIds(P), ImportIds(P)
    coded_pseudonyms = ids.pseudonyms_coded(canon)
    assert coded_pseudonyms.objects().tolist() == reference.pseudonyms(canon.series()).tolist()
    assert len(set(coded_pseudonyms.uniques.tolist())) == len(coded_pseudonyms.uniques)  # codes into distinct pseudonyms
    got, expected = ids.recipient_ids_coded(canon), reference.recipient_ids(canon.series())
    assert list(np.asarray(got, dtype=object)) == list(np.asarray(expected, dtype=object))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab 1å")), min_size=1, max_size=8), min_size=1, max_size=20))
def test_pseudonyms_are_truncated_hmac_sha256_of_the_stripped_value(values: list[str]) -> None:
    key = b"k" * 32
    expected = [None if not v.strip() else hmac.new(key, v.strip().encode("utf-8"), hashlib.sha256).digest()[:16].hex() for v in values]
    assert P.many(values).tolist() == expected
    assert [P.one(v) for v in values if v.strip()] == [e for e in expected if e is not None]


_status = st.sampled_from([None, "performed", "Utförd", "cancelled_by_recipient", "cancelled_by_provider", "missed", "planned", "odd"])
_time = st.sampled_from([None, "2024-03-04 08:00", "2024-03-04 08:30", "bad"])


def _status_one_by_one(status: list[str | None], actual_start: np.ndarray, actual_end: np.ndarray, as_planned_rule: bool) -> tuple[list[str], list[bool]]:
    """The rows' status and as-planned mask as the importer made them from object cells (before the cells were coded)."""
    s = pd.Series(status, dtype=object).fillna("").to_numpy()
    as_planned = np.zeros(len(s), dtype=bool)
    if as_planned_rule:
        as_planned = np.isin(s, ("", "performed")) & np.isnat(actual_start) & np.isnat(actual_end)
        s = np.where(s == "", "performed", s)
    has_actual = ~np.isnat(np.where(as_planned, np.datetime64("2024-03-04T07:00:00"), actual_start))
    s = np.where(s == "", np.where(has_actual, "performed", "planned"), s)
    return s.tolist(), as_planned.tolist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_status, _time, _time), min_size=1, max_size=30), st.booleans())
def test_the_rows_status_from_coded_cells_is_the_one_by_one_status(rows: list[tuple[str | None, str | None, str | None]], as_planned_rule: bool) -> None:
    frame = pd.DataFrame(
        {
            "recipient": "R-1", "provider": "P", "category": "personal_care", "planned_start": "2024-03-04 07:00",
            "planned_duration": "30", "status": [r[0] for r in rows], "actual_start": [r[1] for r in rows], "actual_end": [r[2] for r in rows],
        },
        dtype=object,
    )  # fmt: skip
    mapping = Mapping(values={"status": {"Utförd": "performed"}}, units={"planned_duration": "minutes"}, performed_as_planned=as_planned_rule)
    chunk = Chunk(path="v.csv", first_row=1, frame=frame, lines=np.arange(2, len(rows) + 2))
    _, text, coded = visits._text_columns(chunk, mapping, ImportReport())
    got = visits._checked_rows(chunk, mapping, text, visits._Checks(len(rows)), coded)
    status = mapped_values(pd.Series([r[0] for r in rows], dtype=object), {"Utförd": "performed"})
    times = {c: visits.parse_local_times(text[c], mapping)[0] for c in ("actual_start", "actual_end")}
    expected_status, expected_as_planned = _status_one_by_one(status.tolist(), times["actual_start"], times["actual_end"], as_planned_rule)
    assert got.status.tolist() == expected_status
    assert got.as_planned.tolist() == expected_as_planned
    assert got.performed.tolist() == [s == "performed" for s in expected_status]
    assert got.outcome.tolist() == visits._outcome_codes(np.array(expected_status, dtype=object)).tolist()

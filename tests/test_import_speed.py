"""What the fast import path relies on: the combined visit events fold like the two events they stand
for, visit ids are a pinned keyed hash, staff overlaps are caught across chunks in bounded memory,
and progress reports a share of the bytes read and the time left."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.cli.main import import_progress_line
from ersattning.domain import CancelledBy, CancelReason, Category, Registration, Visit, stable_id
from ersattning.ingest.cells import _pnr_screen, parse_times
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.overlaps import StaffIntervals
from ersattning.ingest.visits import import_visits
from ersattning.privacy import Pseudonymiser, find_personnummer, hash_arrow_strings
from ersattning.store import Store, open_store
from ersattning.store.bulk import encoder_for
from tests.test_bulk import _decode, _utc64

P = Pseudonymiser(b"k" * 32)
T0 = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)

# -- the combined events ---------------------------------------------------------------------------

minutes = st.integers(0, 60 * 24 * 20)
visit = st.fixed_dictionaries(
    {
        "plan_recorded": minutes,
        "start": minutes,
        "planned_minutes": st.integers(1, 240),
        "category": st.sampled_from(list(Category)),
        "staff_planned": st.integers(1, 2),
        "outcome": st.sampled_from(["performed", "cancelled", "planned"]),
        "late": st.integers(-600, 60 * 24 * 5),  # when the outcome was recorded, after the visit
        "length": st.integers(0, 300),
        "staff": st.lists(st.sampled_from(["s1", "s2", "å3"]), min_size=1, max_size=2, unique=True).map(tuple),
        "registration": st.sampled_from(list(Registration)),
        "by": st.sampled_from(list(CancelledBy)),
        "corrected": st.none() | st.integers(1, 60 * 24 * 30),
    }
)


def _at(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


def _store_both_ways(visits: list[dict]) -> tuple[Store, Store]:
    """The same history once as Planned + outcome (+ correction) events, once with the combined events."""
    split, combined = open_store("memory://"), open_store("memory://")
    rid = stable_id("recipient", "r1")
    for i, v in enumerate(visits):
        plan = {"key": f"v{i}", "recipient_id": rid, "provider": "P1", "team": "A", "category": v["category"], "planned_start": _at(v["start"]),
                "planned_minutes": v["planned_minutes"], "staff_planned": v["staff_planned"], "recorded_at": _at(v["plan_recorded"])}  # fmt: skip
        start = _at(v["start"])
        end = start + timedelta(minutes=v["length"])
        outcome_at = end + timedelta(minutes=v["late"])
        a = Visit.plan(**plan)
        if v["outcome"] == "performed":
            a.perform(actual_start=start, actual_end=end, staff=v["staff"], registration=v["registration"], recorded_at=outcome_at)
            b = Visit.plan_performed(**plan, actual_start=start, actual_end=end, staff=v["staff"], registration=v["registration"], performed_recorded_at=outcome_at)
        elif v["outcome"] == "cancelled":
            reason = CancelReason.staffing if v["by"] is CancelledBy.provider else CancelReason.declined
            a.cancel(by=v["by"], reason=reason, cancelled_at=start - timedelta(hours=3), recorded_at=outcome_at)
            b = Visit.plan_cancelled(**plan, by=v["by"], reason=reason, cancelled_at=start - timedelta(hours=3), cancelled_recorded_at=outcome_at)
        else:
            b = Visit.plan(**plan)
        for agg in (a, b):
            if v["corrected"] is not None and agg.status == "performed":
                agg.correct(actual_start=start, actual_end=end + timedelta(minutes=7), reason="fixed", recorded_at=outcome_at + timedelta(minutes=v["corrected"]))
        split.app.save(a)
        combined.app.save(b)
        assert (a.status, a.actual, a.planned_start, a.planned_minutes, a.staff_planned) == (b.status, b.actual, b.planned_start, b.planned_minutes, b.staff_planned)
        got: Visit = combined.app.repository.get(b.id)  # the library rebuilds it from the stored combined event
        assert (got.status, got.actual, got.category, got.staff_planned) == (a.status, a.actual, a.category, a.staff_planned)
        assert got.version == a.version - (v["outcome"] != "planned")  # one event fewer
    return split, combined


def _frame(store: Store, as_of: str | None = None) -> pd.DataFrame:
    p = projection.load(store, as_of=as_of)
    keys = p.visit_keys.astype(str)
    return pd.concat([keys, p.visits], axis=1).sort_values(["key_hi", "key_lo"], ignore_index=True).astype(str)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=6), st.lists(st.integers(-60 * 24, 60 * 24 * 40), min_size=1, max_size=3))
def test_the_combined_events_fold_exactly_like_the_two_events_they_replace(visits: list[dict[str, Any]], cuts: list[int]) -> None:
    split, combined = _store_both_ways(visits)
    pd.testing.assert_frame_equal(_frame(split), _frame(combined))
    for cut in cuts:  # as known at any time: a plan recorded before its outcome was is still only planned
        as_of = (T0 + timedelta(minutes=cut)).isoformat()
        pd.testing.assert_frame_equal(_frame(split, as_of), _frame(combined, as_of))


def test_the_bulk_encoder_writes_the_combined_events_the_methods_build() -> None:
    rid = stable_id("recipient", "r")
    plan: dict[str, Any] = {"key": "v", "recipient_id": rid, "provider": "Hemtjänst Söder", "team": "A", "category": Category.cleaning, "planned_start": T0, "planned_minutes": 45, "staff_planned": 2, "recorded_at": T0 - timedelta(days=3)}
    end = T0 + timedelta(minutes=44, seconds=59)
    performed = Visit.plan_performed(**plan, actual_start=T0, actual_end=end, staff=("a", 'b"2'), registration=Registration.nfc, performed_recorded_at=end + timedelta(hours=2)).collect_events()[0]
    cancelled = Visit.plan_cancelled(**plan, by=CancelledBy.provider, reason=CancelReason.staffing, cancelled_at=T0 - timedelta(hours=1), cancelled_recorded_at=T0 - timedelta(minutes=59)).collect_events()[0]
    common = {"timestamp": _utc64([plan["recorded_at"]]), "recipient_id": [rid.hex], "provider": ["Hemtjänst Söder"], "team": ["A"], "category": ["cleaning"], "planned_start": _utc64([T0]), "planned_minutes": [45], "staff_planned": [2]}
    enc = encoder_for(Visit.PlannedAndPerformed)
    state = enc.encode(1, {**common, "actual_start": _utc64([T0]), "actual_end": _utc64([end]), "staff": pd.Series([("a", 'b"2')], dtype=object), "registration": ["nfc"], "performed_recorded_at": _utc64([end + timedelta(hours=2)])})[0]
    assert _decode(enc, state, performed.originator_id, 1) == performed
    enc = encoder_for(Visit.PlannedAndCancelled)
    state = enc.encode(1, {**common, "by": ["provider"], "reason": ["staffing"], "cancelled_at": _utc64([T0 - timedelta(hours=1)]), "cancelled_recorded_at": _utc64([T0 - timedelta(minutes=59)])})[0]
    assert _decode(enc, state, cancelled.originator_id, 1) == cancelled


def test_an_import_writes_one_event_per_new_visit_and_outcomes_later_as_their_own(tmp_path: Path) -> None:
    header = "recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"
    rows = ["R1,P1,V1,cleaning,2024-03-05 10:00,2024-03-05 11:00,,,,planned", "R1,P1,V2,cleaning,2024-03-06 10:00,2024-03-06 11:00,2024-03-06 10:00,2024-03-06 10:50,S1,performed"]
    (tmp_path / "a.csv").write_text(header + "\n".join(rows) + "\n")
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert import_visits(store, [tmp_path / "a.csv"], Mapping(), P).events_written == 2
    assert store.events_by_topic() == {"ersattning.domain:Visit.Planned": 1, "ersattning.domain:Visit.PlannedAndPerformed": 1}
    (tmp_path / "b.csv").write_text(header + rows[0].replace(",,,,planned", ",2024-03-05 10:05,2024-03-05 11:00,S2,performed") + "\n")
    again = import_visits(store, [tmp_path / "b.csv"], Mapping(), P)
    assert again.events_written == 1 and store.events_by_topic()["ersattning.domain:Visit.Performed"] == 1
    v = projection.load(store).visits
    assert v["status"].tolist() == ["performed", "performed"]


# -- visit ids ---------------------------------------------------------------------------------------


def _siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4, the reference algorithm, in plain Python."""
    mask = 2**64 - 1
    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rotl(x: int, b: int) -> int:
        return ((x << b) | (x >> (64 - b))) & mask

    def rounds(n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32)  # noqa: E702
            v[2] = (v[2] + v[3]) & mask; v[3] = rotl(v[3], 16) ^ v[2]  # noqa: E702
            v[0] = (v[0] + v[3]) & mask; v[3] = rotl(v[3], 21) ^ v[0]  # noqa: E702
            v[2] = (v[2] + v[1]) & mask; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32)  # noqa: E702

    end = len(data) - len(data) % 8
    for i in range(0, end, 8):
        m = int.from_bytes(data[i : i + 8], "little")
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    b = ((len(data) & 0xFF) << 56) | int.from_bytes(data[end:], "little")
    v[3] ^= b
    rounds(2)
    v[0] ^= b
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def _mix(x: int) -> int:
    """The fixed bijective 64-bit mix pandas applies after SipHash."""
    mask = 2**64 - 1
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & mask
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


def test_visit_ids_are_keyed_siphash_pinned_against_a_reference() -> None:
    """Stored ids must never change with a library upgrade: pandas' hash must stay SipHash-2-4 + its mix."""
    values = ["V1", "R1|2024-03-05T10:00:00|cleaning", "åäö-😀", "", "x" * 100]
    hi, lo = P.keyed_ids(np.array(values, dtype=object), "visit")
    keys = P._sip["visit"]
    for value, h, low in zip(values, hi.tolist(), lo.tolist(), strict=True):
        assert h == _mix(_siphash24(keys[0].encode(), value.encode("utf-8")))
        assert low == _mix(_siphash24(keys[1].encode(), value.encode("utf-8")))
    other = Pseudonymiser(b"q" * 32).keyed_ids(np.array(values, dtype=object), "visit")
    assert not (other[1] == lo).any()  # another key, other ids
    assert not (P.keyed_ids(np.array(values, dtype=object), "other purpose")[1] == lo).any()
    # the Arrow path computes SipHash itself: pinned against the reference too, on both its vectorized and pandas paths
    for few_long_rows in (0, 10**9):
        arrow = [hash_arrow_strings(pa.array(values), key, few_long_rows=few_long_rows).tolist() for key in keys]
        assert arrow == [[_mix(_siphash24(key.encode(), value.encode("utf-8"))) for value in values] for key in keys]
    assert [a.tolist() for a in P.keyed_ids(pa.array(values), "visit")] == [hi.tolist(), lo.tolist()]


# Up to 200 bytes of UTF-8: empty, ASCII, å ä ö, 4-byte emoji, anything else Arrow can hold (no surrogates).
_text = st.text(st.sampled_from("aZ09 -|:åäöÅÄÖé€😀🙂") | st.characters(codec="utf-8"), max_size=200).map(
    lambda s: s.encode("utf-8")[:200].decode("utf-8", "ignore")
)
_KEYS = ("0123456789abcdef", "k\x00ey-with-ASCII!")  # 16 ASCII characters each, as keyed_ids derives them


def _pandas_hash(values: list[str], key: str) -> list[int]:
    return pd.util.hash_array(np.array(values, dtype=object), encoding="utf8", hash_key=key, categorize=False).tolist()


def _arrow_variants(values: list[str]) -> Iterator[pa.Array | pa.ChunkedArray]:
    """The same strings as string and large_string, whole, sliced (offset != 0) and chunked."""
    for kind in (pa.string(), pa.large_string()):
        padded = pa.array(["before", *values, "after"], kind)
        yield pa.array(values, kind)
        yield padded.slice(1, len(values))
        yield pa.chunked_array([padded.slice(1, len(values) // 2), padded.slice(1 + len(values) // 2, len(values) - len(values) // 2)], kind)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_text, max_size=40) | st.integers(0, 90).flatmap(lambda n: st.lists(st.text("abc|-09", min_size=n, max_size=n), max_size=30)))
def test_hashing_arrow_strings_equals_pandas_hash_array(values: list[str]) -> None:
    """Any strings (and equally long ones, read by strided copies), whole, sliced or chunked: bit for bit pandas'
    hash, through the vectorized word loop for every row (few_long_rows=0), through pandas for rows past 64 bytes
    (a huge few_long_rows), and the default mix of both."""
    for key in _KEYS:
        expected = _pandas_hash(values, key)
        for arr in _arrow_variants(values):
            for few_long_rows in (0, 3, 64, 10**9):
                got = hash_arrow_strings(arr, key, few_long_rows=few_long_rows)
                assert got.dtype == np.uint64 and got.tolist() == expected


def test_hashing_arrow_strings_in_blocks_with_long_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows spread over several blocks, a sort within each, many long rows looped over and a few very long ones
    left to pandas: still pandas' hash."""
    from ersattning.privacy import keyed_hash as pseudonym

    monkeypatch.setattr(pseudonym, "_BLOCK_ROWS", 50)
    rng = np.random.default_rng(3)
    values = ["".join(rng.choice(list("ab|åä😀"), size=int(rng.integers(0, 40)))) for _ in range(400)]
    values += ["x" * int(n) + "ö" for n in rng.integers(60, 300, size=120)] + ["y" * 5000, "V12345678" * 3]
    values += [f"V{i:07d}" for i in range(130)]  # equally long rows, several blocks of them
    rng.shuffle(values)
    for key in _KEYS:
        expected = _pandas_hash(values, key)
        for arr in _arrow_variants(values):
            assert hash_arrow_strings(arr, key).tolist() == expected


def test_keyed_ids_are_the_same_for_objects_and_arrow() -> None:
    values = ["V1", "R1|2024-03-05T10:00:00|städ", "åäö-😀", "", "   ", "x" * 100, *[f"V{i:07d}" for i in range(100)]]
    expected = P.keyed_ids(np.array(values, dtype=object), "visit")
    for arr in _arrow_variants(values):
        hi, lo = P.keyed_ids(arr, "visit")
        assert hi.dtype == lo.dtype == np.uint64
        assert (hi.tolist(), lo.tolist()) == (expected[0].tolist(), expected[1].tolist())
    assert [a.tolist() for a in P.keyed_ids(pa.array([], pa.string()), "visit")] == [[], []]
    for missing in (pa.array(["V1", None]), pa.chunked_array([["V1"], [None]]), pa.array([None, "V2"], pa.large_string())):
        with pytest.raises(ValueError, match="missing value"):
            P.keyed_ids(missing, "visit")
    with pytest.raises(TypeError, match="string"):
        P.keyed_ids(pa.array([1, 2]), "visit")


def test_the_personnummer_screen_misses_nothing_the_exact_check_finds() -> None:
    rng = np.random.default_rng(7)
    values = [f"V{i}" for i in range(5000)] + ["19121212-1212", "x811228-9874y", "701063-2391", "٧٠١٠٦٣-٢٣٩١", "Städ 8112289874", None, ""]
    values += ["".join(rng.choice(list("0123456789-+ aå٣"), size=int(rng.integers(0, 20)))) for _ in range(5000)]
    times = [f"2024-01-{d:02d} 0{h}:00" for d in range(1, 29) for h in range(10)]
    assert not _pnr_screen(pa.array(times, pa.string())).any()  # ASCII, no six digits in a row: skipped at once
    assert _pnr_screen(pa.array([*times, "note 811228-9874"], pa.string()))[-1]
    for part in (values, values[-300:]):  # many distinct values (byte screen) and few (RE2 on each)
        screen = _pnr_screen(pa.array(part, pa.string()))
        exact = find_personnummer(pd.Series(part, dtype=object))
        assert exact.sum() >= (5 if part is values else 0) and not (exact & ~screen).any()
    # digits that only run on across the boundary of two cells are no personnummer: not flagged
    neighbours = pa.array(["A123456", "7890123B"] * 3000, pa.string())
    assert not _pnr_screen(neighbours).any() and not _pnr_screen(neighbours.slice(1)).any()
    assert _pnr_screen(pa.array(["A123456", "X 811228-9874", "7890123B"] * 3000, pa.string()).slice(1)).tolist() == [True, False, False] * 2999 + [True, False]


# -- staff overlaps across chunks ------------------------------------------------------------------

HEADER = "recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"


def _visit(i: int, day: int, start: str, end: str, staff: str) -> str:
    d = (datetime(2024, 1, 1) + timedelta(days=day)).strftime("%Y-%m-%d")
    return f"R{i % 7},P1,V{i},personal_care,{d} {start},{d} {end},{d} {start},{d} {end},{staff},performed"


def test_overlaps_across_chunk_boundaries_and_far_out_of_order_are_caught(tmp_path: Path) -> None:
    rows = [_visit(i, i // 20, f"{8 + (i % 20) // 2:02d}:{30 * (i % 2):02d}", f"{8 + (i % 20) // 2:02d}:{30 * (i % 2) + 25:02d}", f"S{i % 20}") for i in range(400)]
    rows.append(_visit(1000, 3, "08:10", "08:40", "S0"))  # overlaps S0's visit of day 3 at 08:00–08:25, in a later chunk
    rows.append(_visit(1001, 19, "09:00", "09:20", "S3|S2"))  # its second staff member overlaps S2's 09:00 of day 19, same chunk
    rows.append(_visit(1002, 0, "08:20", "08:50", "X"))  # days before the horizon, but no overlap: kept
    rows.append(_visit(1003, 0, "08:05", "08:15", "S0"))  # inside S0's first visit, long after it left memory
    (tmp_path / "v.csv").write_text(HEADER + "\n".join(rows) + "\n")
    q = tmp_path / "q.csv"
    report = import_visits(open_store(f"sqlite:///{tmp_path / 's.db'}"), [tmp_path / "v.csv"], Mapping(), P, ImportOptions(chunk_rows=37, quarantine=q, overlap_slack=timedelta(hours=6)))
    rejected = pd.read_csv(q)
    # each reason names the visit overlapped: row i is on line i + 2 (S0's 08:00 of day 3 is row 60, S2's 09:00 of
    # day 19 is row 382, S0's first visit row 0), also when it left memory long ago (spilled to disk)
    other = {line: f"overlaps another visit of the same staff member (the other is on line {n} of {tmp_path / 'v.csv'})" for line, n in ((402, 62), (403, 384), (405, 2))}
    assert dict(zip(rejected["line"], rejected["reason"], strict=True)) == other
    assert report.rows_imported == 401
    # 400 time-ordered visits over 20 days: memory held about a day of them, not all
    assert report.staff_intervals_peak < 120


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60 * 24 * 6), st.integers(1, 180)), min_size=1, max_size=40), st.integers(1, 7), st.integers(0, 48))
def test_the_bounded_check_flags_what_an_unbounded_one_flags(intervals: list[tuple[int, int, int]], chunk: int, slack_hours: int) -> None:
    """Intervals in any order, chunk by chunk: spilling to disk behind the horizon changes no verdict."""
    staff = np.array([s for s, _, _ in intervals], dtype=np.int32)
    start = np.array([60 * m for _, m, _ in intervals], dtype=np.int64)
    end = start + np.array([60 * d for _, _, d in intervals], dtype=np.int64)
    bounded, reference = StaffIntervals(slack=timedelta(hours=slack_hours)), StaffIntervals(slack=timedelta(days=10_000))
    try:
        for i in range(0, len(staff), chunk):
            part = slice(i, i + chunk)
            got = bounded.clashes(staff[part], start[part], end[part])
            want = reference.clashes(staff[part], start[part], end[part])
            assert (got == want).all()
            bounded.add(staff[part][~got], start[part][~got], end[part][~got])
            reference.add(staff[part][~want], start[part][~want], end[part][~want])
        assert reference.spilled == 0
    finally:
        bounded.close()


def test_two_visits_of_one_staff_member_overlap_in_either_order() -> None:
    seen = StaffIntervals()
    seen.add(np.array([1], np.int32), np.array([1000 * 60]), np.array([1030 * 60]))
    new_start = np.array([990, 1029, 1010, 1031, 995]) * 60
    new_end = np.array([1010, 1060, 1020, 1060, 1001]) * 60
    # starts before and runs into it; starts a minute before its end (not more than a minute: no);
    # inside it; after it; ends a minute after its start (no)
    got = [bool(seen.clashes(np.ones(1, np.int32), new_start[i : i + 1], new_end[i : i + 1])[0]) for i in range(5)]
    assert got == [True, False, True, False, False]
    assert not seen.clashes(np.array([2], np.int32), new_start[:1], new_end[:1])[0]  # another staff member


# -- progress --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "seconds", "fraction", "line"),
    [
        (400_000, 4.0, 0.2, "import: 400,000 rows (20 %), 100,000 rows/s, about 16 s left"),
        (1_000_000, 30.0, 0.1, "import: 1,000,000 rows (10 %), 33,333 rows/s, about 4 min 30 s left"),
        (10_000, 1.0, 0.0001, "import: 10,000 rows (0 %), 10,000 rows/s, about 2 h 46 min left"),
        (2_000_000, 20.0, 1.0, "import: 2,000,000 rows (100 %), 100,000 rows/s, 20 s in all"),
        (5, 0.5, None, "import: 5 rows, 10 rows/s"),
    ],
)
def test_progress_shows_rows_per_second_and_the_time_left(rows: int, seconds: float, fraction: float | None, line: str) -> None:
    assert import_progress_line(rows, seconds, fraction) == line


def test_progress_fraction_grows_to_one_over_the_files(tmp_path: Path) -> None:
    files = []
    for k in range(2):
        path = tmp_path / f"v{k}.csv"
        path.write_text(HEADER + "\n".join(_visit(1000 * k + i, i // 20 + 30 * k, "08:00", "08:20", f"S{k}-{i}") for i in range(300)) + "\n")
        files.append(path)
    seen: list[tuple[int, float | None]] = []
    import_visits(open_store(f"sqlite:///{tmp_path / 's.db'}"), files, Mapping(), P, ImportOptions(chunk_rows=100, progress=lambda rows, s, f: seen.append((rows, f))))
    fractions = [f for _, f in seen if f is not None]
    assert [r for r, _ in seen] == [100, 200, 300, 400, 500, 600]
    assert len(fractions) == len(seen) and fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[2] == pytest.approx(0.5, abs=0.01)


def test_the_import_command_is_quiet_when_not_on_a_terminal(tmp_path: Path) -> None:
    from tests.test_cli import run

    path = tmp_path / "v.csv"
    path.write_text(HEADER + _visit(1, 0, "08:00", "08:20", "S1") + "\n")
    done = run("import", str(path), "--store", f"sqlite:///{tmp_path / 'c.db'}", env={"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"})
    assert done.returncode == 0 and done.stderr == "" and "rows/s" not in done.stdout


def test_a_visit_repeated_in_a_later_chunk_of_one_file_is_recognised(tmp_path: Path) -> None:
    rows = [
        "R1,P1,V1,cleaning,2024-03-05 10:00,2024-03-05 11:00,,,,planned",
        "R1,P1,V2,cleaning,2024-03-06 10:00,2024-03-06 11:00,,,,planned",
        "R1,P1,V1,cleaning,2024-03-05 10:00,2024-03-05 11:00,,,,planned",  # again: nothing new
        "R1,P1,V2,cleaning,2024-03-06 10:00,2024-03-06 11:00,2024-03-06 10:00,2024-03-06 10:55,S1,performed",  # now performed
        "R1,P1,V1,cleaning,2024-03-05 12:00,2024-03-05 13:00,,,,planned",  # a new plan for a visit already read
    ]
    (tmp_path / "v.csv").write_text(HEADER + "\n".join(rows) + "\n")
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    report = import_visits(store, [tmp_path / "v.csv"], Mapping(), P, ImportOptions(chunk_rows=2))
    # the repeat is repeated in the file, not "already in the store" (the store was empty when the import began)
    assert (report.rows_imported, report.rows_unchanged, report.rows_repeated, report.events_written) == (3, 0, 1, 3)
    assert dict(report.quarantined) == {"changes the plan (start, length, category or provider) of a visit already stored": 1}
    assert store.events_by_topic() == {"ersattning.domain:Visit.Planned": 2, "ersattning.domain:Visit.Performed": 1}
    assert sorted(projection.load(store).visits["status"].tolist()) == ["performed", "planned"]


def test_chunks_from_another_reader_go_through_the_same_loop(tmp_path: Path) -> None:
    from ersattning.ingest.readers import read_rows
    from ersattning.ingest.report import Quarantine
    from ersattning.ingest.visits import import_visit_chunks

    path = tmp_path / "v.csv"
    path.write_text(HEADER + "\n".join(_visit(i, i // 10, f"{8 + i % 10:02d}:00", f"{8 + i % 10:02d}:30", f"S{i % 10}") for i in range(50)) + "\n")
    a = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    b = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    import_visits(a, [path], Mapping(), P, ImportOptions(chunk_rows=7))
    q = Quarantine(None)
    report = import_visit_chunks(b, read_rows(path, chunk_rows=7), Mapping(), P, quarantine=q)
    assert (report.rows_read, report.rows_imported, report.events_written) == (50, 50, 50)
    pd.testing.assert_frame_equal(_frame(a), _frame(b))


def test_a_csv_chunk_knows_how_much_of_the_file_is_behind_it(tmp_path: Path) -> None:
    from ersattning.ingest.readers import read_rows

    path = tmp_path / "big.csv"
    n = 120_000
    path.write_text(HEADER + "".join(_visit(i, i // 400, "08:00", "08:20", f"Staff member {i % 900}") + "\n" for i in range(n)))
    seen = 0
    for chunk in read_rows(path, chunk_rows=10_000):
        seen += len(chunk)
        # the share of rows handed out, give or take the reader's one-block read-ahead (1 MB of ~12 MB)
        assert chunk.fraction == pytest.approx(seen / n, abs=0.1)
    assert chunk.fraction == 1.0


# -- times read on the fast path are read as pandas reads them --------------------------------------


def _pandas_times(values: list[str | None], fmt: str | None, zone: str) -> np.ndarray:
    """The general path alone: pandas parses, then the local time is placed in its zone (NaT over DST gaps and overlaps)."""
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
    for i, v in enumerate(values):
        if v is None:
            continue
        t = pd.to_datetime(pd.Series([v]), format=fmt or "ISO8601", errors="coerce")
        if t.isna().all():
            continue
        local = pd.DatetimeIndex(t).tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        out[i] = local.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")[0]
    return out


_digits2 = st.integers(0, 99).map(lambda v: f"{v:02d}")
_stamp = st.builds(
    lambda y, mo, d, h, mi, sec, sep: f"{y:04d}-{mo}-{d} {h}:{mi}{sec}".replace(" ", sep, 1),
    st.sampled_from([1677, 1678, 1999, 2024, 2261, 2262]),
    st.one_of(st.sampled_from(["01", "02", "03", "10", "12"]), _digits2),
    st.one_of(st.sampled_from(["01", "28", "29", "30", "31", "27"]), _digits2),
    st.one_of(st.sampled_from(["00", "02", "03", "23"]), _digits2),
    _digits2,
    st.one_of(st.just(""), _digits2.map(lambda v: ":" + v)),
    st.sampled_from([" ", "T"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.one_of(st.none(), _stamp, st.sampled_from(["2024-03-31 02:30", "2024-10-27 02:30", "2024-3-5 7:00", "2024-02-29T23:59:59", "x"])), min_size=1, max_size=40),
       fmt=st.sampled_from([None, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]))
def test_fixed_width_times_read_exactly_as_pandas_reads_them(values: list[str | None], fmt: str | None) -> None:
    mapping = Mapping(date_format=fmt)
    got, bad = parse_times(pa.array(values, pa.string()), mapping)
    expected = _pandas_times(values, fmt, mapping.timezone)
    assert np.array_equal(got, expected, equal_nan=True)
    assert bad.tolist() == [v is not None and np.isnat(e) for v, e in zip(values, expected, strict=True)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("ab1 \t\u00a0å\u2003\x1f;")), max_size=6)), min_size=1, max_size=30))
def test_stripping_a_column_is_arrows_trim_with_empty_cells_null(values: list[str | None]) -> None:
    from ersattning.ingest.cells import stripped

    arr = pa.array(values, pa.string())
    expected = pc_trim(values)  # Arrow's trim on every cell, then empty cells null
    assert stripped(arr).to_pylist() == expected
    assert stripped(arr.slice(1)).to_pylist() == expected[1:]


def pc_trim(values: list[str | None]) -> list[str | None]:
    import pyarrow.compute as pc

    out = pc.utf8_trim_whitespace(pa.array(values, pa.string())).to_pylist()
    return [v or None for v in out]


def test_the_visit_import_builds_exactly_each_visit_events_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field added to (or dropped from) a visit event fails when the importer is imported, not in a later import."""
    from ersattning.ingest import visits

    visits._check_event_fields()  # what importing the module did
    monkeypatch.setitem(visits.EVENT_FIELDS, Visit.Corrected, frozenset({"timestamp", "actual_start", "actual_end"}))
    with pytest.raises(TypeError, match="Corrected has fields"):
        visits._check_event_fields()

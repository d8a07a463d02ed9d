"""Real exports import right (issue 11, the import side): schedules as performed, visit keys that never merge
distinct rows, the staff-overlap check against the store, dry runs, empty files, DST, and a planning export
as a golden test through the command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.ingest.cells import parse_local_times
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.readers import ReadError, read_rows
from ersattning.ingest.report import ImportError_
from ersattning.ingest.visits import AS_PLANNED, REPEATED_HOUR, import_visits
from ersattning.store import open_store
from tests.test_cli import run
from tests.test_import import CANONICAL as HEADER
from tests.test_import import P, _canonical, _store

DATA = Path(__file__).parent / "data"
KEY = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
NO_ID = "recipient,provider,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"


def _no_id(tmp_path: Path, rows: list[str], name: str = "n.csv") -> Path:
    path = tmp_path / name
    path.write_text(NO_ID + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


# -- 1. schedules as performed ---------------------------------------------------------------------------------

SCHEDULE = "Brukare,Start,Slut,Personal\nR1,2024-03-04 08:00,2024-03-04 08:30,S1\nR2,2024-03-04 09:00,2024-03-04 09:45,S1\n"


def test_one_source_column_feeds_several_canonical_columns(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(SCHEDULE)
    mapping = Mapping.model_validate(
        {
            "columns": {"Brukare": "recipient", "Start": ["planned_start", "actual_start"], "Slut": ["planned_end", "actual_end"], "Personal": "staff"},
            "defaults": {"status": "performed", "category": "personal_care", "provider": "P1"},
        }
    )
    assert mapping.columns["Start"] == "planned_start" and mapping.copies == {"planned_start": ["actual_start"], "planned_end": ["actual_end"]}
    report = import_visits(_store(tmp_path), [tmp_path / "s.csv"], mapping, P)
    assert report.rows_imported == 2 and not report.quarantined
    visits = projection.load(open_store(f"sqlite:///{tmp_path / 's.db'}")).visits
    assert sorted(visits["actual_minutes"].tolist()) == [30.0, 45.0] and set(visits["status"]) == {"performed"}


def test_a_column_cannot_be_copied_to_an_unknown_column() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        Mapping.model_validate({"columns": {"Start": ["planned_start", "nope"]}})


def test_performed_as_planned_says_the_export_is_what_was_performed(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(SCHEDULE + "R3,2024-03-04 10:00,2024-03-04 10:20,\n")  # no staff: performed needs staff
    columns = {"Brukare": "recipient", "Start": "planned_start", "Slut": "planned_end", "Personal": "staff"}
    defaults = {"category": "personal_care", "provider": "P1"}
    plain = import_visits(_store(tmp_path, "plain.db"), [tmp_path / "s.csv"], Mapping(columns=columns, defaults=defaults), P)
    assert plain.rows_imported == 3 and not plain.notes  # without it: planned visits, nothing performed
    mapping = Mapping(columns=columns, defaults=defaults, performed_as_planned=True)
    report = import_visits(_store(tmp_path), [tmp_path / "s.csv"], mapping, P)
    assert report.rows_imported == 2 and dict(report.quarantined) == {"performed without staff": 1}
    assert report.notes[AS_PLANNED] == 2 and any(AS_PLANNED in line for line in report.summary())
    visits = projection.load(open_store(f"sqlite:///{tmp_path / 's.db'}")).visits
    assert sorted(visits["actual_minutes"].tolist()) == [30.0, 45.0] and set(visits["status"]) == {"performed"}


def test_performed_as_planned_keeps_registered_times_and_cancellations(tmp_path: Path) -> None:
    rows = [
        "R1,P1,personal_care,2024-03-04 08:00,2024-03-04 08:30,2024-03-04 08:05,2024-03-04 08:25,S1,",
        "R2,P1,personal_care,2024-03-04 09:00,2024-03-04 09:30,,,,cancelled_by_recipient",
    ]
    report = import_visits(_store(tmp_path), [_no_id(tmp_path, rows)], Mapping(performed_as_planned=True), P)
    assert report.rows_imported == 2 and report.notes[AS_PLANNED] == 0
    visits = projection.load(open_store(f"sqlite:///{tmp_path / 's.db'}")).visits.sort_values("planned_start")
    assert visits["status"].tolist() == ["performed", "cancelled"] and visits["actual_minutes"].tolist()[0] == 20.0


# -- 2. visit keys -----------------------------------------------------------------------------------------------

MAIN_AND_SECOND = [
    "R1,P1,personal_care,2024-03-04 08:00,2024-03-04 09:00,2024-03-04 08:00,2024-03-04 09:00,S1,performed",
    "R1,P1,personal_care,2024-03-04 08:00,2024-03-04 08:30,2024-03-04 08:00,2024-03-04 08:30,S2,performed",  # second staff's own row
    "R2,P1,cleaning,2024-03-04 10:00,2024-03-04 11:00,2024-03-04 10:00,2024-03-04 11:00,S3,performed",
    "R2,P1,cleaning,2024-03-04 10:00,2024-03-04 11:00,2024-03-04 10:00,2024-03-04 11:00,S4,performed",  # two staff, together
]


def test_rows_that_differ_in_staff_are_distinct_visits(tmp_path: Path) -> None:
    store = _store(tmp_path)
    report = import_visits(store, [_no_id(tmp_path, MAIN_AND_SECOND)], Mapping(), P)
    assert (report.rows_imported, report.rows_unchanged, report.rows_repeated) == (4, 0, 0)
    visits = projection.load(store).visits
    assert len(visits) == 4 and visits["actual_minutes"].sum() == 60 + 30 + 60 + 60
    again = import_visits(store, [_no_id(tmp_path, MAIN_AND_SECOND)], Mapping(), P)
    assert (again.rows_imported, again.rows_unchanged, again.rows_repeated, again.events_written) == (0, 4, 0, 0)


def test_identical_rows_are_repeated_in_the_file_not_already_in_the_store(tmp_path: Path) -> None:
    rows = [MAIN_AND_SECOND[0], MAIN_AND_SECOND[0], MAIN_AND_SECOND[2], MAIN_AND_SECOND[2]]
    for chunk_rows in (1, 4):
        store = _store(tmp_path, f"c{chunk_rows}.db")
        report = import_visits(store, [_no_id(tmp_path, rows)], Mapping(), P, ImportOptions(chunk_rows=chunk_rows))
        assert (report.rows_imported, report.rows_unchanged, report.rows_repeated) == (2, 0, 2), chunk_rows
        assert "already in the store 0, repeated in the files 2" in report.summary()[0]
        assert len(projection.load(store).visits) == 2


def test_the_summary_on_an_empty_store_never_says_already_in_the_store(tmp_path: Path) -> None:
    path = _no_id(tmp_path, MAIN_AND_SECOND)
    done = run("import", str(path), "--store", f"sqlite:///{tmp_path / 'c.db'}", env=KEY)
    assert done.returncode == 0, done.stderr
    assert "imported 4, already in the store 0," in done.stdout


_STAFF = st.sampled_from(["", "S1", "S2", "S1|S2"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    plans=st.lists(st.tuples(st.sampled_from(["R1", "R2"]), st.sampled_from(["P1", "P2"]), st.sampled_from(["personal_care", "cleaning"]), st.integers(0, 2), st.sampled_from([20, 30]), _STAFF), min_size=1, max_size=12, unique=True),
    chunk_rows=st.integers(1, 13),
)
def test_n_distinct_rows_give_n_visits_for_any_chunking(tmp_path_factory: pytest.TempPathFactory, plans: list[tuple[str, str, str, int, int, str]], chunk_rows: int) -> None:
    """Planned rows (no visit id) that differ in anything of their plan are as many visits, however chunked."""
    base = tmp_path_factory.mktemp("n")
    rows = [f"{r},{p},{c},2024-03-04 {8 + h:02d}:00,2024-03-04 {8 + h:02d}:{m},,,{s},planned" for r, p, c, h, m, s in plans]
    store = _store(base)
    report = import_visits(store, [_no_id(base, rows)], Mapping(), P, ImportOptions(chunk_rows=chunk_rows))
    assert (report.rows_imported, report.rows_unchanged, report.rows_repeated, sum(report.quarantined.values())) == (len(rows), 0, 0, 0)
    assert len(projection.load(store).visits) == len(rows)


# -- 3. staff overlaps against the store ------------------------------------------------------------------------


def test_two_imports_of_overlapping_files_do_not_double_book_a_staff_member(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = ["R1,P1,V1,personal_care,2024-03-04 08:00,2024-03-04 09:00,2024-03-04 08:00,2024-03-04 09:00,S1,performed"]
    assert import_visits(store, [_canonical(tmp_path, first, "a.csv")], Mapping(), P).rows_imported == 1
    second = [
        "R2,P1,V2,personal_care,2024-03-04 08:30,2024-03-04 09:30,2024-03-04 08:30,2024-03-04 09:30,S1,performed",  # S1 is at R1 then
        "R2,P1,V3,personal_care,2024-03-04 08:30,2024-03-04 09:30,2024-03-04 08:30,2024-03-04 09:30,S2,performed",  # another staff member
        "R2,P1,V4,personal_care,2024-03-04 09:40,2024-03-04 10:00,2024-03-04 09:40,2024-03-04 10:00,S1|S3,performed",  # S1 free again
        "R3,P1,V5,personal_care,2024-03-04 07:30,2024-03-04 08:30,2024-03-04 07:30,2024-03-04 08:30,S3|S1,performed",  # S1 as second staff
    ]
    report = import_visits(store, [_canonical(tmp_path, second, "b.csv")], Mapping(), P)
    assert report.rows_imported == 2 and dict(report.quarantined) == {"overlaps another visit of the same staff member": 2}
    # the stored visit read again is not an overlap with itself, and a corrected one neither
    again = import_visits(store, [_canonical(tmp_path, [first[0].replace("09:00,S1", "08:55,S1")], "c.csv")], Mapping(), P)
    assert again.rows_imported == 1 and not again.quarantined


def test_outcomes_of_stored_plans_are_checked_against_stored_performed_visits(tmp_path: Path) -> None:
    store = _store(tmp_path)
    plans = [
        "R1,P1,V1,personal_care,2024-03-04 08:00,2024-03-04 09:00,,,,planned",
        "R2,P1,V2,personal_care,2024-03-04 08:30,2024-03-04 09:30,,,,planned",
    ]
    assert import_visits(store, [_canonical(tmp_path, plans, "plans.csv")], Mapping(), P).rows_imported == 2
    one = ["R1,P1,V1,personal_care,2024-03-04 08:00,2024-03-04 09:00,2024-03-04 08:00,2024-03-04 09:00,S1,performed"]
    assert import_visits(store, [_canonical(tmp_path, one, "one.csv")], Mapping(), P).rows_imported == 1
    other = ["R2,P1,V2,personal_care,2024-03-04 08:30,2024-03-04 09:30,2024-03-04 08:30,2024-03-04 09:30,S1,performed"]
    report = import_visits(store, [_canonical(tmp_path, other, "other.csv")], Mapping(), P)
    assert report.rows_imported == 0 and dict(report.quarantined) == {"overlaps another visit of the same staff member": 1}


# -- 4. dry runs, empty files, DST, messages --------------------------------------------------------------------


def test_a_dry_run_creates_no_store(tmp_path: Path) -> None:
    path = _canonical(tmp_path, ["R1,P1,V1,personal_care,2024-03-04 08:00,2024-03-04 08:30,,,,planned"])
    done = run("import", str(path), "--store", f"sqlite:///{tmp_path / 'new.db'}", "--dry-run", env=KEY)
    assert done.returncode == 0, done.stderr
    assert "imported 1" in done.stdout and "dry run: nothing was written" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.csv"]


def test_a_dry_run_changes_nothing_beside_an_existing_store(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    first = _canonical(tmp_path, ["R1,P1,V1,personal_care,2024-03-04 08:00,2024-03-04 08:30,,,,planned"], "a.csv")
    assert run("import", str(first), "--store", url, env=KEY).returncode == 0
    more = _canonical(tmp_path, ["R1,P1,V2,personal_care,2024-03-05 08:00,2024-03-05 08:30,,,,planned"], "b.csv")
    assert run("import", str(more), "--store", url, env=KEY).returncode == 0  # the cache beside the store is now behind it

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}

    before = snapshot()
    third = _canonical(tmp_path, ["R1,P1,V3,personal_care,2024-03-06 08:00,2024-03-06 08:30,,,,planned", "R1,P1,V1,personal_care,2024-03-04 08:00,2024-03-04 08:30,,,,planned"], "c.csv")
    before["c.csv"] = third.read_bytes()
    done = run("import", str(third), "--store", url, "--dry-run", env=KEY)
    assert done.returncode == 0, done.stderr
    assert "imported 1, already in the store 1" in done.stdout
    assert snapshot() == before


@pytest.mark.parametrize("text", ["recipient,provider", "recipient,provider\n", "a;b;c\r\n"], ids=["no line break", "header only", "other columns"])
@pytest.mark.parametrize("strict", [False, True])
def test_missing_required_columns_are_an_error_in_a_file_without_rows(tmp_path: Path, text: str, strict: bool) -> None:
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(ImportError_, match=r"e\.csv: no column for .*planned_start.*--mapping"):
        import_visits(_store(tmp_path), [path], Mapping(), P, ImportOptions(strict=strict))
    done = run("import", str(path), "--store", f"sqlite:///{tmp_path / 'c.db'}", *(["--strict"] if strict else []), env=KEY)
    assert done.returncode != 0 and "no column for" in done.stderr and "0 rows" not in done.stdout


@pytest.mark.parametrize(("kind", "required"), [("decisions", "recipient, decision_id"), ("stays", "recipient, kind, start"), ("events", "case, activity, timestamp"), ("providers", "code, name, ownership")])
@pytest.mark.parametrize("text", ["foo,bar", "foo,bar\n"], ids=["no line break", "header only"])
def test_every_kind_refuses_a_file_without_rows_and_without_its_columns(tmp_path: Path, kind: str, required: str, text: str) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    for strict in ([], ["--strict"]):
        done = run("import", str(path), "--kind", kind, "--store", f"sqlite:///{tmp_path / 'c.db'}", *strict, env=KEY)
        assert done.returncode == 2, done.stdout
        assert f"{kind}.csv: no column for {required}" in done.stderr and "rows read" not in done.stdout


def test_a_header_with_the_required_columns_and_no_rows_imports_nothing(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER)
    report = import_visits(_store(tmp_path), [path], Mapping(), P)
    assert (report.rows_read, report.rows_imported, report.events_written) == (0, 0, 0)


def test_the_repeated_autumn_hour_is_read_by_one_rule_and_counted(tmp_path: Path) -> None:
    rows = [
        # 02:10 to 02:40 in the repeated hour: both the first occurrence (00:10-00:40 UTC)
        "R1,P1,personal_care,2024-10-27 02:10,2024-10-27 02:40,2024-10-27 02:10,2024-10-27 02:40,S1,performed",
        # 02:50 to 02:20: the end only exists the second time (01:20 UTC), 30 minutes after the start (00:50 UTC)
        "R2,P1,personal_care,2024-10-27 02:50,2024-10-27 02:20,2024-10-27 02:50,2024-10-27 02:20,S2,performed",
        # an ordinary time that day
        "R3,P1,personal_care,2024-10-27 09:00,2024-10-27 09:30,,,,planned",
    ]
    store = _store(tmp_path)
    report = import_visits(store, [_no_id(tmp_path, rows)], Mapping(), P)
    assert report.rows_imported == 3 and not report.quarantined
    assert report.notes[REPEATED_HOUR] == 2 and any("repeated autumn hour" in line for line in report.summary())
    visits = projection.load(store).visits.sort_values("planned_start")
    assert visits["actual_minutes"].tolist()[:2] == [30.0, 30.0]
    assert visits["planned_minutes"].tolist() == [30, 30, 30]


def test_local_times_in_the_repeated_hour_read_as_their_first_occurrence() -> None:
    import pyarrow as pa

    got, bad, twice = parse_local_times(pa.array(["2024-10-27 02:30", "2024-10-27 03:30", "2024-03-31 02:30", "2024-10-27T02:30:00+01:00"]), Mapping())
    assert got[:2].tolist() == [datetime(2024, 10, 27, 0, 30), datetime(2024, 10, 27, 2, 30)]  # UTC: +02:00 first, then +01:00
    assert bad.tolist() == [False, False, True, False] and twice.tolist() == [True, False, False, False]
    assert got[3] == np.datetime64(datetime(2024, 10, 27, 1, 30).replace(tzinfo=None))  # an offset in the data decides


def test_a_negative_duration_is_reported_as_such(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("recipient,provider,category,planned_start,planned_duration\nR1,P1,cleaning,2024-03-04 08:00,-30\nR1,P1,cleaning,2024-03-05 08:00,0:30\nR1,P1,cleaning,2024-03-06 08:00,45\n")
    report = import_visits(_store(tmp_path), [path], Mapping(units={"planned_duration": "minutes"}), P)
    assert dict(report.quarantined) == {"negative duration in planned_duration": 1, "ambiguous unit in planned_duration: expected minutes": 1}


def test_error_hints_name_real_options(tmp_path: Path) -> None:
    odd = tmp_path / "v.xlsx"
    odd.write_text("x")
    with pytest.raises(ReadError, match="rename the file") as e:
        list(read_rows(odd))
    assert "kind=" not in str(e.value)
    late = tmp_path / "late.csv"
    late.write_bytes(("Brukare;Personal\n" + "B1;Anna\n" * 9000).encode() + "B2;Örjan\n".encode("cp1252"))
    done = run("import", str(late), "--store", f"sqlite:///{tmp_path / 'c.db'}", env=KEY)
    assert done.returncode != 0 and "encoding: in the --mapping file" in done.stderr and "encoding=" not in done.stderr


# -- 5. a planning export, end to end ---------------------------------------------------------------------------

SCENARIO = """
name: golden
period: {start: 2024-03, end: 2024-03}
baseline: per_minute
providers: {default_ownership: municipal}  # the export names its provider but not its ownership
models:
  - name: per_minute
    kind: performed_time
    params:
      rates: {personal_care: 485, service: 485, private_personal_care: 516, private_service: 516}
admin:
  hourly_cost: 420
  minutes_per_act: {registration: 0.5, correction: 10, invoice_line: 0.5, reconciliation: 15, decision_follow_up: 60}
"""
# By hand, from tests/data/planning_export.csv (one day, every row performed as planned, municipal rates 485 SEK/h):
# 1661: Anna 08:00-09:00 (60 min) and Bertil's Dubbelbemanning row 08:00-09:00 (60 min): 2 × 485.00 = 970.00
# 1702: Anna and Cecilia 09:15-09:55 (40 min each): 2 × 323.33 (40 × 485 / 60 = 323.333…)
# 1815: Bertil 11:00-11:20 (20 min): 161.67;  1661: Anna 13:00-13:30 (30 min): 242.50
# the two EGEN RAST rows (Anna 10:00, Bertil 12:00) are breaks without a client: skipped, not paid
MINUTES = 60 + 60 + 40 + 40 + 20 + 30
EXPECTED_SEK = round(MINUTES * 485 / 60, 2)  # 2,020.83 (at private rates it would be 2,150.00)


@pytest.mark.parametrize("variant", ["as mapped", "no row id", "columns as lists"])
def test_a_planning_export_settles_by_hand(tmp_path: Path, variant: str) -> None:
    assert EXPECTED_SEK == 2020.83 and 2 * 485.00 == 970.00
    mapping_text = (DATA / "planning_export.mapping.yaml").read_text(encoding="utf-8")
    if variant == "no row id":  # the fallback key (the plan and the staff) keeps every row apart as well
        mapping_text = mapping_text.replace("  Id: visit_id\n", "")
    if variant == "columns as lists":
        mapping_text = (
            mapping_text.replace("StartTime: planned_start", "StartTime: [planned_start, actual_start]")
            .replace("EndTime: planned_end", "EndTime: [planned_end, actual_end]")
            .replace("performed_as_planned: true", "defaults: {status: performed}")
        )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(mapping_text, encoding="utf-8")
    db = tmp_path / "s.db"
    done = run("import", str(DATA / "planning_export.csv"), "--mapping", str(mapping), "--store", f"sqlite:///{db}", env=KEY)
    assert done.returncode == 0, done.stderr
    assert "rows read 8, imported 6, already in the store 0, skipped 2, quarantined 0; 6 events written" in done.stdout
    assert "skipped (caregiver's own break): 2" in done.stdout
    assert ("performed as planned (the mapping's performed_as_planned: rows without a status or registered times): 6" in done.stdout) == (variant != "columns as lists")
    scenario = tmp_path / "sc.yaml"
    scenario.write_text(SCENARIO)
    # three clients: a region of fewer than five persons, so every figure is suppressed unless asked not to
    hidden = json.loads(run("compare", str(scenario), "--store", f"sqlite:///{db}", "--format", "json", env=KEY).stdout)
    assert hidden["models"][0]["cost_sek"] is None and hidden["suppression"]["region_suppressed"]
    out = run("compare", str(scenario), "--store", f"sqlite:///{db}", "--format", "json", "--no-suppress", env=KEY)
    assert out.returncode == 0, out.stderr
    assert "settled as municipal" in out.stderr  # the scenario's assumption, said aloud
    doc = json.loads(out.stdout)
    (model,) = doc["models"]
    assert model["cost_sek"] == pytest.approx(EXPECTED_SEK, abs=0.005)
    visits = projection.load(open_store(f"sqlite:///{db}", create=False)).visits
    assert len(visits) == 6 and visits["actual_minutes"].sum() == MINUTES
    assert sorted(visits.groupby("recipient", observed=True)["actual_minutes"].sum().tolist()) == [20.0, 80.0, 150.0]

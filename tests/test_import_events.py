"""Importing event logs (--kind events): golden XES, CSV and Parquet logs through the importer, pairing, quarantine."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ersattning import projection
from ersattning.domain import stable_id
from ersattning.ingest.events import import_events
from ersattning.ingest.mapping import Mapping, load_mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.report import ImportError_
from ersattning.privacy import Pseudonymiser
from ersattning.store import Store, open_store
from tests.test_cli import run

DATA = Path(__file__).parent / "data"
KEY = b"k" * 32
P = Pseudonymiser(KEY)
COLUMNS = ["recipient", "provider", "category", "status", "planned_start", "planned_minutes", "actual_start", "actual_minutes", "staff1", "staff2", "cancelled_by", "notice_minutes"]


def _store(tmp_path: Path, name: str = "s.db") -> Store:
    return open_store(f"sqlite:///{tmp_path / name}")


def _rid(source_id: str) -> str:
    return stable_id("recipient", P.one(source_id)).hex


def _visits(store: Store) -> list[tuple]:
    """The stored visits, ordered by planned start, as plain values (times local wall clock, as the projection gives them)."""
    v = projection.load(store).visits.sort_values("planned_start", ignore_index=True)[COLUMNS]
    out = []
    for row in v.itertuples(index=False):
        out.append(tuple(None if (not isinstance(x, str) and pd.isna(x)) else (str(x) if isinstance(x, pd.Timestamp) else x) for x in row))
    return out


def _quarantined(path: Path) -> list[tuple[str, str]]:
    return [(r["line"], r["reason"]) for r in csv.DictReader(path.open(encoding="utf-8"))]


def test_xes_event_log(tmp_path: Path) -> None:
    store = _store(tmp_path)
    q = tmp_path / "q.csv"
    report = import_events(store, [DATA / "events.xes"], load_mapping(DATA / "events_xes.mapping.yaml"), P, ImportOptions(quarantine=q))
    assert (report.rows_read, report.visits_made, report.rows_imported, report.events_written) == (12, 5, 5, 5)  # one event a new visit: plan and outcome together
    asa, orjan, anna = P.one("Åsa K"), P.one("Örjan L"), P.one("Lind, Anna")
    b1, b2 = _rid("B2001"), _rid("B2002")
    assert _visits(store) == [
        # schedule 08:00 (30 min), start 08:04, complete 08:36
        (b1, "Hemtjänst Söder", "personal_care", "performed", "2024-03-04 08:00:00", 30, "2024-03-04 08:04:00", 32.0, asa, None, None, None),
        # a complete with 45 minutes at 14:20: performed 13:35–14:20, planned as performed (no schedule)
        (b1, "Hemtjänst Söder", "cleaning", "performed", "2024-03-05 13:35:00", 45, "2024-03-05 13:35:00", 45.0, orjan, None, None, None),
        # withdrawn on 5 March 16:12 (listed before its schedule, as a time-sorted log has it) for 6 March 10:00: 17 h 48 min notice
        (b1, "Hemtjänst Söder", "shopping", "cancelled", "2024-03-06 10:00:00", 40, None, None, None, None, "recipient", 1068.0),
        # started 09:00, aborted 09:10: cancelled by the provider, planned as registered (10 min)
        (b2, "Omsorg Norr AB", "laundry", "cancelled", "2024-03-07 09:00:00", 10, None, None, None, None, "provider", -10.0),
        # the DST day (+02:00): started 11:58 before its schedule at 12:00 (30 min), completed 12:40
        (b2, "Omsorg Norr AB", "other_service", "performed", "2024-03-31 12:00:00", 30, "2024-03-31 11:58:00", 42.0, anna, None, None, None),
    ]
    # the Inköp complete on 9 March has neither a start nor a duration: quarantined at its <event> line
    assert _quarantined(q) == [("51", "complete without a start and without a duration")]
    assert dict(report.quarantined) == {"complete without a start and without a duration": 1}


def test_the_process_mining_log_of_the_readers_tests(tmp_path: Path) -> None:
    store = _store(tmp_path)
    q = tmp_path / "q.csv"
    report = import_events(store, [DATA / "log.xes"], load_mapping(DATA / "events_xes.mapping.yaml"), P, ImportOptions(quarantine=q))
    assert (report.rows_read, report.rows_imported) == (5, 3)
    asa, orjan, anna = P.one("Åsa K"), P.one("Örjan L"), P.one("Lind, Anna")
    assert _visits(store) == [
        (_rid("B1001"), "Hemtjänst Söder", "personal_care", "performed", "2024-03-04 08:03:00", 28, "2024-03-04 08:03:00", 28.0, asa, None, None, None),
        # the second staff member is in a list attribute, which the reader skips: one staff
        (_rid("B1001"), "Hemtjänst Söder", "cleaning", "performed", "2024-03-05 13:10:00", 70, "2024-03-05 13:10:00", 70.0, orjan, None, None, None),
        (_rid("B1002"), "Omsorg Norr AB", "other_service", "performed", "2024-03-31 12:02:00", 38, "2024-03-31 12:02:00", 38.0, anna, None, None, None),
    ]
    # an ate_abort with nothing before it has no planned time
    assert _quarantined(q) == [("60", "abort without a schedule or a start before it")]


def test_csv_with_process_mining_column_names(tmp_path: Path) -> None:
    store = _store(tmp_path)
    report = import_events(store, [DATA / "events_pm.csv"], load_mapping(DATA / "events_pm.mapping.yaml"), P, ImportOptions(strict=True))  # nothing to object to
    assert (report.rows_read, report.rows_imported, sum(report.quarantined.values())) == (10, 5, 0)
    assert dict(report.skipped) == {"staff break": 1}
    s17, s22 = P.one("S-17"), P.one("S-22")
    b1, b2 = _rid("B3001"), _rid("B3002")
    assert _visits(store) == [
        # start (line 2) and complete (line 6) with other events between them; local times, no offset
        (b1, "Hemtjänst Söder", "personal_care", "performed", "2024-03-04 07:55:00", 30, "2024-03-04 07:55:00", 30.0, s17, None, None, None),
        (b1, "Hemtjänst Söder", "cleaning", "performed", "2024-03-04 10:00:00", 60, "2024-03-04 10:00:00", 60.0, s22, None, None, None),
        (b2, "Hemtjänst Söder", "shopping", "performed", "2024-03-05 09:00:00", 45, "2024-03-05 09:05:00", 45.0, s17, None, None, None),
        # scheduled for 6 March 08:00, withdrawn 5 March 18:00: 14 h notice
        (b2, "Hemtjänst Söder", "personal_care", "cancelled", "2024-03-06 08:00:00", 30, None, None, None, None, "recipient", 840.0),
        # no lifecycle: a complete, 40 minutes ending 12:40; two staff in one resource cell
        (b2, "Hemtjänst Söder", "other_service", "performed", "2024-03-31 12:00:00", 40, "2024-03-31 12:00:00", 40.0, s17, s22, None, None),
    ]


def test_parquet_with_one_case_per_visit(tmp_path: Path) -> None:
    store = _store(tmp_path)
    report = import_events(store, [DATA / "events.parquet"], load_mapping(DATA / "events_parquet.mapping.yaml"), P)
    assert (report.rows_read, report.rows_imported, sum(report.quarantined.values())) == (8, 4, 0)
    s17, s22, anna = P.one("S-17"), P.one("S-22"), P.one("Lind, Anna")
    assert _visits(store) == [
        (_rid("R-001"), "Hemtjänst Söder", "personal_care", "performed", "2024-03-04 08:00:00", 30, "2024-03-04 08:02:00", 31.0, s17, None, None, None),
        # withdrawn 09:30 for 10:00; the mapping says withdrawals in this log are the provider's
        (_rid("R-002"), "Hemtjänst Söder", "shopping", "cancelled", "2024-03-05 10:00:00", 60, None, None, None, None, "provider", 30.0),
        (_rid("R-001"), "Hemtjänst Söder", "cleaning", "performed", "2024-03-05 13:00:00", 75, "2024-03-05 13:00:00", 75.0, s17, s22, None, None),
        (_rid("R-003"), "Hemtjänst Söder", "personal_care", "performed", "2024-03-31 12:00:00", 45, "2024-03-31 12:00:00", 45.0, anna, None, None, None),
    ]


GOLDEN = [("events.xes", "events_xes.mapping.yaml"), ("events_pm.csv", "events_pm.mapping.yaml"), ("events.parquet", "events_parquet.mapping.yaml")]


@pytest.mark.parametrize(("name", "mapping"), GOLDEN)
def test_importing_twice_is_importing_once_and_chunks_do_not_matter(tmp_path: Path, name: str, mapping: str) -> None:
    m = load_mapping(DATA / mapping)
    once = _store(tmp_path, "once.db")
    import_events(once, [DATA / name], m, P)
    expected = _visits(once)
    position = once.position()
    again = import_events(once, [DATA / name], m, P)
    assert (again.rows_imported, again.rows_unchanged, again.events_written) == (0, len(expected), 0)
    assert once.position() == position and _visits(once) == expected
    for chunk_rows in (1, 2, 3):  # pairs spanning chunks still pair
        small = _store(tmp_path, f"chunks{chunk_rows}.db")
        import_events(small, [DATA / name], m, P, ImportOptions(chunk_rows=chunk_rows))
        assert _visits(small) == expected, chunk_rows


HEADER = "case,activity,lifecycle,timestamp,resource,provider,duration\n"
UNPAIRED = [
    "R1,Omvårdnad,start,2024-03-04 08:00,S1,P1,",  # 2: another start follows
    "R1,Omvårdnad,start,2024-03-04 09:00,S1,P1,",  # 3
    "R1,Omvårdnad,complete,2024-03-04 09:30,S1,P1,",  # 4: pairs with line 3
    "R1,Städ,complete,2024-03-04 10:00,S2,P1,",  # 5: no start, no duration
    "R1,Inköp,start,2024-03-04 11:00,S3,P1,",  # 6: never completed
    "R2,Omvårdnad,withdraw,2024-03-04 07:00,S1,P1,",  # 7: no schedule next to it
    "R2,Tvätt,complete,2024-03-04 12:00,S4,P1,30",  # 8: a visit 11:30–12:00
    "R2,Tvätt,start,2024-03-04 11:00,S4,P1,",  # 9: earlier than line 8
    "R2,Omvårdnad,suspend,2024-03-04 13:00,S1,P1,",  # 10: not a supported transition
    "R2,Omvårdnad,schedule,2024-03-05 08:00,S5,P1,",  # 11: only planned, without a length
    "R3,Städ,start,2024-03-05 08:00,,P1,",  # 12 and 13: a pair without staff, rejected as a visit
    "R3,Städ,complete,2024-03-05 09:00,,P1,",
]


def _events_csv(tmp_path: Path, rows: list[str], name: str = "e.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_unpaired_events_are_quarantined_with_their_lines(tmp_path: Path) -> None:
    store = _store(tmp_path)
    q = tmp_path / "q.csv"
    mapping = Mapping(units={"duration": "minutes"}, values={"category": {"Omvårdnad": "personal_care", "Städ": "cleaning", "Inköp": "shopping", "Tvätt": "laundry"}})
    src = _events_csv(tmp_path, UNPAIRED)
    report = import_events(store, [src], mapping, P, ImportOptions(quarantine=q))
    # events still open at the end of a chunk (lines 6, 7 and 11 here) are written when the file ends
    assert sorted(_quarantined(q), key=lambda r: int(r[0])) == [
        ("2", "start followed by another start (never completed)"),
        ("5", "complete without a start and without a duration"),
        ("6", "start never completed (no complete or abort after it)"),
        ("7", "withdraw without a schedule next to it (no planned time)"),
        ("9", "not in time order (earlier than a start, complete or abort before it of the same case, activity and resource)"),
        ("10", "lifecycle suspend is not one of ate_abort, complete, pi_abort, schedule, start, withdraw (map it under events: transitions:)"),
        ("11", "schedule without a duration and nothing registered (no planned length)"),
        ("12", "performed without staff"),
        ("13", "performed without staff"),
    ]
    rows = list(csv.DictReader(q.open(encoding="utf-8")))
    assert rows[0]["file"] == str(src) and (rows[0]["case"], rows[0]["activity"], rows[0]["timestamp"]) == ("R1", "Omvårdnad", "2024-03-04 08:00")
    assert (report.rows_read, report.rows_imported, sum(report.quarantined.values())) == (12, 2, 9)
    v = _visits(store)
    assert [(x[2], x[4], x[5]) for x in v] == [("personal_care", "2024-03-04 09:00:00", 30), ("laundry", "2024-03-04 11:30:00", 30)]
    # --strict: the first problem by line stops the import, nothing is written
    strict = _store(tmp_path, "strict.db")
    with pytest.raises(ImportError_, match=r"e\.csv:2: start followed by another start .*--strict: nothing was written"):
        import_events(strict, [src], mapping, P, ImportOptions(strict=True))
    assert strict.position() == 0
    # a problem the visit import finds (after pairing) also stops a strict import before anything is written
    late = _events_csv(tmp_path, ["R1,Omvårdnad,start,2024-03-04 09:00,S1,P1,", "R1,Omvårdnad,complete,2024-03-04 09:30,S1,P1,", *UNPAIRED[-2:]], "late.csv")
    with pytest.raises(ImportError_, match=r"late\.csv:4: performed without staff"):
        import_events(strict, [late], mapping, P, ImportOptions(strict=True, chunk_rows=2))
    assert strict.position() == 0


def test_missing_columns_and_undeclared_units_are_clear_errors(tmp_path: Path) -> None:
    store = _store(tmp_path)
    src = tmp_path / "e.csv"
    src.write_text("case,activity,when\nR1,Omvårdnad,2024-03-04 08:00\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=r"e\.csv: no column for timestamp"):
        import_events(store, [src], Mapping(), P)
    with pytest.raises(ImportError_, match=r"e\.csv: no column for recipient"):
        import_events(store, [src], Mapping.model_validate({"columns": {"when": "timestamp"}, "events": {"case": "visit"}}), P)
    with pytest.raises(ValueError, match="'colour' is not a canonical column"):
        Mapping.model_validate({"defaults": {"colour": "blue"}})
    src.write_text(HEADER + UNPAIRED[7] + "\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=r"the unit of duration is not declared"):
        import_events(store, [src], Mapping(), P)
    assert store.position() == 0


def test_outcomes_and_transitions_come_from_the_mapping(tmp_path: Path) -> None:
    rows = [
        "R1,Omvårdnad,planerad,2024-03-04 08:00,S1,P1,30",
        "R1,Omvårdnad,påbörjad,2024-03-04 08:05,S1,P1,",
        "R1,Omvårdnad,ate_abort,2024-03-04 08:20,S1,P1,",
    ]
    mapping = Mapping.model_validate(
        {
            "units": {"duration": "minutes"},
            "values": {"category": {"Omvårdnad": "personal_care"}},
            "events": {"transitions": {"planerad": "schedule", "påbörjad": "start"}, "outcomes": {"ate_abort": "performed"}},
        }
    )
    store = _store(tmp_path)
    import_events(store, [_events_csv(tmp_path, rows)], mapping, P)
    # the abort counted as performed: 08:05–08:20 against a 30-minute plan
    assert _visits(store) == [(_rid("R1"), "P1", "personal_care", "performed", "2024-03-04 08:00:00", 30, "2024-03-04 08:05:00", 15.0, P.one("S1"), None, None, None)]


def test_instants_need_a_length_from_the_mapping(tmp_path: Path) -> None:
    rows = ["R1,Tillsyn,,2024-03-04 22:00,S1,P1", "R1,Tillsyn,,2024-03-05 22:00,S1,P1"]
    path = tmp_path / "i.csv"
    path.write_text("case,activity,lifecycle,timestamp,resource,provider\n" + "\n".join(rows) + "\n", encoding="utf-8")
    values = {"category": {"Tillsyn": "other_service"}}
    report = import_events(_store(tmp_path), [path], Mapping(values=values), P)
    assert report.rows_imported == 0 and dict(report.quarantined) == {"complete without a start and without a duration": 2}
    store = _store(tmp_path, "instants.db")
    import_events(store, [path], Mapping.model_validate({"values": values, "events": {"instant_minutes": 5}}), P)
    assert [(x[4], x[5], x[7]) for x in _visits(store)] == [("2024-03-04 21:55:00", 5, 5.0), ("2024-03-05 21:55:00", 5, 5.0)]


def test_no_personnummer_from_an_event_log_reaches_the_store(tmp_path: Path) -> None:
    pnr, staff = "19121212-1212", "811228-9874"
    path = _events_csv(tmp_path, [f"{pnr},Omvårdnad,start,2024-03-04 08:00,{staff},P1,", f"{pnr},Omvårdnad,complete,2024-03-04 08:30,{staff},P1,"])
    store = _store(tmp_path)
    report = import_events(store, [path], Mapping(units={"duration": "minutes"}, values={"category": {"Omvårdnad": "personal_care"}}), P)
    assert report.rows_imported == 1 and {"case", "resource"} <= report.columns_with_personnummer
    store.close()
    blob = (tmp_path / "s.db").read_bytes()
    for form in (pnr, pnr.replace("-", ""), pnr[2:], staff, staff.replace("-", "")):
        assert form.encode() not in blob


def test_the_import_command_for_event_logs(tmp_path: Path) -> None:
    env = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    q = tmp_path / "q.csv"
    args = ["import", str(DATA / "events.xes"), "--kind", "events", "--mapping", str(DATA / "events_xes.mapping.yaml"), "--store", store]
    done = run(*args, "--quarantine", str(q), env=env)
    assert done.returncode == 3, done.stderr  # imported, some events rejected
    assert "events read 12, paired into 5 visits: imported 5, already in the store 0" in done.stdout
    assert "quarantined (complete without a start and without a duration): 1 events" in done.stdout
    assert f"rejected events written to {q}" in done.stdout and _quarantined(q) == [("51", "complete without a start and without a duration")]
    again = run(*args, env=env)
    assert again.returncode == 3 and "imported 0, already in the store 5" in again.stdout and "0 events written" in again.stdout
    strict = run(*args, "--strict", env=env)
    assert strict.returncode == 2 and "events.xes:51: complete without a start" in strict.stderr and "Traceback" not in strict.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: {minutes: duration}\nevents:\n  case: trace\n", encoding="utf-8")
    wrong = run("import", str(DATA / "events.xes"), "--kind", "events", "--mapping", str(bad), "--store", store, env=env)
    assert wrong.returncode == 2 and f"{bad}:3: events.case" in wrong.stderr and "Traceback" not in wrong.stderr
    v = projection.load(open_store(store, create=False)).visits
    assert len(v) == 5 and np.array_equal(np.sort(v["planned_minutes"].to_numpy()), [10, 30, 30, 40, 45])


def test_the_parquet_visit_file_through_the_visit_import(tmp_path: Path) -> None:
    from ersattning.ingest.visits import import_visits

    store = _store(tmp_path)
    report = import_visits(store, [DATA / "visits.parquet"], load_mapping(DATA / "visits_parquet.mapping.yaml"), P)
    assert (report.rows_read, report.rows_imported, report.events_written) == (4, 4, 4)  # planned only: nothing registered
    v = projection.load(store).visits.sort_values("planned_start", ignore_index=True)
    assert v["recipient"].tolist() == [_rid("R-001"), _rid("R-002"), _rid("R-001"), _rid("R-003")]
    # typed timestamps in the file's zone; 31 March is the first day of summer time (+02:00)
    assert v["planned_start"].astype(str).tolist() == ["2024-03-04 08:00:00", "2024-03-05 10:00:00", "2024-03-05 13:00:00", "2024-03-31 12:00:00"]
    assert v["planned_minutes"].tolist() == [30, 60, 75, 45]
    assert v["staff_planned"].tolist() == [1, 1, 2, 1]  # "S-17|S-22": two staff planned
    assert set(v["status"]) == {"planned"} and set(v["category"]) == {"personal_care"} and set(v["provider"]) == {"Hemtjänst Söder"}
    assert import_visits(store, [DATA / "visits.parquet"], load_mapping(DATA / "visits_parquet.mapping.yaml"), P).events_written == 0


def test_a_visit_case_pairs_all_its_events(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text(
        "case,recipient,activity,lifecycle,timestamp,resource,provider,duration\n"
        "V1,R1,Omvårdnad,schedule,2024-03-04 08:00,,P1,30\n"  # planned without staff
        "V1,R1,Omvårdnad,start,2024-03-04 08:10,S1,P1,\n"
        "V1,R1,Omvårdnad,complete,2024-03-04 08:35,S1,P1,\n"
        "V1,R1,Omvårdnad,complete,2024-03-04 09:00,S1,P1,20\n"  # 5: a second visit in the same case
        "V2,R1,Städ,schedule,2024-03-05 10:00,S2,P1,60\n",  # only planned
        encoding="utf-8",
    )
    mapping = Mapping.model_validate({"units": {"duration": "minutes"}, "values": {"category": {"Omvårdnad": "personal_care", "Städ": "cleaning"}}, "events": {"case": "visit"}})
    store = _store(tmp_path)
    q = tmp_path / "q.csv"
    import_events(store, [path], mapping, P, ImportOptions(quarantine=q))
    assert _visits(store) == [
        (_rid("R1"), "P1", "personal_care", "performed", "2024-03-04 08:00:00", 30, "2024-03-04 08:10:00", 25.0, P.one("S1"), None, None, None),
        (_rid("R1"), "P1", "cleaning", "planned", "2024-03-05 10:00:00", 60, None, None, None, None, None, None),
    ]
    assert _quarantined(q) == [("5", "a second visit in a case that is one visit (events: {case: visit})")]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 5])
def test_unpaired_events_do_not_depend_on_the_chunks(tmp_path: Path, chunk_rows: int) -> None:
    mapping = Mapping(units={"duration": "minutes"}, values={"category": {"Omvårdnad": "personal_care", "Städ": "cleaning", "Inköp": "shopping", "Tvätt": "laundry"}})
    src = _events_csv(tmp_path, UNPAIRED)
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    one = import_events(_store(tmp_path, "whole.db"), [src], mapping, P, ImportOptions(quarantine=whole))
    many = import_events(_store(tmp_path, "cut.db"), [src], mapping, P, ImportOptions(quarantine=cut, chunk_rows=chunk_rows))
    assert sorted(_quarantined(cut)) == sorted(_quarantined(whole)) and many.quarantined == one.quarantined
    assert _visits(_store(tmp_path, "cut.db")) == _visits(_store(tmp_path, "whole.db"))


def test_events_in_the_repeated_autumn_hour_are_read_by_the_rule_and_counted(tmp_path: Path) -> None:
    """2024-10-27 02:00-03:00 happens twice in Stockholm: a time there is its first occurrence (+02:00),
    unless it would go back in its case: then it is the second (+01:00)."""
    log = tmp_path / "dst.csv"
    log.write_text(
        "case:concept:name,concept:name,lifecycle:transition,time:timestamp,org:resource,case:provider,minutes\n"
        # both in the first occurrence: 02:10 to 02:40 summer time, 30 minutes
        "B1,Omvårdnad,start,2024-10-27 02:10,S-1,Hemtjänst Söder,\n"
        "B1,Omvårdnad,complete,2024-10-27 02:40,S-1,Hemtjänst Söder,\n"
        # started 02:50 summer time, completed 02:20 winter time (an hour later by the clock's second pass): 30 minutes
        "B2,Omvårdnad,start,2024-10-27 02:50,S-2,Hemtjänst Söder,\n"
        "B2,Omvårdnad,complete,2024-10-27 02:20,S-2,Hemtjänst Söder,\n",
        encoding="utf-8",
    )
    store = _store(tmp_path)
    report = import_events(store, [log], load_mapping(DATA / "events_pm.mapping.yaml"), P)
    assert (report.rows_read, report.visits_made, report.rows_imported, sum(report.quarantined.values())) == (4, 2, 2, 0)
    assert sum(n for note, n in report.notes.items() if "repeated autumn hour" in note) == 4
    minutes = projection.load(store).visits.sort_values("planned_start")["actual_minutes"].tolist()
    assert minutes == [30.0, 30.0]

"""Importing visit logs: golden files, units, idempotence, corrections, pseudonyms, crash safety."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.ingest.mapping import Mapping, load_mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.report import ImportError_
from ersattning.ingest.visits import import_visits
from ersattning.privacy import Pseudonymiser
from ersattning.store import Store, open_store
from tests.support import wait_for_first_commit
from tests.test_cli import EXE, run

DATA = Path(__file__).parent / "data"
KEY = b"k" * 32
P = Pseudonymiser(KEY)


def _store(tmp_path: Path, name: str = "s.db") -> Store:
    return open_store(f"sqlite:///{tmp_path / name}")


def test_swedish_excel_export(tmp_path: Path) -> None:
    store = _store(tmp_path)
    mapping = load_mapping(DATA / "excel_sv.mapping.yaml")
    quarantine = tmp_path / "q.csv"
    report = import_visits(store, [DATA / "visits_excel_sv.csv"], mapping, P, ImportOptions(quarantine=quarantine))
    assert (report.rows_read, report.rows_imported) == (5, 4)
    assert dict(report.skipped) == {"night check by the alarm team, not a home-care visit": 1}
    assert not report.quarantined and not quarantine.exists()
    v = projection.load(store).visits.sort_values("planned_start", ignore_index=True)  # the log's order follows the hashed ids
    assert v["status"].tolist() == ["performed", "performed", "cancelled", "performed"]
    assert v["category"].tolist() == ["personal_care", "cleaning", "shopping", "other_service"]
    # "0,5" h = 30 min; "1,25" h = 75 min; planned 1 h = 60 min; 0,75 h planned, 0,5 h performed
    assert v["planned_minutes"].tolist() == [30, 75, 60, 45]
    assert v["actual_minutes"].tolist()[:2] == [30.0, 75.0] and v["actual_minutes"].tolist()[3] == 30.0
    # local wall clock kept: 08:05 in Stockholm
    assert str(v["actual_start"][0]) == "2024-03-04 08:05:00"
    assert v["staff1"].tolist() == [P.one("Åsa K"), P.one("Åsa K"), np.nan, P.one("Örjan L")]
    assert v["staff2"].tolist()[1] == P.one("Örjan L")
    assert v["registration"].tolist() == ["mobile", "mobile", np.nan, "manual"]
    assert set(v["provider"]) == {"Hemtjänst Söder", "Omsorg Norr AB"}
    from ersattning.domain import stable_id

    assert v["recipient"][0] == stable_id("recipient", P.one("B1001")).hex


def test_units_are_declared_never_guessed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    mapping = Mapping.model_validate(
        {
            "columns": {"Brukare": "recipient", "Besök": "visit_id", "Planerad start": "planned_start", "Tid": "planned_duration", "Personal": "staff"},
            "units": {"planned_duration": "decimal_hours"},
            "default_provider": "P1",
            "decimal": ".",
        }
    )
    mapping = mapping.model_copy(update={"values": {}})
    q = tmp_path / "q.csv"
    # the file has no category column: give it one through a default column
    with pytest.raises(ImportError_, match="no column for category"):
        import_visits(store, [DATA / "visits_mixed_units.csv"], mapping, P, ImportOptions(quarantine=q))
    text = (DATA / "visits_mixed_units.csv").read_text(encoding="utf-8").replace("Personal\n", "Personal;Insats\n")
    text = "\n".join(line + (";cleaning" if i else "") for i, line in enumerate(text.splitlines())) + "\n"
    src = tmp_path / "mixed.csv"
    src.write_text(text, encoding="utf-8")
    mapping = mapping.model_copy(update={"columns": {**mapping.columns, "Insats": "category"}})
    report = import_visits(store, [src], mapping, P, ImportOptions(quarantine=q))
    # decimal hours with a point: "0.5" and "1" pass; "0,75", "0:30" and "1:15" are not decimal hours here
    assert report.rows_imported == 2 and sum(report.quarantined.values()) == 3
    rows = list(csv.DictReader(q.open(encoding="utf-8")))
    assert [(r["line"], r["Tid"]) for r in rows] == [("3", "0,75"), ("4", "0:30"), ("5", "1:15")]
    assert {r["reason"] for r in rows} == {"ambiguous unit in planned_duration: expected decimal_hours"}
    hmm = mapping.model_copy(update={"units": {"planned_duration": "h:mm"}})
    again = import_visits(store, [src], hmm, P)
    assert again.rows_imported == 2  # now "0:30" and "1:15" are the readable ones
    assert sorted(projection.load(store).visits["planned_minutes"].tolist()) == [30, 30, 60, 75]


CANONICAL = "recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"


def _canonical(tmp_path: Path, rows: list[str], name: str = "v.csv") -> Path:
    path = tmp_path / name
    path.write_text(CANONICAL + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    "R1,P1,V1,personal_care,2024-03-04 08:00,2024-03-04 08:30,2024-03-04 08:02,2024-03-04 08:31,S1,performed",
    "R1,P1,V2,cleaning,2024-03-05 10:00,2024-03-05 11:00,,,,planned",
    "R2,P1,V3,shopping,2024-03-05 10:00,2024-03-05 10:45,,,,cancelled_by_recipient",
    "R2,P2,V4,personal_care,2024-03-06 21:00,2024-03-06 21:20,2024-03-06 21:00,2024-03-06 21:25,S2|S3,performed",
]


def test_importing_twice_adds_nothing_and_changes_become_corrections(tmp_path: Path) -> None:
    store = _store(tmp_path)
    src = _canonical(tmp_path, ROWS)
    first = import_visits(store, [src], Mapping(), P)
    position = store.position()
    assert first.rows_imported == 4 and first.events_written == 4  # one event per new visit: its plan with the outcome
    second = import_visits(store, [src], Mapping(), P)
    assert (second.rows_imported, second.rows_unchanged, second.events_written) == (0, 4, 0)
    assert store.position() == position
    # V2 is now performed, V1's end was corrected
    changed = [ROWS[0].replace("08:31", "08:41"), ROWS[1].replace(",,,,planned", ",2024-03-05 10:05,2024-03-05 11:00,S1,performed"), ROWS[2], ROWS[3]]
    third = import_visits(store, [_canonical(tmp_path, changed, "v2.csv")], Mapping(), P, ImportOptions(now=datetime(2024, 4, 1, 12)))
    assert (third.rows_imported, third.rows_unchanged, third.events_written) == (2, 2, 2)
    now = projection.load(store).visits.sort_values("planned_start", ignore_index=True)
    assert now["actual_minutes"].tolist()[0] == 39.0 and now["corrections"].tolist()[0] == 1
    assert now["status"].tolist()[1] == "performed"
    before = projection.load(store, as_of="2024-03-31").visits.sort_values("planned_start", ignore_index=True)
    assert before["actual_minutes"].tolist()[0] == 29.0  # as known before the correction


def test_a_stored_outcome_does_not_flip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    import_visits(store, [_canonical(tmp_path, ROWS)], Mapping(), P)
    flipped = ROWS[2].replace(",,,,cancelled_by_recipient", ",2024-03-05 10:00,2024-03-05 10:45,S9,performed")
    q = tmp_path / "q.csv"
    report = import_visits(store, [_canonical(tmp_path, [flipped], "flip.csv")], Mapping(), P, ImportOptions(quarantine=q))
    assert report.rows_imported == 0 and dict(report.quarantined) == {"conflicts with the outcome already stored for this visit": 1}
    assert projection.load(store).visits["status"].value_counts().to_dict() == {"performed": 2, "planned": 1, "cancelled": 1}


def test_a_changed_plan_of_a_stored_visit_is_not_taken_silently(tmp_path: Path) -> None:
    store = _store(tmp_path)
    import_visits(store, [_canonical(tmp_path, ROWS)], Mapping(), P)
    moved = ROWS[1].replace("2024-03-05 10:00,2024-03-05 11:00", "2024-03-05 12:00,2024-03-05 13:00")
    report = import_visits(store, [_canonical(tmp_path, [moved, ROWS[0]], "moved.csv")], Mapping(), P)
    assert dict(report.quarantined) == {"changes the plan (start, length, category or provider) of a visit already stored": 1}
    assert report.rows_unchanged == 1


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk_rows=st.integers(1, 5), repeats=st.integers(1, 2), pieces=st.booleans())
def test_any_chunking_gives_the_same_projection(tmp_path_factory: pytest.TempPathFactory, chunk_rows: int, repeats: int, pieces: bool) -> None:
    from ersattning.ingest import visits as importer

    base = tmp_path_factory.mktemp("base")
    src = _canonical(base, ROWS)
    one = _store(base, "one.db")
    import_visits(one, [src], Mapping(), P)
    other_dir = tmp_path_factory.mktemp("other")
    other = _store(other_dir, "other.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importer, "_PIECE_ROWS", 1 if pieces else 10**9)  # the first chunk cut in pieces, or not
        for _ in range(repeats):
            import_visits(other, [src], Mapping(), P, ImportOptions(chunk_rows=chunk_rows))
    a, b = projection.load(one).visits, projection.load(other).visits
    key = ["planned_start", "category"]
    pd.testing.assert_frame_equal(a.sort_values(key, ignore_index=True).astype(str), b.sort_values(key, ignore_index=True).astype(str))


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("R1,P1,V9,personal_care,2024-03-04 08:00,2024-03-04 08:30,2024-03-04 09:00,2024-03-04 08:31,S1,performed", "actual end before start"),
        ("R1,P1,V9,personal_care,2024-03-04 08:00,2024-03-04 08:30,2024-03-04 08:00,2024-03-05 08:31,S9,performed", "actual visit longer than 16 h"),
        ("R1,P1,V9,personal_care,2024-03-04 08:10,2024-03-04 08:30,2024-03-04 08:10,2024-03-04 08:20,S1,performed", "overlaps another visit of the same staff member"),
        ("R1,P1,V9,gardening,2024-03-04 08:00,2024-03-04 08:30,,,,planned", "category not one of"),
        ("R1,P1,V9,personal_care,2024-03-31 02:30,2024-03-31 03:00,,,,planned", "planned_start is not a date and time"),
        ("R1,121212-1212,V9,personal_care,2024-03-04 10:00,2024-03-04 10:30,,,,planned", "a personal identity number in provider"),
        (",P1,V9,personal_care,2024-03-04 10:00,2024-03-04 10:30,,,,planned", "recipient missing"),
    ],
)
def test_bad_rows_are_quarantined_with_line_and_reason(tmp_path: Path, row: str, reason: str) -> None:
    store = _store(tmp_path)
    q = tmp_path / "q.csv"
    report = import_visits(store, [_canonical(tmp_path, [ROWS[0], row])], Mapping(), P, ImportOptions(quarantine=q))
    assert report.rows_imported == 1
    rows = list(csv.DictReader(q.open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["line"] == "3" and rows[0]["reason"].startswith(reason)
    with pytest.raises(ImportError_, match=f"v.csv:3: {reason.split('(')[0][:20]}"):
        import_visits(_store(tmp_path, "strict.db"), [_canonical(tmp_path, [ROWS[0], row])], Mapping(), P, ImportOptions(strict=True))
    assert _store(tmp_path, "strict.db").position() == 0


def test_no_personnummer_reaches_the_store_or_the_cache(tmp_path: Path) -> None:
    pnrs = ["19121212-1212", "811228-9874", "701063-2391"]
    rows = [
        f"{pnrs[0]},P1,V1,personal_care,2024-03-04 08:00,2024-03-04 08:30,2024-03-04 08:02,2024-03-04 08:31,{pnrs[1]},performed",
        f"{pnrs[2]},P1,{pnrs[2]}-besok,cleaning,2024-03-05 10:00,2024-03-05 11:00,,,,planned",
    ]
    store = _store(tmp_path)
    report = import_visits(store, [_canonical(tmp_path, rows)], Mapping(), P)
    assert report.rows_imported == 2 and {"recipient", "staff", "visit_id"} <= report.columns_with_personnummer
    projection.load(store)
    store.close()
    blobs = [(tmp_path / "s.db").read_bytes()]
    blobs += [p.read_bytes() for p in (tmp_path / "s.db.projection").rglob("*") if p.is_file()]
    for pnr in pnrs:
        for form in {pnr, pnr.replace("-", ""), pnr[-11:], pnr[-11:].replace("-", "")}:
            assert all(form.encode() not in b for b in blobs), form


def test_the_import_command(tmp_path: Path) -> None:
    env = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    done = run("import", str(DATA / "visits_excel_sv.csv"), "--mapping", str(DATA / "excel_sv.mapping.yaml"), "--store", store, "--quarantine", str(tmp_path / "q.csv"), env=env)
    assert done.returncode == 0, done.stderr
    assert "rows read 5, imported 4" in done.stdout and "skipped (night check" in done.stdout
    again = run("import", str(DATA / "visits_excel_sv.csv"), "--mapping", str(DATA / "excel_sv.mapping.yaml"), "--store", store, env=env)
    assert "imported 0, already in the store 4" in again.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: {Brukare: recipient}\nunits: {planned_duration: fortnights}\n")
    done = run("import", str(DATA / "visits_excel_sv.csv"), "--mapping", str(bad), "--store", store, env=env)
    assert done.returncode == 2 and f"{bad}:2: units.planned_duration" in done.stderr and "Traceback" not in done.stderr
    missing = run("import", str(tmp_path / "nope.csv"), "--store", store, env=env)
    assert missing.returncode == 2 and "nope.csv" in missing.stderr


def test_a_killed_import_completes_on_rerun_without_duplicates(tmp_path: Path) -> None:
    n = 120_000
    src = tmp_path / "big.csv"
    with src.open("w", encoding="utf-8") as f:
        f.write(CANONICAL)
        t0 = datetime(2024, 1, 1, 7, 0)
        for i in range(n):
            begin = t0 + timedelta(days=i // 60, minutes=(i % 60) * 10)  # daytime only: no DST gaps
            start, end = begin.strftime("%Y-%m-%d %H:%M"), (begin + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M")
            f.write(f"R{i % 3000},P{i % 7},V{i},personal_care,{start},{end},{start},{end},S{i % 5000},performed\n")
    env = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
    db = tmp_path / "crash.db"
    args = ["import", str(src), "--store", f"sqlite:///{db}", "--chunk-rows", "10000"]
    full_env = {**os.environ, **env}
    proc = subprocess.Popen([*EXE, *args], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_first_commit(proc, db)
    assert proc.poll() is None, "the import finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = open_store(f"sqlite:///{db}", create=False)
    partial = store.position()
    assert 0 < partial < n and partial % 10_000 == 0  # whole chunks only: one event per visit
    store.close()
    rerun = run(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    store = open_store(f"sqlite:///{db}", create=False)
    assert store.position() == n
    v = projection.load(store).visits
    assert len(v) == n and v["status"].eq("performed").all()


# -- decisions and stays ------------------------------------------------------------------

DECISIONS = "recipient,decision_id,provider,category,granted,per,valid_from,valid_to,area,birth_year\n"


def _decisions(tmp_path: Path, rows: list[str], name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_text(DECISIONS + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_decisions_enrol_grant_revise_and_end(tmp_path: Path) -> None:
    from ersattning.ingest.recipients import import_decisions

    store = _store(tmp_path)
    rows = ["R1,D1,P1,personal_care,600,month,2024-01-01,,rural,1938", "R1,D2,P1,cleaning,120,week,2024-01-01,,rural,1938", "R2,D3,P2,shopping,90,month,2024-02-15,2024-06-30,urban,"]
    first = import_decisions(store, [_decisions(tmp_path, rows)], Mapping(), P)
    # two enrolments, two provider choices, three decisions
    assert (first.rows_imported, first.events_written) == (3, 7)
    assert import_decisions(store, [_decisions(tmp_path, rows)], Mapping(), P).events_written == 0
    changed = [rows[0].replace(",600,month,2024-01-01", ",900,month,2024-05-01"), rows[1].replace("2024-01-01,,", "2024-01-01,2024-09-30,")]
    again = import_decisions(store, [_decisions(tmp_path, changed, "d2.csv")], Mapping(), P, ImportOptions(now=datetime(2024, 5, 2, 9)))
    assert (again.rows_imported, again.events_written) == (2, 2)
    p = projection.load(store)
    r1 = p.recipients[p.recipients["pseudonym"] == P.one("R1")].iloc[0]
    assert (r1["birth_year"], r1["area"], r1["provider"]) == (1938, "rural", "P1")
    d = p.decisions.sort_values(["decision_id", "valid_from"]).reset_index(drop=True)
    assert d[["decision_id", "granted_minutes"]].values.tolist() == [["D1", 600], ["D1", 900], ["D2", 120], ["D3", 90]]
    assert str(d["valid_to"][0].date()) == "2024-05-01" and str(d["valid_to"][2].date()) == "2024-09-30"
    unknown_year = p.recipients[p.recipients["pseudonym"] == P.one("R2")].iloc[0]
    assert unknown_year["birth_year"] == 0  # unknown: not counted as 65+ in continuity


def test_stays_need_a_known_recipient_and_end_later(tmp_path: Path) -> None:
    from ersattning.ingest.recipients import import_decisions, import_stays

    store = _store(tmp_path)
    import_decisions(store, [_decisions(tmp_path, ["R1,D1,P1,personal_care,600,month,2024-01-01,,urban,1938"])], Mapping(), P)
    stays = tmp_path / "s.csv"
    stays.write_text("recipient,kind,start,end\nR1,hospital,2024-03-10,\nR9,hospital,2024-03-10,2024-03-12\nR1,hospital,2024-04-01,2024-04-03\n", encoding="utf-8")
    q = tmp_path / "q.csv"
    report = import_stays(store, [stays], Mapping(), P, ImportOptions(quarantine=q))
    assert report.rows_imported == 1
    assert dict(report.quarantined) == {"unknown recipient (import the decisions first)": 1, "another stay of this recipient is still open": 1}
    stays.write_text("recipient,kind,start,end\nR1,hospital,2024-03-10,2024-03-15\n", encoding="utf-8")
    ended = import_stays(store, [stays], Mapping(), P)
    assert (ended.rows_imported, ended.events_written) == (1, 1)
    s = projection.load(store).stays
    assert s[["kind", "start", "end"]].astype(str).values.tolist() == [["hospital", "2024-03-10", "2024-03-15"]]


def test_a_big_first_chunk_is_cut_into_consecutive_pieces(tmp_path: Path) -> None:
    from ersattning.ingest import visits as importer
    from ersattning.ingest.readers import read_rows
    from ersattning.ingest.visits import _pieces

    rows = [f"R{i},P1,V{i},personal_care,2024-03-04 08:00,2024-03-04 08:30,,,,planned" for i in range(103)]
    src = _canonical(tmp_path, rows)
    for chunk in read_rows(src, chunk_rows=1000):
        for as_frame in (False, True):
            whole = chunk if not as_frame else type(chunk)(path=chunk.path, first_row=chunk.first_row, frame=chunk.frame, lines=chunk.lines, fraction=chunk.fraction)
            assert _pieces(whole, 4) == [whole]  # 103 rows: too small to cut
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(importer, "_PIECE_ROWS", 10)
                parts = _pieces(whole, 4)
            assert [len(p) for p in parts] == [25, 26, 26, 26]
            assert [p.first_row for p in parts] == [1, 26, 52, 78]
            assert np.concatenate([p.lines for p in parts]).tolist() == whole.lines.tolist()
            cut = pd.concat([p.frame for p in parts], ignore_index=True)
            pd.testing.assert_frame_equal(cut, whole.frame.reset_index(drop=True))

"""Issue 24, traps 4, 10 and 11 through the command line: the store knows its pseudonym key, a dry run writes
nothing it was not asked for, rejected rows are written where the user is told and the exit status says so, an
overlap names the other visit, and an interrupted import or synth says what is stored and finishes on a rerun."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ersattning import projection
from ersattning.privacy.keys import FINGERPRINT_META
from ersattning.store import open_store
from tests.support import wait_for_first_commit
from tests.test_cli import EXE, run
from tests.test_leaks import PEOPLE, forms

KEY_A = "the-key-the-store-was-written-with-0123"
KEY_B = "a-colleagues-other-key-0123456789abcdef"
ANNA, BO = PEOPLE["anna"], PEOPLE["bo"]  # 19430514-1139; 19701063-2391 (a samordningsnummer)

MAPPING = """\
# a municipality's export: Windows-1252, ';', decimal comma, durations in hours
encoding: cp1252
delimiter: ";"
decimal: ","
columns:
  Personnummer: recipient
  Utförare: provider
  Besök: visit_id
  Insats: category
  Planerad start: planned_start
  Planerad tid (h): planned_duration
  Utförd start: actual_start
  Utförd tid (h): actual_duration
  Personal: staff
  Status: status
values:
  category: {Personlig omvårdnad: personal_care, Städning: cleaning}
  status: {Utförd: performed, Avbokad av brukare: cancelled_by_recipient}
units: {planned_duration: decimal_hours, actual_duration: decimal_hours}
timezone: Europe/Stockholm
"""
HEADER = "Personnummer;Utförare;Besök;Insats;Planerad start;Planerad tid (h);Utförd start;Utförd tid (h);Personal;Status"
ROWS = [
    # line 2: Lena's 08:00–08:30 visit
    f"{ANNA[:8]}-{ANNA[8:]};Hemtjänst Söder;V-1;Personlig omvårdnad;2024-09-02 08:00;0,5;2024-09-02 08:00;0,5;Lena Ström;Utförd",
    # line 3: the same number written without the dash, a double-staffed cleaning
    f"{ANNA};Hemtjänst Söder;V-2;Städning;2024-09-03 13:00;1,25;2024-09-03 13:00;1,25;Lena Ström|Ahmed Hassan;Utförd",
    # line 4: Lena at 08:15 on 2 September, while she is with Anna (line 2) until 08:30: overlaps
    f"{BO[2:8]}-{BO[8:]};Hemtjänst Söder;V-3;Personlig omvårdnad;2024-09-02 08:15;0,5;2024-09-02 08:15;0,5;Lena Ström;Utförd",
    # line 5: a status nobody mapped: rejected
    f"{BO};Hemtjänst Söder;V-4;Städning;2024-09-04 10:00;1;2024-09-04 10:00;1;Ahmed Hassan;Inställd",
]


def _export(folder: Path, rows: list[str] = ROWS, name: str = "besok.csv") -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    src, mapping = folder / name, folder / "besok.mapping.yaml"
    src.write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode("cp1252"))
    mapping.write_text(MAPPING, encoding="utf-8")
    return src, mapping


def _no_key_in(text: str, *keys: str) -> None:
    for key in keys:
        assert key not in text and key.encode().hex() not in text


def _positions(url: str) -> int:
    store = open_store(url, create=False)
    try:
        return store.position()
    finally:
        store.close()


# -- trap 4: the store knows its key ------------------------------------------------------------------------


def test_an_import_with_another_key_stops_before_writing_and_names_the_way_out(tmp_path: Path, store_url: str) -> None:
    src, mapping = _export(tmp_path / "src")
    first = run("import", str(src), "--mapping", str(mapping), "--store", store_url, cwd=tmp_path, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    assert first.returncode == 3, first.stderr  # imported, two rows rejected
    assert "rows read 4, imported 2" in first.stdout
    before = _positions(store_url)
    assert before == 2  # one event per performed visit
    store = open_store(store_url, create=False)
    fingerprint = store.get_meta(FINGERPRINT_META)
    store.close()
    assert fingerprint is not None and fingerprint.startswith("v1:")
    _no_key_in(fingerprint, KEY_A)
    files_before = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())

    other = run("import", str(src), "--mapping", str(mapping), "--store", store_url, cwd=tmp_path, env={"ERSATTNING_PSEUDONYM_KEY": KEY_B})
    assert other.returncode == 2, other.stdout + other.stderr
    lines = other.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in other.stderr and other.stdout == ""
    assert "was written with another pseudonym key than this one (from the environment variable ERSATTNING_PSEUDONYM_KEY)" in lines[0]
    assert "Nothing was written" in lines[0] and "ERSATTNING_PSEUDONYM_KEY_FILE" in lines[0]
    _no_key_in(other.stdout + other.stderr, KEY_A, KEY_B)
    assert _positions(store_url) == before
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == files_before  # no quarantine file either

    # a key file of another key: the message names the file, never its content
    key_file = tmp_path / "kollega.key"
    key_file.write_text("ab" * 32 + "\n")
    key_file.chmod(0o600)
    by_file = run("import", str(src), "--mapping", str(mapping), "--store", store_url, "--dry-run", cwd=tmp_path, env={"ERSATTNING_PSEUDONYM_KEY_FILE": str(key_file)})
    assert by_file.returncode == 2 and f"(from the key file {key_file})" in by_file.stderr
    _no_key_in(by_file.stdout + by_file.stderr, "ab" * 32, KEY_A)
    assert _positions(store_url) == before

    again = run("import", str(src), "--mapping", str(mapping), "--store", store_url, cwd=tmp_path, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    assert again.returncode == 3 and "imported 0, already in the store 2" in again.stdout  # the right key: idempotent


def test_explain_with_another_key_stops(tmp_path: Path) -> None:
    src, mapping = _export(tmp_path / "src")
    store = f"sqlite:///{tmp_path / 's.db'}"
    run("import", str(src), "--mapping", str(mapping), "--store", store, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    providers = tmp_path / "src" / "utforare.csv"
    providers.write_text("code,name,ownership,teams\nHemtjänst Söder,Hemtjänst Söder,municipal,\n", encoding="utf-8")
    assert run("import", str(providers), "--kind", "providers", "--store", store, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A}).returncode == 0
    args = ["explain", "--recipient", f"{ANNA[:8]}-{ANNA[8:]}", "--month", "2024-09", "--store", store, "--period", "2024-09"]
    right = run(*args, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    assert right.returncode == 0, right.stderr
    wrong = run(*args, env={"ERSATTNING_PSEUDONYM_KEY": KEY_B})
    assert wrong.returncode == 2 and "was written with another pseudonym key" in wrong.stderr and "Traceback" not in wrong.stderr
    _no_key_in(wrong.stdout + wrong.stderr, KEY_A, KEY_B)
    assert ANNA[8:] not in wrong.stdout + wrong.stderr


def test_a_store_written_before_the_fingerprint_gets_it_at_its_next_import_and_says_so(tmp_path: Path) -> None:
    src, mapping = _export(tmp_path / "src")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    run("import", str(src), "--mapping", str(mapping), "--store", url, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    with sqlite3.connect(tmp_path / "old.db") as con:  # the store as a version before the fingerprint left it
        assert con.execute("DELETE FROM ersattning_meta WHERE key = ?", (FINGERPRINT_META,)).rowcount == 1
    later = run("import", str(src), "--mapping", str(mapping), "--store", url, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    assert later.returncode == 3 and "had no record of its pseudonym key" in later.stderr and "fingerprint is recorded now" in later.stderr
    other = run("import", str(src), "--mapping", str(mapping), "--store", url, env={"ERSATTNING_PSEUDONYM_KEY": KEY_B})
    assert other.returncode == 2 and "another pseudonym key" in other.stderr


def test_a_dry_run_creates_no_key_file_and_no_store_and_writes_only_what_it_names(tmp_path: Path) -> None:
    src, mapping = _export(tmp_path / "src")
    work = tmp_path / "work"
    work.mkdir()
    key_file = tmp_path / "config" / "pseudonym.key"
    env = {"ERSATTNING_PSEUDONYM_KEY_FILE": str(key_file), "ERSATTNING_PSEUDONYM_KEY": ""}
    dry = run("import", str(src), "--mapping", str(mapping), "--store", "sqlite:///new.db", "--dry-run", cwd=work, env=env)
    assert dry.returncode == 3, dry.stderr  # the two rejected rows are said by the status as well
    assert f"no pseudonym key yet (the key file {key_file} does not exist); this run uses a throwaway key held in memory and creates none" in dry.stderr
    assert "dry run: 2 rows would be rejected; add --quarantine FILE to see them" in dry.stdout
    assert not key_file.exists() and not key_file.parent.exists()
    assert list(work.iterdir()) == []  # no store, no cache, no quarantine
    named = run("import", str(src), "--mapping", str(mapping), "--store", "sqlite:///new.db", "--dry-run", "--quarantine", "avvisade.csv", cwd=work, env=env)
    assert named.returncode == 3 and [p.name for p in work.iterdir()] == ["avvisade.csv"] and not key_file.exists()
    # a real import then makes the key, and says so
    real = run("import", str(src), "--mapping", str(mapping), "--store", "sqlite:///new.db", cwd=work, env=env)
    assert real.returncode == 3 and key_file.exists() and f"made a new pseudonym key in {key_file}" in real.stderr


# -- trap 11: rejected rows are hard to miss ---------------------------------------------------------------


def test_rejected_rows_go_to_an_owner_only_masked_file_beside_the_store_and_the_status_is_3(tmp_path: Path, store_url: str) -> None:
    src, mapping = _export(tmp_path / "src")
    work = tmp_path / "work"
    work.mkdir()
    done = run("import", str(src), "--mapping", str(mapping), "--store", store_url, cwd=work, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    assert done.returncode == 3, done.stderr
    assert "quarantined 2" in done.stdout
    path = Path(done.stdout.split("rejected rows written to ")[1].split(" (exit status 3)")[0])
    if store_url.startswith("sqlite"):
        assert path.parent == tmp_path and path.name.startswith("store.db.quarantine-") and path.suffix == ".csv"  # beside store.db
    else:
        assert path.parent == work and path.name.startswith("ersattning-quarantine-")  # a server store: the current directory
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    for number in (ANNA, BO):
        for form in forms(number):
            assert form not in text, form
    rows = list(csv.DictReader(text.splitlines()))
    assert [(r["line"], r["Personnummer"]) for r in rows] == [("4", "<identity number>"), ("5", "<identity number>")]
    assert rows[0]["reason"] == f"overlaps another visit of the same staff member (the other is on line 2 of {src})"
    assert rows[1]["reason"].startswith("status not one of performed")
    # a second import a second later gets a file of its own
    time.sleep(1.1)
    again = run("import", str(src), "--mapping", str(mapping), "--store", store_url, cwd=work, env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    second = Path(again.stdout.split("rejected rows written to ")[1].split(" (exit status 3)")[0])
    assert again.returncode == 3 and second != path and second.exists() and path.exists()


def test_a_clean_import_exits_0_and_writes_no_quarantine(tmp_path: Path) -> None:
    src, mapping = _export(tmp_path / "src", ROWS[:2])
    done = run("import", str(src), "--mapping", str(mapping), "--store", f"sqlite:///{tmp_path / 's.db'}", env={"ERSATTNING_PSEUDONYM_KEY": KEY_A})
    assert done.returncode == 0, done.stderr
    assert "rejected" not in done.stdout and not list(tmp_path.glob("*quarantine*"))


def test_the_exit_statuses_are_in_the_help() -> None:
    text = " ".join(run("import", "--help").stdout.split())
    assert "3 imported, but rows were rejected (quarantined)" in text and "130/143 interrupted" in text and "2 a user error" in text


def test_an_overlap_with_a_stored_visit_names_it_by_its_id(tmp_path: Path) -> None:
    src, mapping = _export(tmp_path / "src", ROWS[:1])
    url = f"sqlite:///{tmp_path / 's.db'}"
    env = {"ERSATTNING_PSEUDONYM_KEY": KEY_A}
    assert run("import", str(src), "--mapping", str(mapping), "--store", url, env=env).returncode == 0
    store = open_store(url, create=False)
    (stored_id,) = [oid.decode() for page in store.read_pages(0) for oid in page.originator_id]
    store.close()
    later, _ = _export(tmp_path / "src", ROWS[2:3], name="besok-2.csv")  # Lena at 08:15, in another file
    q = tmp_path / "q.csv"
    done = run("import", str(later), "--mapping", str(mapping), "--store", url, "--quarantine", str(q), env=env)
    assert done.returncode == 3
    (row,) = list(csv.DictReader(q.open(encoding="utf-8")))
    uuid = f"{stored_id[:8]}-{stored_id[8:12]}-{stored_id[12:16]}-{stored_id[16:20]}-{stored_id[20:]}"
    assert row["reason"] == f"overlaps another visit of the same staff member (the other is the stored visit {uuid})"
    strict = run("import", str(later), "--mapping", str(mapping), "--store", url, "--strict", env=env)
    assert strict.returncode == 2 and f"(the other is the stored visit {uuid})" in strict.stderr


# -- trap 10: interrupted work --------------------------------------------------------------------------


def _big_export(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n")
        t0 = datetime(2024, 1, 1, 7, 0)
        for i in range(n):
            begin = t0 + timedelta(days=i // 60, minutes=(i % 60) * 10)  # daytime only: no DST gaps
            start, end = begin.strftime("%Y-%m-%d %H:%M"), (begin + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M")
            f.write(f"R{i % 3000},P{i % 7},V{i},personal_care,{start},{end},{start},{end},S{i % 5000},performed\n")


def _visits(url: str) -> list[tuple]:
    store = open_store(url, create=False)
    try:
        v = projection.load(store).visits
        return sorted(v[["recipient", "provider", "planned_start", "actual_start", "actual_minutes", "staff1"]].itertuples(index=False, name=None))
    finally:
        store.close()


@pytest.mark.parametrize("to_group", [False, True], ids=["to the import", "to its process group, as Ctrl-C sends it"])
def test_sigint_during_an_import_says_what_is_stored_and_a_rerun_finishes_it(tmp_path: Path, to_group: bool) -> None:
    n = 120_000
    src = tmp_path / "big.csv"
    _big_export(src, n)
    env = {"ERSATTNING_PSEUDONYM_KEY": KEY_A}
    db = tmp_path / "cut.db"
    args = ["import", str(src), "--store", f"sqlite:///{db}", "--chunk-rows", "10000"]
    proc = subprocess.Popen([*EXE, *args], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=to_group)
    wait_for_first_commit(proc, db)
    assert proc.poll() is None, "the import finished before it could be interrupted"
    if to_group:  # the writer process gets it too: it leaves the stop to the import and finishes its batch whole
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Aborted!" not in err and "Traceback" not in err and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("ersattning: interrupted: ") and "rerunning the same command finishes the import — rows already stored are skipped" in line
    said = int(line.split("interrupted: ")[1].split(" rows of this import")[0].replace(",", ""))
    stored = _positions(f"sqlite:///{db}")
    assert 0 < said == stored < n  # one event per performed visit: what the line says is what the store holds
    batches = stored // 10_000  # whole chunks of 10,000 rows
    assert f"({batches} batch{'es' if batches != 1 else ''}, " in line

    rerun = run(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"imported {n - stored:,}, already in the store {stored:,}" in rerun.stdout
    whole = tmp_path / "whole.db"
    assert run("import", str(src), "--store", f"sqlite:///{whole}", env=env).returncode == 0
    assert _visits(f"sqlite:///{db}") == _visits(f"sqlite:///{whole}")  # the same content as an import never cut


def test_sigterm_during_synth_says_what_is_stored_and_history_marks_the_region_unfinished(tmp_path: Path) -> None:
    db = tmp_path / "synth.db"
    url = f"sqlite:///{db}"
    args = ["synth", "--recipients", "3000", "--months", "3", "--seed", "4", "--store", url]
    proc = subprocess.Popen([*EXE, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_first_commit(proc, db)
    time.sleep(0.3)  # somewhere inside a later batch
    assert proc.poll() is None, "synth finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    (line,) = err.strip().splitlines()
    assert "Traceback" not in err and line.startswith("ersattning: interrupted: ")
    assert line.endswith("batches of the synthetic region are stored in " + url + "; rerunning the same command finishes it — batches already stored are skipped")
    stored = int(line.split("interrupted: ")[1].split(" of 30 batches")[0])

    summary = json.loads(run("history", "--store", url, "--format", "json").stdout)
    assert summary["synthetic"] == {
        "batches_stored": stored,
        "batches": 30,  # 3,000 recipients, 100 a batch
        "finished": False,
        "command": f"ersattning synth --recipients 3000 --months 3 --start 2024-01 --seed 4 --store {url}",
    }
    assert summary["recipients"] == 100 * stored
    table = run("history", "--store", url).stdout
    assert f"Synthetic   unfinished: {stored} of 30 batches stored; to finish it, rerun: ersattning synth --recipients 3000" in table

    assert run(*args).returncode == 0
    summary = json.loads(run("history", "--store", url, "--format", "json").stdout)
    assert summary["synthetic"]["finished"] and summary["recipients"] == 3000
    assert "Synthetic   a whole region (30 batches)" in run("history", "--store", url).stdout


@pytest.mark.parametrize("figures", [["--set", "share_double_staffed=0.1", "--providers", "4"]])
def test_history_gives_the_command_that_finishes_a_region_with_its_figures(tmp_path: Path, figures: list[str]) -> None:
    from ersattning.synth import META_KEY, RegionSpec

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = RegionSpec(recipients=200, months=1, providers=4, share_double_staffed=0.1)
    store = open_store(url)
    store.set_meta(META_KEY, spec.fingerprint())  # what synth records before its first batch: nothing stored yet
    store.close()
    summary = json.loads(run("history", "--store", url, "--format", "json").stdout)
    command = summary["synthetic"]["command"]
    assert summary["synthetic"]["batches_stored"] == 0 and summary["synthetic"]["batches"] == 2
    assert command == f"ersattning synth --recipients 200 --months 1 --start 2024-01 --seed 1 --providers 4 --set share_double_staffed=0.1 --store {url}"
    done = run(*command.split()[1:])
    assert done.returncode == 0, done.stderr
    assert json.loads(run("history", "--store", url, "--format", "json").stdout)["synthetic"]["finished"]

"""Pseudonyms and the personnummer guard: the store must hold pseudonyms only, never identity numbers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ersattning.privacy import (
    ENV_KEY,
    ENV_KEY_FILE,
    PNR_PATTERN,
    Pseudonymiser,
    PseudonymKeyError,
    find_personnummer,
    is_personnummer,
    load_key,
    personnummer_columns,
)
from ersattning.privacy.identity_numbers import _luhn_ok

KEY_A = b"a" * 32
KEY_B = b"b" * 32

# Test personnummer published by Skatteverket for testing.
SKATTEVERKET = ["19121212-1212", "121212-1212", "201212121212"]
# Luhn over 811228-9874, weights 2,1,2,1,... from the first digit:
#   8*2=16 -> 1+6=7, 1*1=1, 1*2=2, 2*1=2, 2*2=4, 8*1=8, 9*2=18 -> 1+8=9, 8*1=8, 7*2=14 -> 1+4=5, 4*1=4
#   7+1+2+2+4+8+9+8+5+4 = 50, divisible by 10: valid.
OTHER_VALID = ["811228-9874", "670919-9530"]
# Samordningsnummer: day 63 = 3 + 60. Checked by hand, it passes Luhn as given:
#   7*2=14 -> 5, 0, 1*2=2, 0, 6*2=12 -> 3, 3, 2*2=4, 3, 9*2=18 -> 9, 1; 5+0+2+0+3+3+4+3+9+1 = 30.
SAMORDNINGSNUMMER = "701063-2391"
INVALID = [
    "121212-1213",  # wrong check digit
    "121312-1212",  # month 13
    "1212121212345",  # 13 digits: neither 12 nor 10 digits inside a longer run
]


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- personnummer


@pytest.mark.parametrize("pnr", SKATTEVERKET + OTHER_VALID + [SAMORDNINGSNUMMER])
def test_valid_personnummer(pnr: str) -> None:
    assert is_personnummer(pnr)
    assert is_personnummer(f"  {pnr} ")


def test_luhn_arithmetic_written_above() -> None:
    assert _luhn_ok("8112289874")
    assert _luhn_ok("7010632391")
    assert not _luhn_ok("8112289875")


def test_samordningsnummer_is_day_plus_60() -> None:
    assert is_personnummer(SAMORDNINGSNUMMER)
    # The same digits with day 03 are an ordinary date but the check digit no longer fits.
    assert not is_personnummer("701003-2391")
    assert not is_personnummer("701092-2391")  # day 92 - 60 = 32: no such day


@pytest.mark.parametrize("text", INVALID + ["", "R-1001", "20240101", "121212-121", "19121212-1212x1"])
def test_invalid_personnummer(text: str) -> None:
    assert not is_personnummer(text)


def test_date_must_exist() -> None:
    def with_check_digit(nine: str) -> str:
        check = next(c for c in "0123456789" if _luhn_ok(nine + c))
        return nine + check

    assert is_personnummer(with_check_digit("200229123"))  # 29 Feb exists for 1920 and 2020
    assert not is_personnummer(with_check_digit("210229123"))  # no 29 Feb in 1921 or 2021
    assert not is_personnummer("19" + with_check_digit("210229123"))
    assert not is_personnummer(with_check_digit("120012123"))  # day 00
    assert not is_personnummer(with_check_digit("120431123"))  # 31 April


def test_pattern_not_inside_longer_digit_runs() -> None:
    assert PNR_PATTERN.search("1212121212345") is None
    assert PNR_PATTERN.search("x1211212121212") is None  # 13 digits
    assert PNR_PATTERN.search("ref 121212-1212 ok").group("pnr") == "121212-1212"
    assert PNR_PATTERN.search("19121212+1212").group("pnr") == "19121212+1212"
    assert PNR_PATTERN.search("201212121212").group("pnr") == "201212121212"


def test_find_personnummer_in_mixed_series() -> None:
    values = pd.Series(
        [
            "Brukare 121212-1212 ringde",
            "R-1001",
            "20240101",
            None,
            np.nan,
            "fel siffra 121212-1213",
            "1212121212345",
            "Brukare 121212-1212 ringde",  # repeated value: same answer
            "samordning 701063-2391, ring tillbaka",
            "två: 121312-1212 och 811228-9874",  # first candidate invalid, second valid
            "",
        ],
        dtype=object,
    )
    expected = [True, False, False, False, False, False, False, True, True, True, False]
    got = find_personnummer(values)
    assert isinstance(got, np.ndarray) and got.dtype == bool
    assert got.tolist() == expected
    assert find_personnummer(values.astype("string")).tolist() == expected


def test_find_personnummer_edge_cases() -> None:
    assert find_personnummer(pd.Series([], dtype=object)).tolist() == []
    assert find_personnummer(pd.Series([None, np.nan])).tolist() == [False, False]
    # Non-string values are looked at as strings: an integer personnummer is still one.
    assert find_personnummer(pd.Series([201212121212, 20240101], dtype=object)).tolist() == [True, False]


def test_personnummer_columns_finds_the_hidden_one() -> None:
    frame = pd.DataFrame(
        {
            "recipient_id": ["R-1001", "R-1002", "R-1003"],
            "anteckning": ["ok", None, "Anhörig 811228-9874 ringde"],
            "datum": ["20240101", "20240102", "20240103"],
            "minutes": [30, 45, 60],
            "share": [0.5, 1.0, 1.5],
        }
    )
    assert personnummer_columns(frame) == ["anteckning"]
    assert personnummer_columns(frame.drop(columns="anteckning")) == []


# --------------------------------------------------------------------------- key


def test_env_key_wins(no_key_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.key"
    monkeypatch.setenv(ENV_KEY, "a secret of enough length")
    assert load_key(key_file) == b"a secret of enough length"
    assert not key_file.exists()  # nothing created when the environment gives the key


def test_env_key_too_short(no_key_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_KEY, "short")
    with pytest.raises(PseudonymKeyError, match=ENV_KEY):
        load_key(tmp_path / "pseudonym.key")


def test_empty_env_key_is_ignored(no_key_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_KEY, "")
    key = load_key(tmp_path / "pseudonym.key")
    assert len(key) == 32


def test_key_file_created_private_and_reused(no_key_env: None, tmp_path: Path) -> None:
    key_file = tmp_path / "config" / "ersattning" / "pseudonym.key"
    key = load_key(key_file)
    assert len(key) == 32
    assert key_file.exists()
    assert _mode(key_file) == 0o600
    assert _mode(key_file.parent) == 0o700
    assert key_file.read_text().strip() == key.hex()
    assert load_key(key_file) == key
    assert load_key(str(key_file), create=False) == key


def test_key_file_from_env_var(no_key_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "from_env.key"
    monkeypatch.setenv(ENV_KEY_FILE, str(key_file))
    key = load_key()
    assert key_file.read_text().strip() == key.hex()


def test_key_file_readable_by_others_refused(no_key_env: None, tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text("ab" * 32 + "\n")
    os.chmod(key_file, 0o644)
    with pytest.raises(PseudonymKeyError, match="chmod 600") as info:
        load_key(key_file)
    assert str(key_file) in str(info.value)
    os.chmod(key_file, 0o600)
    assert load_key(key_file) == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("content", ["", "not a key\n", "ab" * 31 + "\n", "zz" * 32, "ab" * 33])
def test_malformed_key_file_refused(no_key_env: None, tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(content)
    os.chmod(key_file, 0o600)
    with pytest.raises(PseudonymKeyError, match="malformed") as info:
        load_key(key_file)
    assert str(key_file) in str(info.value)
    if content.strip():
        assert content.strip() not in str(info.value)  # a secret in the wrong format is not echoed


def test_missing_key_file_without_create(no_key_env: None, tmp_path: Path) -> None:
    key_file = tmp_path / "missing.key"
    with pytest.raises(PseudonymKeyError) as info:
        load_key(key_file, create=False)
    assert str(key_file) in str(info.value)
    assert not key_file.exists()


# --------------------------------------------------------------------------- pseudonymiser


def test_one_is_deterministic_and_keyed() -> None:
    p = Pseudonymiser(KEY_A)
    assert p.one("R-1001") == p.one("R-1001") == Pseudonymiser(KEY_A).one("R-1001")
    assert p.one(" R-1001 ") == p.one("R-1001")  # stripped first
    assert p.one("R-1001") != p.one("R-1002")
    assert p.one("R-1001") != Pseudonymiser(KEY_B).one("R-1001")
    assert len(p.one("R-1001")) == 32
    assert len(Pseudonymiser(KEY_A, length=8).one("R-1001")) == 16
    int(p.one("R-1001"), 16)  # hex


def test_output_never_contains_input() -> None:
    p = Pseudonymiser(KEY_A)
    # Long enough values that a chance hex substring is out of the question.
    for value in ["121212-1212", "191212121212", "R-1001", "Anna Andersson", "beef-cafe-1234"]:
        digits = "".join(ch for ch in value if ch.isdigit())
        for pseudonym in [p.one(value), *p.many([value])]:
            assert value.lower() not in pseudonym
            assert not digits or digits not in pseudonym


def test_many_equals_one_and_keeps_missing() -> None:
    p = Pseudonymiser(KEY_A)
    values = ["R-1", None, "R-2", "R-1", np.nan, "", "  ", " R-2"]
    expected = [p.one("R-1"), None, p.one("R-2"), p.one("R-1"), None, None, None, p.one("R-2")]
    for given_values in (values, pd.Series(values, dtype=object), np.array(values, dtype=object)):
        got = p.many(given_values)
        assert isinstance(got, np.ndarray) and got.dtype == object
        assert got.tolist() == expected
    assert p.many(pd.Series(["R-1", pd.NA], dtype="string")).tolist() == [p.one("R-1"), None]
    assert p.many([]).tolist() == []


def test_blank_and_bad_arguments_refused() -> None:
    p = Pseudonymiser(KEY_A)
    with pytest.raises(ValueError):
        p.one("  ")
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")
    with pytest.raises(ValueError):
        Pseudonymiser(KEY_A, length=33)
    assert "a" * 8 not in repr(p)  # the key is not shown


@given(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["R-1", " R-1", "", "121212-1212"]))))
def test_many_matches_one_property(values: list[str]) -> None:
    p = Pseudonymiser(KEY_A, length=8)
    expected = [p.one(v) if v.strip() else None for v in values]
    assert p.many(values).tolist() == expected
    assert p.many(pd.Series(values, dtype=object)).tolist() == expected


# -- one person, one pseudonym, in every import kind ---------------------------------------

FORMS = ("19430514-1139", "194305141139", "430514-1139", "4305141139")  # one person born 1943, four ways
COORDINATION = ("19701063-2391", "701063-2391")  # a samordningsnummer (day 3 + 60), two ways


def test_every_written_form_is_one_person_in_every_import_kind(tmp_path: Path) -> None:
    from ersattning import projection
    from ersattning.domain import stable_id
    from ersattning.ingest.events import import_events
    from ersattning.ingest.mapping import Mapping
    from ersattning.ingest.options import ImportOptions
    from ersattning.ingest.recipients import import_decisions, import_stays
    from ersattning.ingest.visits import import_visits
    from ersattning.store import open_store

    p = Pseudonymiser(KEY_A)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    decisions = tmp_path / "d.csv"
    decisions.write_text(
        "recipient,decision_id,provider,category,granted,valid_from\n"
        f"{FORMS[0]},D1,P1,personal_care,600,2024-01-01\n{COORDINATION[0]},D2,P1,cleaning,120,2024-01-01\n",
        encoding="utf-8",
    )
    assert import_decisions(store, [decisions], Mapping(), p).rows_imported == 2
    visits = tmp_path / "v.csv"
    lines = [f"{form},P1,V{i},personal_care,2024-03-0{i + 1} 08:00,2024-03-0{i + 1} 08:30,2024-03-0{i + 1} 08:00,2024-03-0{i + 1} 08:30,{staff},performed" for i, (form, staff) in enumerate(zip(FORMS, reversed(FORMS), strict=True))]
    lines.append(f"{COORDINATION[1]},P1,V9,cleaning,2024-03-09 08:00,2024-03-09 08:30,,,,planned")
    visits.write_text("recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n" + "\n".join(lines) + "\n", encoding="utf-8")
    report = import_visits(store, [visits], Mapping(), p, ImportOptions(quarantine=tmp_path / "q.csv"))
    assert not report.quarantined  # no "unknown recipient": every form is the person the decisions enrolled
    assert report.rows_imported == 5
    events = tmp_path / "e.csv"
    events.write_text("case,activity,timestamp,lifecycle,resource,provider\n" + f"{FORMS[3]},personal_care,2024-04-01 08:00,start,{FORMS[1]},P1\n{FORMS[3]},personal_care,2024-04-01 08:30,complete,{FORMS[1]},P1\n", encoding="utf-8")
    assert not import_events(store, [events], Mapping(), p).quarantined
    stays = tmp_path / "s.csv"
    stays.write_text(f"recipient,kind,start,end\n{FORMS[2]},hospital,2024-05-01,2024-05-03\n", encoding="utf-8")
    assert import_stays(store, [stays], Mapping(), p).rows_imported == 1
    proj = projection.load(store)
    person = stable_id("recipient", p.one("194305141139")).hex
    assert len(proj.recipients) == 2 and person in set(proj.recipients["recipient"])
    assert (proj.visits["recipient"] == person).sum() == 5
    assert set(proj.visits["staff1"].dropna()) == {p.one("194305141139")}  # staff ids that are numbers: one pseudonym too
    assert (proj.stays["recipient"] == person).all()


def test_a_ten_digit_number_takes_its_century_from_the_event_date() -> None:
    from ersattning.privacy import canonical_ids

    # 030514-…: born 2003 for an event in 2024, but 1903 for an event in 1990 (nobody is served before birth)
    ten = "0305141137"
    days = np.array(["2024-03-01", "1990-03-01", "NaT"], dtype="datetime64[D]")
    out = canonical_ids(np.array([ten, ten, ten], dtype=object), days)
    assert out[0].startswith("2003") and out[1].startswith("1903")
    assert out[2] == ten  # no date: left as it is (the row is rejected for the missing date)
    plain = np.array(["B1", None, "Anna"], dtype=object)
    assert canonical_ids(plain, days) is plain  # ids that are not numbers: untouched, no copy

"""The Swedish holiday calendar: hand-checked dates, vectorized day kinds, properties."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ersattning.calendar import MAJOR_HOLIDAYS, day_kinds, easter_sunday, swedish_holidays


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2019, date(2019, 4, 21)),
        (2000, date(2000, 4, 23)),
    ],
)
def test_easter_sunday(year: int, expected: date) -> None:
    assert easter_sunday(year) == expected


def _date_of(holidays: dict[date, str], name: str) -> date:
    (day,) = [d for d, n in holidays.items() if n == name]
    return day


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("långfredagen", date(2024, 3, 29)),
        ("Kristi himmelsfärdsdag", date(2024, 5, 9)),
        ("pingstdagen", date(2024, 5, 19)),
        ("midsommarafton", date(2024, 6, 21)),
        ("midsommardagen", date(2024, 6, 22)),
        ("alla helgons dag", date(2024, 11, 2)),
    ],
)
def test_holidays_2024(name: str, expected: date) -> None:
    holidays = swedish_holidays(2024)
    assert holidays[expected] == name
    assert _date_of(holidays, name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("midsommarafton", date(2025, 6, 20)),
        ("alla helgons dag", date(2025, 11, 1)),
    ],
)
def test_holidays_2025(name: str, expected: date) -> None:
    holidays = swedish_holidays(2025)
    assert holidays[expected] == name
    assert _date_of(holidays, name) == expected


@pytest.mark.parametrize("year", [2024, 2025])
def test_eighteen_entries_per_year(year: int) -> None:
    assert len(swedish_holidays(year)) == 18


def test_fixed_dates_and_eves_2024() -> None:
    holidays = swedish_holidays(2024)
    assert holidays[date(2024, 1, 1)] == "nyårsdagen"
    assert holidays[date(2024, 1, 6)] == "trettondedag jul"
    assert holidays[date(2024, 3, 30)] == "påskafton"
    assert holidays[date(2024, 4, 1)] == "annandag påsk"
    assert holidays[date(2024, 5, 1)] == "första maj"
    assert holidays[date(2024, 5, 18)] == "pingstafton"
    assert holidays[date(2024, 6, 6)] == "Sveriges nationaldag"
    assert holidays[date(2024, 12, 24)] == "julafton"
    assert holidays[date(2024, 12, 25)] == "juldagen"
    assert holidays[date(2024, 12, 26)] == "annandag jul"
    assert holidays[date(2024, 12, 31)] == "nyårsafton"


def test_coinciding_holidays_share_one_entry() -> None:
    # 2008: Easter 23 March, so Kristi himmelsfärdsdag fell on första maj.
    holidays = swedish_holidays(2008)
    assert holidays[date(2008, 5, 1)] == "första maj / Kristi himmelsfärdsdag"
    assert len(holidays) == 17


def test_coinciding_major_holiday_stays_major() -> None:
    # 2049: Easter 18 April, so pingstdagen falls on Sveriges nationaldag (6 June).
    holidays = swedish_holidays(2049)
    assert holidays[date(2049, 6, 6)] == "pingstdagen / Sveriges nationaldag"
    _, is_holiday, is_major = day_kinds(np.array(["2049-06-06"], dtype="datetime64[D]"))
    assert is_holiday.tolist() == [True]
    assert is_major.tolist() == [True]


def test_major_holiday_names_are_holiday_names() -> None:
    assert MAJOR_HOLIDAYS <= set(swedish_holidays(2024).values())
    assert "första maj" not in MAJOR_HOLIDAYS


def test_day_kinds_known_days() -> None:
    days = np.array(["2024-12-24", "2024-05-01", "2024-03-30", "2024-03-05", "NaT"], dtype="datetime64[D]")
    is_weekend, is_holiday, is_major = day_kinds(days)
    assert is_weekend.dtype == bool and is_holiday.dtype == bool and is_major.dtype == bool
    assert is_weekend.tolist() == [False, False, True, False, False]
    assert is_holiday.tolist() == [True, True, True, False, False]
    assert is_major.tolist() == [True, False, True, False, False]


def test_day_kinds_multi_year() -> None:
    days = np.arange(np.datetime64("2023-01-01"), np.datetime64("2027-01-01"))
    days = np.concatenate([days, np.array(["NaT"], dtype="datetime64[D]")])
    is_weekend, is_holiday, is_major = day_kinds(days)
    assert len(is_weekend) == len(is_holiday) == len(is_major) == len(days)

    expected_holidays = {d: n for year in range(2023, 2027) for d, n in swedish_holidays(year).items()}
    got_holidays = {d.item() for d in days[is_holiday]}
    assert got_holidays == set(expected_holidays)
    got_major = {d.item() for d in days[is_major]}
    assert got_major == {d for d, n in expected_holidays.items() if n in MAJOR_HOLIDAYS}
    assert int(is_holiday.sum()) == 4 * 18
    assert not (is_weekend[-1] or is_holiday[-1] or is_major[-1])
    # Every Saturday and Sunday, and nothing else, is a weekend day.
    assert int(is_weekend.sum()) == sum(1 for d in days[:-1] if d.item().weekday() >= 5)


def test_day_kinds_empty() -> None:
    is_weekend, is_holiday, is_major = day_kinds(np.array([], dtype="datetime64[D]"))
    assert is_weekend.shape == is_holiday.shape == is_major.shape == (0,)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31)))
def test_properties(day: date) -> None:
    easter = easter_sunday(day.year)
    assert easter.weekday() == 6
    assert date(day.year, 3, 22) <= easter <= date(day.year, 4, 25)

    holidays = swedish_holidays(day.year)
    is_weekend, is_holiday, is_major = day_kinds(np.array([day], dtype="datetime64[D]"))
    assert bool(is_weekend[0]) == (day.weekday() >= 5)
    assert bool(is_holiday[0]) == (day in holidays)
    name = holidays.get(day, "")
    assert bool(is_major[0]) == any(part in MAJOR_HOLIDAYS for part in name.split(" / "))

"""Swedish public holidays ("röda dagar") and holiday eves, computed from their rules.

Reimbursement rules pay uplifts for work on weekends, holidays and major holidays
("storhelg"), so they need to know which days those are. The calendar is computed
from the rules (Easter computus, fixed dates, weekday windows) rather than listed,
so any year works, and ``day_kinds`` classifies whole date columns at once.
"""

from __future__ import annotations

import datetime
from functools import lru_cache

import numpy as np

__all__ = ["MAJOR_HOLIDAYS", "TZ", "day_kinds", "easter_sunday", "swedish_holidays"]

#: the time zone of every local time in the service history (planned and performed times, calendar days)
TZ = "Europe/Stockholm"

# The days counted as "storhelg" (highest uplift): the storhelg list of the municipal
# collective agreements, an assumption; docs/models.md ("Major holidays") lists them with
# their rules and sources, and a test keeps that table and this set the same.
MAJOR_HOLIDAYS: frozenset[str] = frozenset(
    {
        "långfredagen",
        "påskafton",
        "påskdagen",
        "annandag påsk",
        "pingstafton",
        "pingstdagen",
        "midsommarafton",
        "midsommardagen",
        "julafton",
        "juldagen",
        "annandag jul",
        "nyårsafton",
        "nyårsdagen",
    }
)

# Separator used when two holidays fall on the same date (e.g. Kristi himmelsfärdsdag
# on första maj in 2008, or pingstdagen on Sveriges nationaldag).
_NAME_SEPARATOR = " / "


def easter_sunday(year: int) -> datetime.date:
    """Easter Sunday of ``year`` by the anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return datetime.date(year, month, day + 1)


def _weekday_in(year: int, month: int, first_day: int, weekday: int) -> datetime.date:
    """The date with ``weekday`` (Monday=0) in the seven days starting at ``first_day``."""
    start = datetime.date(year, month, first_day)
    return start + datetime.timedelta(days=(weekday - start.weekday()) % 7)


@lru_cache(maxsize=512)
def _holiday_entries(year: int) -> tuple[tuple[datetime.date, str], ...]:
    """Every holiday and eve of ``year`` as (date, name), in calendar order; dates may repeat."""
    easter = easter_sunday(year)

    def from_easter(days: int) -> datetime.date:
        return easter + datetime.timedelta(days=days)

    entries = [
        (datetime.date(year, 1, 1), "nyårsdagen"),
        (datetime.date(year, 1, 6), "trettondedag jul"),
        (from_easter(-2), "långfredagen"),
        (from_easter(-1), "påskafton"),
        (easter, "påskdagen"),
        (from_easter(1), "annandag påsk"),
        (datetime.date(year, 5, 1), "första maj"),
        (from_easter(39), "Kristi himmelsfärdsdag"),
        (from_easter(48), "pingstafton"),
        (from_easter(49), "pingstdagen"),
        (datetime.date(year, 6, 6), "Sveriges nationaldag"),
        (_weekday_in(year, 6, 19, 4), "midsommarafton"),  # Friday 19-25 June
        (_weekday_in(year, 6, 20, 5), "midsommardagen"),  # Saturday 20-26 June
        (_weekday_in(year, 10, 31, 5), "alla helgons dag"),  # Saturday 31 Oct - 6 Nov
        (datetime.date(year, 12, 24), "julafton"),
        (datetime.date(year, 12, 25), "juldagen"),
        (datetime.date(year, 12, 26), "annandag jul"),
        (datetime.date(year, 12, 31), "nyårsafton"),
    ]
    return tuple(sorted(entries, key=lambda entry: entry[0]))


def swedish_holidays(year: int) -> dict[datetime.date, str]:
    """Every public holiday and de facto holiday eve of ``year``, mapped to its Swedish name.

    When two holidays fall on the same date their names are joined with " / "
    (e.g. "första maj / Kristi himmelsfärdsdag" in 2008), so such years have fewer
    than 18 entries.
    """
    holidays: dict[datetime.date, str] = {}
    for day, name in _holiday_entries(year):
        holidays[day] = f"{holidays[day]}{_NAME_SEPARATOR}{name}" if day in holidays else name
    return holidays


def _is_major_name(name: str) -> bool:
    """Whether a (possibly joined) holiday name contains a major holiday."""
    return any(part in MAJOR_HOLIDAYS for part in name.split(_NAME_SEPARATOR))


def day_kinds(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classify a ``datetime64[D]`` array as (is_weekend, is_holiday, is_major_holiday).

    NaT is False in all three. Holiday sets are built once per distinct year present.
    """
    values = np.asarray(days).astype("datetime64[D]", copy=False)
    valid = ~np.isnat(values)
    ordinal = values.astype(np.int64)

    # 1970-01-01 was a Thursday; with Monday=0 the weekday is (ordinal + 3) % 7.
    weekday = (ordinal + 3) % 7
    is_weekend = valid & (weekday >= 5)

    years = values[valid].astype("datetime64[Y]").astype(np.int64) + 1970
    holiday_days: list[datetime.date] = []
    major_days: list[datetime.date] = []
    for year in np.unique(years).tolist():
        if not datetime.MINYEAR <= year <= datetime.MAXYEAR:
            continue
        for day, name in swedish_holidays(year).items():
            holiday_days.append(day)
            if _is_major_name(name):
                major_days.append(day)

    holiday_values = np.array(holiday_days, dtype="datetime64[D]")
    major_values = np.array(major_days, dtype="datetime64[D]")
    is_holiday = valid & np.isin(values, holiday_values)
    is_major_holiday = valid & np.isin(values, major_values)
    return is_weekend, is_holiday, is_major_holiday

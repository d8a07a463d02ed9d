"""The rules docs/models.md and docs/indicators.md decide at their edges, each pinned by a hand case.

Every test writes its arithmetic beside the assertion, and each fails when the rule
it pins changes (rounding half up, end dates, the day an uplift is taken from,
uplifts on an unpaid second staff, the major holidays, the continuity window,
band, visits per day, age and stays), and what explain says about them.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ersattning.domain import DepartureReason, StayKind
from ersattning.models import GrantedTime
from tests.builders import History, local
from tests.test_models import SOLNA, performed_time, total, visit_amounts

# -- rounding: "till närmaste minut" rounds a tie half up ------------------------------------------


def _one_visit_each(lengths: list[float]) -> History:
    h = History()
    h.provider()
    r = h.recipient("a")
    for n, minutes in enumerate(lengths, start=1):
        h.performed(r, f"v{n}", "personal_care", f"2024-03-{n:02d} 10:00", minutes)
    return h


def test_nearest_minute_rounds_a_tie_half_up():
    # registered 12 min 30 s, 22 min 30 s, 17 min 30 s, 12 min 29 s, 12 min 31 s
    h = _one_visit_each([12.5, 22.5, 17.5, 12 + 29 / 60, 12 + 31 / 60])
    s = performed_time(rounding="nearest", rounding_minutes=1).settle(h.context("2024-03", "2024-03"))
    # half up: 12.5 → 13, 22.5 → 23, 17.5 → 18 (half to even would give 12, 22, 18); 12:29 → 12, 12:31 → 13
    assert list(s.visit_paid_minutes) == [13.0, 23.0, 18.0, 12.0, 13.0]
    # 13 × 464 / 60 = 100.533… → 100.53; 23 × 464 / 60 = 177.866… → 177.87; 18 × 464 / 60 = 139.20; 12 × 464 / 60 = 92.80
    assert visit_amounts(s, "base") == [100.53, 177.87, 139.20, 92.80, 100.53]


def test_a_tie_of_a_larger_unit_rounds_up_too():
    # registered 7 min 30 s, 2 min 30 s and 37 min 30 s, rounded to 5 minutes
    h = _one_visit_each([7.5, 2.5, 37.5])
    s = performed_time(rounding="nearest", rounding_minutes=5).settle(h.context("2024-03", "2024-03"))
    # 7.5 / 5 = 1.5 → 2 units = 10 min; 2.5 / 5 = 0.5 → 1 unit = 5 min; 37.5 / 5 = 7.5 → 8 units = 40 min
    # (half to even: 10, 0 and 40 min)
    assert list(s.visit_paid_minutes) == [10.0, 5.0, 40.0]


def test_rounding_is_exact_whatever_the_stored_float_says():
    # minutes are stored as float32: 10 min 9 s is 10.149999618…, 10 min 6 s is 10.100000381…
    h = _one_visit_each([10 + 9 / 60, 10 + 6 / 60])
    ctx = h.context("2024-03", "2024-03")
    assert ctx.v_minutes[0] < 10.15 and ctx.v_minutes[1] > 10.1  # the float32 noise the rule must not see
    nearest = performed_time(rounding="nearest", rounding_minutes=0.1).settle(ctx)
    # 609 s / 6 s = 101.5 units: a tie, half up → 102 units = 10.2 min (the float would give 101.4999… → 10.1)
    assert round(float(nearest.visit_paid_minutes[0]), 9) == 10.2
    up = performed_time(rounding="up", rounding_minutes=0.1).settle(ctx)
    # 606 s / 6 s = 101 units exactly → 10.1 min (the float 101.0000038… would round up to 10.2)
    assert round(float(up.visit_paid_minutes[1]), 9) == 10.1


def test_rounding_up_and_down_are_unchanged():
    h = _one_visit_each([12.5, 12 + 1 / 60, 12.0])
    ctx = h.context("2024-03", "2024-03")
    # up: 12.5 → 13, 12:01 → 13, 12 → 12; down: 12, 12, 12
    assert list(performed_time(rounding="up").settle(ctx).visit_paid_minutes) == [13.0, 13.0, 12.0]
    assert list(performed_time(rounding="down").settle(ctx).visit_paid_minutes) == [12.0, 12.0, 12.0]


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.lists(st.integers(0, 16 * 3600), min_size=1, max_size=200),
    unit_seconds=st.integers(1, 3600),
    rounding=st.sampled_from(["nearest", "up", "down"]),
)
def test_rounding_equals_integer_arithmetic_on_whole_seconds(seconds, unit_seconds, rounding):
    """The rule in exact integers: whole seconds s over a unit of u seconds, half up for nearest."""
    s, u = np.array(seconds, dtype=np.int64), unit_seconds
    expected = {"nearest": (2 * s + u) // (2 * u), "up": -(-s // u), "down": s // u}[rounding] * (u / 60)
    minutes = (s / 60).astype(np.float32)  # as the projection stores them
    paid = performed_time(rounding=rounding, rounding_minutes=u / 60, minimum_minutes=0).paid_minutes(minutes)
    assert np.array_equal(paid, expected)


# -- the continuity indicator at its edges (docs/indicators.md) -------------------------------------
#
# March 2024 starts on a Friday; the first Monday is 4 March, so the period 2024-03 has two whole
# windows: 4–17 March and 18–31 March. Every person below has visits in the first only.


def _daily(h: History, r, days: range | list[int], times: tuple[str, ...], staff, month: str = "2024-03") -> None:
    """Performed 30-minute visits at ``times`` on each of ``days``; ``staff(day, time)`` gives who made each."""
    for day in days:
        for t in times:
            h.performed(r, f"{r.pseudonym}-{month}-{day}-{t}", "personal_care", f"{month}-{day:02d} {t}", 30, staff=(staff(day, t),))


def _continuity(h: History, start: str = "2024-03", end: str = "2024-03") -> dict:
    from ersattning.indicators import continuity

    return continuity(h.context(start, end))


FORTNIGHT = range(4, 18)  # 4–17 March: the first window


def test_the_window_is_fourteen_days_from_the_first_monday():
    h = History()
    h.provider()
    r = h.recipient("a", birth_year=1930)
    # 1 March by e1, 2–3 March by e2 (before the first Monday); 4–16 March by s1; 17 March: s1 at 08:00, last at 17:00
    _daily(h, r, range(1, 18), ("08:00", "17:00"), lambda d, t: "e1" if d == 1 else "e2" if d < 4 else "last" if (d, t) == (17, "17:00") else "s1")
    # the window 4–17 March: {s1, last} = 2 staff; 18–31 March has no visits, not eligible
    # (13-day windows: 4–16 March {s1} = 1 staff; 15 days: 4–18 March lacks visits on the 18th, no window;
    #  windows from the period's first day, 1–14 March: {e1, e2, s1} = 3 staff)
    assert _continuity(h) == {"continuity_median": 2.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_the_band_is_from_0700_up_to_not_including_2200():
    h = History()
    h.provider()
    edges = h.recipient("edges", birth_year=1930)
    _daily(h, edges, FORTNIGHT, ("07:00", "21:59"), lambda d, t: "a" if t == "07:00" else "b")
    # outside the band, so not counted as staff met: 06:59 by m and 22:00 by n
    _daily(h, edges, range(5, 6), ("06:59", "22:00"), lambda d, t: "m" if t == "06:59" else "n")
    early = h.recipient("early", birth_year=1930)  # 06:59 and 12:00: one visit a day in the band
    _daily(h, early, FORTNIGHT, ("06:59", "12:00"), lambda d, t: f"e{d}")
    late = h.recipient("late", birth_year=1930)  # 12:00 and 22:00: one visit a day in the band
    _daily(h, late, FORTNIGHT, ("12:00", "22:00"), lambda d, t: f"l{d}")
    # only 'edges' is eligible (07:00 and 21:59 are in [07:00, 22:00)): {a, b} = 2 staff
    # (a band 06:59–22:00 would count 'early', 14 staff, and m: median of 3 and 14 = 8.5;
    #  a band to 22:00 inclusive would count 'late', 14 staff, and n)
    assert _continuity(h) == {"continuity_median": 2.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_two_visits_on_every_one_of_the_fourteen_days():
    h = History()
    h.provider()
    twice = h.recipient("twice", birth_year=1930)
    _daily(h, twice, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"s{d % 3}")  # s0, s1, s2: 3 staff
    short = h.recipient("short", birth_year=1930)  # one visit only on 10 March
    _daily(h, short, FORTNIGHT, ("08:00",), lambda d, t: f"x{d % 5}")
    _daily(h, short, [d for d in FORTNIGHT if d != 10], ("17:00",), lambda d, t: f"x{d % 5}")
    gap = h.recipient("gap", birth_year=1930)  # no visit at all on 17 March, three on the other days
    _daily(h, gap, range(4, 17), ("08:00", "12:00", "17:00"), lambda d, t: f"g{d}")
    # only 'twice': 3 staff (2 visits on 13 days and 1 on one day is not eligible, nor 13 days of visits)
    # (at least one visit a day would count 'short', 5 staff: median of 3 and 5 = 4)
    assert _continuity(h) == {"continuity_median": 3.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_sixty_five_or_older_by_the_year_the_window_starts():
    h = History()
    h.provider()
    turns_65 = h.recipient("turns65", birth_year=1959)  # 2024 − 1959 = 65: counted
    _daily(h, turns_65, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"a{d % 3}")  # 3 staff
    turns_64 = h.recipient("turns64", birth_year=1960)  # 2024 − 1960 = 64: not counted
    _daily(h, turns_64, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"b{d % 5}")  # 5 staff
    # only the 65-year-old: 3 staff (65 − 1 as the limit would count both: median 4; 66 neither: none)
    assert _continuity(h) == {"continuity_median": 3.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_a_window_across_new_year_takes_the_age_of_the_year_it_starts():
    h = History()
    h.provider()
    r = h.recipient("born1960", birth_year=1960)
    # December 2024 – January 2025: windows from Monday 2 December: 2–15 Dec, 16–29 Dec, 30 Dec – 12 Jan, 13–26 Jan
    _daily(h, r, range(30, 32), ("08:00", "17:00"), lambda d, t: "s1", month="2024-12")
    _daily(h, r, range(1, 27), ("08:00", "17:00"), lambda d, t: "s1" if d < 13 else "s2", month="2025-01")
    # 30 Dec – 12 Jan starts in 2024: 2024 − 1960 = 64, not counted; 13–26 Jan: 2025 − 1960 = 65, {s2} = 1 staff
    assert _continuity(h, "2024-12", "2025-01") == {"continuity_median": 1.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_at_home_the_whole_fortnight():
    h = History()
    h.provider()
    people = {
        "home_on_day_1": ((date(2024, 3, 1), date(2024, 3, 4)), 2),  # away 1–3 March, home on the 4th: eligible
        "away_after": ((date(2024, 3, 18), date(2024, 3, 20)), 4),  # away from the 18th, the day after the window: eligible
        "last_night": ((date(2024, 3, 17), date(2024, 3, 18)), 6),  # away on the 17th, inside the window: not
        "first_day": ((date(2024, 3, 3), date(2024, 3, 5)), 8),  # away on the 4th, the window's first day: not
    }
    for name, ((start, end), n_staff) in people.items():
        r = h.recipient(name, birth_year=1930)
        _daily(h, r, FORTNIGHT, ("08:00", "17:00"), lambda d, t, name=name, n=n_staff: f"{name}{d % n}")
        h.stay(r, start, end)
    still_away = h.recipient("still_away", birth_year=1930)  # a stay from 16 March with no end yet: runs to the period's end
    _daily(h, still_away, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"o{d % 10}")
    still_away.start_stay(stay_id="open", kind=StayKind.hospital, start=date(2024, 3, 16), recorded_at=local("2024-03-16 09:00"))
    # eligible: home_on_day_1 (2 staff) and away_after (4 staff): median (2 + 4) / 2 = 3.0 (still_away is away from the 16th)
    # (a stay ending on the window's first day counted as overlapping would leave 4.0; one starting the day after, 2.0)
    assert _continuity(h) == {"continuity_median": 3.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 2}


def test_enrolled_on_or_before_the_windows_first_day():
    h = History()
    h.provider()
    on_time = h.recipient("on_time", birth_year=1930, enrolled_on=date(2024, 3, 4))
    _daily(h, on_time, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"a{d % 2}")  # 2 staff
    late = h.recipient("late", birth_year=1930, enrolled_on=date(2024, 3, 5))
    _daily(h, late, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"b{d % 6}")  # 6 staff
    # the departure day is the first day no longer enrolled (as a stay's end is the day home)
    stays_on = h.recipient("stays_on", birth_year=1930)
    _daily(h, stays_on, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"c{d % 4}")  # 4 staff
    stays_on.depart(departed_on=date(2024, 3, 18), reason=DepartureReason.moved, recorded_at=local("2024-03-18 09:00"))
    leaves = h.recipient("leaves", birth_year=1930)
    _daily(h, leaves, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"d{d % 8}")  # 8 staff
    leaves.depart(departed_on=date(2024, 3, 17), reason=DepartureReason.moved, recorded_at=local("2024-03-17 20:00"))
    # enrolled on the window's first day counts, a day later does not; departed on the day after the window
    # (18 March) counts, on its last day (17 March) does not: on_time (2 staff) and stays_on (4): median 3.0
    assert _continuity(h) == {"continuity_median": 3.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 2}


def test_only_whole_windows_inside_the_period_count():
    h = History()
    h.provider()
    # April 2024 starts on a Monday: windows 1–14 and 15–28 April; 29–30 April are in no window
    whole = h.recipient("whole", birth_year=1930)
    _daily(h, whole, range(15, 31), ("08:00", "17:00"), lambda d, t: "late" if d > 28 else f"w{d % 2}", month="2024-04")
    short = h.recipient("short", birth_year=1930)  # one visit on 1 April, two on 2–14 April: not eligible
    _daily(h, short, range(1, 15), ("08:00",), lambda d, t: "s", month="2024-04")
    _daily(h, short, range(2, 15), ("17:00",), lambda d, t: "s", month="2024-04")
    # whole: the window 15–28 April, {w0, w1} = 2 staff ('late' came on the 29th and 30th, in no window)
    assert _continuity(h, "2024-04", "2024-04") == {"continuity_median": 2.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_both_staff_of_a_double_staffed_visit_count_and_more_than_twenty_is_the_high_share():
    h = History()
    h.provider()
    young = h.recipient("young", birth_year=1980)  # under 65; b's first visit is here, so b is the first staff known
    h.performed(young, "y", "personal_care", "2024-03-01 08:00", 30, staff=("b",))
    pair = h.recipient("pair", birth_year=1930)
    for day in FORTNIGHT:  # 08:00 by a alone, 17:00 by a with b
        h.performed(pair, f"m{day}", "personal_care", f"2024-03-{day:02d} 08:00", 30, staff=("a",))
        h.performed(pair, f"e{day}", "personal_care", f"2024-03-{day:02d} 17:00", 30, staff=("a", "b"))
    many = h.recipient("many", birth_year=1930)  # 21 staff: k0 … k20
    _daily(h, many, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"k{(2 * (d - 4) + (t == '17:00')) % 21}")
    twenty = h.recipient("twenty", birth_year=1930)  # 20 staff: t0 … t19
    _daily(h, twenty, FORTNIGHT, ("08:00", "17:00"), lambda d, t: f"t{(2 * (d - 4) + (t == '17:00')) % 20}")
    from ersattning.indicators import continuity_from, window_counts

    windows = window_counts(h.context("2024-03", "2024-03"))
    # distinct staff 2 ({a, b}: b only ever came as the second staff), 20 and 21
    assert windows["distinct_staff"].tolist() == [2, 20, 21] and windows["windows"].tolist() == [1, 1, 1]
    # median 20; more than 20: 1 of 3 person-windows (20 itself is not above 20)
    assert continuity_from(windows) == {"continuity_median": 20.0, "continuity_share_above_20": 1 / 3, "continuity_person_windows": 3}


def test_an_unknown_birth_year_is_not_counted_as_65_or_older():
    h = History()
    h.provider()
    unknown = h.recipient("unknown", birth_year=0)
    _daily(h, unknown, FORTNIGHT, ("08:00", "17:00"), lambda d, t: "u")
    # birth year 0 means unknown (decisions without a birth year), not 2024 years old: no eligible window
    assert _continuity(h) == {"continuity_median": None, "continuity_share_above_20": None, "continuity_person_windows": 0}


# -- end dates: exclusive, as a stay's end is; `end_dates: through` for sources that mean the last day ----


def test_a_decisions_end_date_is_not_paid():
    h = History()
    h.provider()
    r = h.recipient("a", enrolled_on=date(2024, 3, 1))
    h.grant(r, "personal_care", 600, valid_from=date(2024, 3, 1), valid_to=date(2024, 3, 10))
    ctx = h.context("2024-03", "2024-03")
    # valid 1 March up to, not including, 10 March: 9 days of 31
    assert ctx.rm["decision_days"].tolist() == [9]
    s = GrantedTime.model_validate({"rates": SOLNA}).settle(ctx)
    # 600 min × 9/31 = 174.19 min; × 464 SEK/h / 60 = 1,347.10 (10 days would be 1,496.77)
    assert total(s) == 1347.10


DECISIONS_SV = (
    "Personnummer;Beslut;Insats;Beviljad tid (h);Från;Till\r\n"
    "19380312-1239;B-1;Omvårdnad;10,0;2024-03-01;2024-03-10\r\n"
    "194106054564;B-2;Omvårdnad;10,0;2024-03-01;\r\n"
)
STAYS_SV = "Personnummer;Typ;Från;Till\r\n193803121239;Sjukhus;2024-03-12;2024-03-14\r\n"
MAPPING_SV = """columns: {Personnummer: recipient, Beslut: decision_id, Insats: category, Beviljad tid (h): granted, Från: valid_from, Till: valid_to}
values: {category: {Omvårdnad: personal_care}}
units: {granted: decimal_hours}
decimal: ","
default_provider: P1
encoding: cp1252
delimiter: ";"
"""
STAY_MAPPING_SV = 'columns: {Personnummer: recipient, Typ: kind, Från: start, Till: end}\nvalues: {kind: {Sjukhus: hospital}}\nencoding: cp1252\ndelimiter: ";"\n'


def _import_sv(tmp_path, end_dates: str | None) -> str:
    from tests.test_cli import run

    store = f"sqlite:///{tmp_path / (end_dates or 'default')}.db"
    extra = f"end_dates: {end_dates}\n" if end_dates else ""
    decisions, stays = tmp_path / "beslut.csv", tmp_path / "vistelser.csv"
    decisions.write_bytes(DECISIONS_SV.encode("cp1252"))
    stays.write_bytes(STAYS_SV.encode("cp1252"))
    (tmp_path / "beslut.yaml").write_text(MAPPING_SV + extra, encoding="utf-8")
    (tmp_path / "vistelser.yaml").write_text(STAY_MAPPING_SV + extra, encoding="utf-8")
    env = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
    for kind, path, mapping in (("decisions", decisions, "beslut.yaml"), ("stays", stays, "vistelser.yaml")):
        done = run("import", str(path), "--kind", kind, "--mapping", str(tmp_path / mapping), "--store", store, env=env)
        assert done.returncode == 0 and f"imported {2 if kind == 'decisions' else 1}" in done.stdout, done.stdout + done.stderr
    return store


@pytest.mark.parametrize(
    ("end_dates", "decision_days", "days_at_home", "amount"),
    [
        # exclusive (the default): B-1 ("Till 2024-03-10") is in force 1–9 March, 9 days; the stay 12–13 March, 2 days
        # B-1: 600 × 9/31 = 174.19 min; B-2 (another person): 600 min all March; 774.19 min × 464 / 60 = 5,987.10
        (None, [9, 31], [29, 31], 5987.10),
        # through: B-1 is in force 1–10 March, 10 days; the stay 12–14 March, 3 days
        # B-1: 600 × 10/31 = 193.55 min; B-2: 600 min; 793.55 min × 464 / 60 = 6,136.77
        ("through", [10, 31], [28, 31], 6136.77),
    ],
)
def test_end_dates_that_mean_through_are_moved_to_the_day_after(tmp_path, end_dates, decision_days, days_at_home, amount):
    from ersattning import projection
    from ersattning.context import build_context
    from ersattning.store import open_store

    store = _import_sv(tmp_path, end_dates)
    proj = projection.load(open_store(store))
    ctx = build_context(proj, "2024-03", "2024-03")
    rm = ctx.rm.sort_values("decision_days")
    assert rm["decision_days"].tolist() == decision_days
    assert rm["days_at_home"].tolist() == days_at_home
    # granted_time pays the granted minutes of the days at home, per recipient-month
    s = GrantedTime.model_validate({"rates": SOLNA}).settle(ctx)
    assert total(s) == amount


# -- the day and time an uplift is taken from: the visit's registered start -------------------------

NIGHT_AND_HOLIDAYS = {
    "evening": {"start": "19:00", "end": "22:00", "share": 0.064},
    "night": {"start": "22:00", "end": "07:00", "share": 0.15},
    "weekend": 0.15,
    "holiday": 0.15,
    "major_holiday": 0.31,
}


def test_a_visit_across_midnight_takes_the_uplift_of_its_start_for_all_its_minutes():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "into_julafton", "personal_care", "2024-12-23 23:30", 60)  # Monday night → julafton 00:30
    h.performed(r, "out_of_annandag", "personal_care", "2024-12-26 23:30", 60)  # annandag jul → Friday 27 Dec 00:30
    h.performed(r, "into_saturday", "personal_care", "2024-03-08 21:30", 60)  # Friday evening → 22:30, into the night band
    s = performed_time(uplifts=NIGHT_AND_HOLIDAYS).settle(h.context("2024-03", "2024-12"))
    # each 60 min × 464 / 60 = 464.00; the whole visit takes its start's day and band:
    # 23 Dec 23:30 is a Monday night: 15 % (not julafton's 31 % for the 30 min after midnight) = 69.60
    # 26 Dec 23:30 is annandag jul: 31 % (also for the 30 min on Friday 27 Dec) = 143.84
    # Friday 21:30 is evening: 6.4 % = 29.696 → 29.70 (not the night's 15 % after 22:00, nor Saturday's)
    assert visit_amounts(s, "base") == [464.0, 464.0, 464.0]
    assert visit_amounts(s, "time_uplift") == [69.60, 143.84, 29.70]


def test_the_uplift_is_doubled_only_when_the_second_staff_is_paid():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "pair", "personal_care", "2024-03-09 10:00", 40, staff=("s1", "s2"))  # Saturday: weekend 15 %
    both = performed_time(uplifts=NIGHT_AND_HOLIDAYS).settle(h.context("2024-03", "2024-03"))
    # 40 × 464 / 60 = 309.33 for each staff; uplift 15 % × (309.33 + 309.33) = 92.80
    assert (visit_amounts(both, "base"), visit_amounts(both, "double_staffing"), visit_amounts(both, "time_uplift")) == ([309.33], [309.33], [92.80])
    one = performed_time(uplifts=NIGHT_AND_HOLIDAYS, pay_double_staffing=False).settle(h.context("2024-03", "2024-03"))
    # the second staff is not paid, nor is an uplift on their time: 15 % × 309.33 = 46.40; total 355.73
    assert (visit_amounts(one, "double_staffing"), visit_amounts(one, "time_uplift"), total(one)) == ([0.0], [46.40], 355.73)


# -- which days are major holidays (storhelg): the list in docs/models.md, each by its rule -----------

MAJOR_2024_2025 = {
    "nyårsdagen": (date(2024, 1, 1), date(2025, 1, 1)),  # 1 January
    "långfredagen": (date(2024, 3, 29), date(2025, 4, 18)),  # Easter Sunday − 2 (Easter 31 March 2024, 20 April 2025)
    "påskafton": (date(2024, 3, 30), date(2025, 4, 19)),  # Easter − 1
    "påskdagen": (date(2024, 3, 31), date(2025, 4, 20)),  # Easter Sunday
    "annandag påsk": (date(2024, 4, 1), date(2025, 4, 21)),  # Easter + 1
    "pingstafton": (date(2024, 5, 18), date(2025, 6, 7)),  # Easter + 48
    "pingstdagen": (date(2024, 5, 19), date(2025, 6, 8)),  # Easter + 49
    "midsommarafton": (date(2024, 6, 21), date(2025, 6, 20)),  # the Friday 19–25 June
    "midsommardagen": (date(2024, 6, 22), date(2025, 6, 21)),  # the Saturday 20–26 June
    "julafton": (date(2024, 12, 24), date(2025, 12, 24)),  # 24 December
    "juldagen": (date(2024, 12, 25), date(2025, 12, 25)),  # 25 December
    "annandag jul": (date(2024, 12, 26), date(2025, 12, 26)),  # 26 December
    "nyårsafton": (date(2024, 12, 31), date(2025, 12, 31)),  # 31 December
}
# public holidays that are not major: the holiday uplift; and days that are neither
HOLIDAYS_NOT_MAJOR = [date(2024, 1, 6), date(2024, 5, 1), date(2024, 5, 9), date(2024, 6, 6), date(2024, 11, 2), date(2025, 5, 29)]
ORDINARY = [date(2024, 1, 5), date(2024, 3, 28), date(2024, 4, 30), date(2024, 12, 23), date(2024, 12, 27), date(2025, 6, 9)]


def _documented_major_holidays() -> set[str]:
    """The names in the first column of docs/models.md's major-holiday table."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "models.md").read_text(encoding="utf-8")
    section = text.split("**Major holidays (storhelg).**", 1)[1].split("\n\n", 2)[1]
    return {line.split("|")[1].strip().strip("`") for line in section.splitlines()[2:] if line.startswith("|")}


def test_the_documented_major_holidays_are_the_ones_the_code_uses():
    from ersattning.calendar import MAJOR_HOLIDAYS

    assert _documented_major_holidays() == set(MAJOR_HOLIDAYS) == set(MAJOR_2024_2025)


@pytest.mark.parametrize(("name", "year"), [(n, y) for n in MAJOR_2024_2025 for y in (0, 1)])
def test_each_major_holiday_by_its_rule(name, year):
    from ersattning.calendar import day_kinds, swedish_holidays

    day = MAJOR_2024_2025[name][year]
    assert name in swedish_holidays(day.year)[day].split(" / ")
    weekend, holiday, major = day_kinds(np.array([day], dtype="datetime64[D]"))
    assert (holiday[0], major[0]) == (True, True)


@pytest.mark.parametrize(
    ("name", "day", "not_major"),
    [
        # midsommar at both ends of its window: Friday 19 June 2026 and Friday 25 June 2027 (18 and 24 June are ordinary)
        ("midsommarafton", date(2026, 6, 19), date(2026, 6, 18)),
        ("midsommardagen", date(2026, 6, 20), date(2026, 6, 27)),
        ("midsommarafton", date(2027, 6, 25), date(2027, 6, 18)),
        ("midsommardagen", date(2027, 6, 26), date(2027, 6, 19)),
        # an early Easter (28 March 2027): långfredagen 26 March, pingstafton 15 May (Easter + 48)
        ("långfredagen", date(2027, 3, 26), date(2027, 3, 25)),
        ("pingstafton", date(2027, 5, 15), date(2027, 5, 17)),
    ],
)
def test_major_holidays_at_the_edges_of_their_rules(name, day, not_major):
    from ersattning.calendar import day_kinds, swedish_holidays

    assert name in swedish_holidays(day.year)[day].split(" / ")
    _, _, major = day_kinds(np.array([day, not_major], dtype="datetime64[D]"))
    assert major.tolist() == [True, False]


def test_major_holidays_pay_the_major_uplift_and_other_days_do_not():
    h = History()
    h.provider()
    r = h.recipient("a")
    days = [d for pair in MAJOR_2024_2025.values() for d in pair] + HOLIDAYS_NOT_MAJOR + ORDINARY
    for n, day in enumerate(days):
        h.performed(r, f"v{n}", "personal_care", f"{day} 10:00", 60)
    s = performed_time(uplifts={"holiday": 0.15, "major_holiday": 0.31}).settle(h.context("2024-01", "2025-12"))
    by_day = dict(zip([str(d) for d in s.ctx.v_day], visit_amounts(s, "time_uplift"), strict=True))
    # 60 min × 464 / 60 = 464.00: major holidays 31 % = 143.84; other holidays 15 % = 69.60; ordinary days 0
    # (weekends are not given a share here: 2024-01-06 and 2024-11-02 are Saturdays and holidays, 15 %)
    assert [by_day[str(d)] for pair in MAJOR_2024_2025.values() for d in pair] == [143.84] * 26
    assert [by_day[str(d)] for d in HOLIDAYS_NOT_MAJOR] == [69.60] * 6
    assert [by_day[str(d)] for d in ORDINARY] == [0.0] * 6


def test_a_period_with_a_single_whole_window():
    h = History()
    h.provider()
    r = h.recipient("a", birth_year=1930)
    # February 2024: the first Monday is 5 February; 5–18 February is the only whole window (19 Feb – 3 Mar is not)
    _daily(h, r, range(5, 19), ("08:00", "17:00"), lambda d, t: f"s{d % 3}", month="2024-02")
    assert _continuity(h, "2024-02", "2024-02") == {"continuity_median": 3.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_a_windows_provider_is_the_one_of_the_month_it_starts_in():
    from ersattning.indicators import continuity_by_provider

    h = History()
    h.provider("P1")
    h.provider("P2")
    r = h.recipient("a", birth_year=1930, provider="P1")
    r.choose_provider("P2", date(2024, 4, 1), local("2024-03-25 09:00"))
    # windows from Monday 4 March: 4–17 Mar, 18–31 Mar, 1–14 Apr, 15–28 Apr; visits 18 March – 14 April
    _daily(h, r, range(18, 32), ("08:00", "17:00"), lambda d, t: f"m{d % 2}")  # 18–31 March: 2 staff
    _daily(h, r, range(1, 15), ("08:00", "17:00"), lambda d, t: f"a{d % 5}", month="2024-04")  # 1–14 April: 5 staff
    ctx = h.context("2024-03", "2024-04")
    # 18–31 March starts in March, with P1: median 2; 1–14 April starts in April, with P2: median 5
    medians = dict(zip(ctx.provider_ids, continuity_by_provider(ctx), strict=True))
    assert (medians["P1"], medians["P2"]) == (2.0, 5.0)


# -- explain: notice in h:min, which uplift and why, the true reason for a month without a decision ---


def _default_comparison(h: History, start: str, end: str | None = None):
    """The bundled default scenario settled over the months the history covers (compare stops on others)."""
    from ersattning.compare import compare
    from ersattning.scenario import Period, load_scenario

    h.context()
    return compare(load_scenario("default").with_period(Period(start=start, end=end or start)), h.store)


def _visit_uuid(c, n: int) -> str:
    from uuid import UUID

    k = c.ctx.projection.visit_keys.iloc[n]
    return str(UUID(bytes=int(k["key_hi"]).to_bytes(8, "big") + int(k["key_lo"]).to_bytes(8, "big")))


def _per_minute_rules(c, n: int) -> tuple[dict, list[str]]:
    from ersattning.explain import explain_visit

    e = explain_visit(c, _visit_uuid(c, n))
    return e.subject, next(m for m in e.models if m["model"] == "per_minute")["rules"]


def test_explain_shows_the_notice_in_hours_and_minutes_against_the_limit(tmp_path):
    from ersattning.store import open_store
    from tests.test_cli import run

    store = f"sqlite:///{tmp_path / 'x.db'}"
    h = History(open_store(store))
    h.provider()
    r = h.recipient("a")
    h.cancelled(r, "short", "personal_care", "2024-03-05 10:00", 30, notice_hours=23 + 59 / 60)
    h.cancelled(r, "day", "personal_care", "2024-03-06 10:00", 30, notice_hours=24)
    h.performed(r, "tie", "personal_care", "2024-03-07 10:00", 12.5)
    c = _default_comparison(h, "2024-03")
    subject, rules = _per_minute_rules(c, 0)
    # default: notice under 24 h pays personal care at 50 %: 30 × 0.5 = 15 min × 516 SEK/h (private) / 60 = 129.00
    assert subject["cancelled"] == "by recipient (declined), 23 h 59 min before"
    assert rules[0] == "cancelled by the recipient with 23 h 59 min notice, under the 24 h 00 min limit: 15.0 min of the planned 30 × 516 SEK/h = 129.00 SEK"
    subject, rules = _per_minute_rules(c, 1)
    assert subject["cancelled"] == "by recipient (declined), 24 h 00 min before"
    assert rules[0] == "not paid: cancelled by the recipient with 24 h 00 min notice, not under the 24 h 00 min limit"
    # the same on the command line
    out = run("explain", "--visit", _visit_uuid(c, 1), "--store", store, "--period", "2024-03")
    assert out.returncode == 0, out.stderr
    assert "cancelled: by recipient (declined), 24 h 00 min before" in out.stdout and "not under the 24 h 00 min limit" in out.stdout
    # a tie through the command line: 12 min 30 s pays 13 min; 13 × 516 / 60 = 111.80
    tie = run("explain", "--visit", _visit_uuid(c, 2), "--store", store, "--period", "2024-03")
    assert "registered 12 min 30 s → 13 min (rounded to the nearest 1 min, a tie half up; minimum 0)" in tie.stdout, tie.stdout + tie.stderr
    assert "base: 13.0 min × 516 SEK/h (personal care, private) = 111.80 SEK" in tie.stdout


def test_explain_names_the_uplift_paid_and_those_that_lost():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "julafton", "personal_care", "2024-12-24 10:00", 60)  # a Tuesday, julafton
    h.performed(r, "saturday_evening", "personal_care", "2024-03-09 20:00", 60)
    h.performed(r, "tuesday", "personal_care", "2024-03-05 10:00", 60)
    december, c = _default_comparison(h, "2024-12"), _default_comparison(h, "2024-03")  # the months with visits
    # default (private rates): 60 min × 516 SEK/h = 516.00; julafton: major holiday 31 % = 159.96
    _, rules = _per_minute_rules(december, 0)
    assert rules[0] == "registered 60 min → 60 min (rounded to the nearest 1 min, a tie half up; minimum 0)"
    assert rules[2] == (
        "time uplift: major holiday (julafton 2024-12-24): +31 % of 516.00 SEK = 159.96 SEK, by the visit's start 2024-12-24 10:00 for all its minutes"
        " (also applies, the highest is paid: holiday (julafton 2024-12-24) +15 %)"
    )
    # Saturday 20:00: weekend 15 % = 77.40 is paid; the evening's 6.4 % also applies and loses
    _, rules = _per_minute_rules(c, 1)
    uplift = next(line for line in rules if line.startswith("time uplift"))
    assert uplift.startswith("time uplift: weekend (Saturday 2024-03-09): +15 % of 516.00 SEK = 77.40 SEK")
    assert uplift.endswith("(also applies, the highest is paid: evening (19:00–22:00) +6.4 %)")
    _, rules = _per_minute_rules(c, 2)
    assert not any(line.startswith("time uplift") for line in rules)  # a Tuesday morning: none


def test_explain_gives_the_true_reason_for_a_month_without_a_decision():
    from ersattning.explain import explain_recipient_month

    h = History()
    h.provider()
    none = h.recipient("none", enrolled_on=date(2024, 1, 1))
    ended = h.recipient("ended", enrolled_on=date(2024, 1, 1))
    h.grant(ended, "personal_care", 600, valid_from=date(2024, 1, 1), valid_to=date(2024, 3, 10))
    later = h.recipient("later", enrolled_on=date(2024, 1, 1))
    h.grant(later, "personal_care", 600, valid_from=date(2024, 6, 1))
    gap = h.recipient("gap", enrolled_on=date(2024, 1, 1))
    h.grant(gap, "personal_care", 600, valid_from=date(2024, 1, 1), valid_to=date(2024, 3, 1), decision_id="g1")
    h.grant(gap, "personal_care", 600, valid_from=date(2024, 5, 1), decision_id="g2")
    for r in (none, ended, later, gap):
        h.performed(r, f"{r.pseudonym}-v", "personal_care", "2024-04-05 10:00", 60)
    h.performed(none, "none-march", "personal_care", "2024-03-05 10:00", 60)  # a visit in March too: the period is covered
    c = _default_comparison(h, "2024-03", "2024-04")
    expected = {
        "none": "none imported for this recipient: import its decisions with ersattning import --kind decisions",
        "ended": "ended on 2024-03-10 (in force up to 2024-03-09: an end date is not paid)",
        "later": "not yet started: the first decision starts on 2024-06-01",
        "gap": "between decisions: one ended on 2024-03-01, the next starts on 2024-05-01",
    }
    for who, reason in expected.items():
        e = explain_recipient_month(c, who, "2024-04")
        assert e.subject["decisions"] == f"none in force: {reason}"
        trust = next(m for m in e.models if m["model"] == "trust")
        assert trust["total_sek"] == 0 and trust["rules"][0] == f"no decision in force this month: trust_based prices the decision's granted time, so it pays 0.00 SEK here ({reason})"
    # March: 'ended' is in force 1–9 March
    assert explain_recipient_month(c, "ended", "2024-03").subject["decisions"] == "in force 9 of 31 days"

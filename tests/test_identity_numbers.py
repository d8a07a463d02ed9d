"""Swedish identity numbers: every written form of one person gives one canonical form (docs/personal-data.md)."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ersattning.ingest.cells import personnummer_in
from ersattning.privacy.identity_numbers import (
    MASK,
    _luhn_ok,
    canonical,
    canonical_ids,
    canonical_numbers,
    find_personnummer,
    is_personnummer,
    mask_numbers,
    shaped_ids,
)


def check_digit(nine: str) -> str:
    return next(c for c in "0123456789" if _luhn_ok(nine + c))


def forms(birth: date, serial: int, coordination: bool, on: date) -> tuple[str, list[str]]:
    """The canonical form and every way of writing the number as of ``on``."""
    day = birth.day + (60 if coordination else 0)
    body = f"{birth.year % 100:02d}{birth.month:02d}{day:02d}{serial:03d}"
    ten = body + check_digit(body)
    twelve = f"{birth.year // 100}{ten}"
    sep = "+" if on.year - birth.year >= 100 else "-"
    written = [twelve, f"{twelve[:8]}-{twelve[8:]}", f"{ten[:6]}{sep}{ten[6:]}"]
    if sep == "-":
        written.append(ten)  # no separator: read as under 100
    return twelve, written


people = st.builds(
    lambda birth, serial, coordination, age_days: (birth, serial, coordination, birth + timedelta(days=age_days)),
    st.dates(date(1890, 1, 1), date(2024, 12, 31)),
    st.integers(0, 999),
    st.booleans(),
    st.integers(0, 365 * 105),
)


@settings(max_examples=300, deadline=None)
@given(people)
def test_every_written_form_of_one_number_has_one_canonical_form(person):
    birth, serial, coordination, on = person
    expected, written = forms(birth, serial, coordination, on)
    for text in written:
        assert is_personnummer(text), text
        assert canonical(text, on) == expected, (text, on)
        assert canonical(f"  {text} ", on) == expected
        assert find_personnummer(pd.Series([f"Enskild firma {text}", "x"], dtype=object)).tolist() == [True, False]
    ref = np.full(len(written), np.datetime64(on, "D"))
    assert canonical_numbers(np.array(written, dtype=object), ref).tolist() == [expected] * len(written)


@settings(max_examples=200, deadline=None)
@given(people, st.integers(1, 9))
def test_a_wrong_check_digit_is_not_a_number(person, delta):
    birth, serial, coordination, on = person
    expected, written = forms(birth, serial, coordination, on)
    for text in written:
        wrong = text[:-1] + str((int(text[-1]) + delta) % 10)
        assert not is_personnummer(wrong)
        assert canonical(wrong, on) is None
        assert not find_personnummer(pd.Series([wrong], dtype=object))[0]


@given(st.sampled_from(["1300", "0001", "0132", "0230", "0431", "0600", "0692", "1160"]), st.integers(0, 99), st.integers(0, 999))
def test_impossible_dates_are_not_numbers(mmdd, yy, serial):
    body = f"{yy:02d}{mmdd}{serial:03d}"
    ten = body + check_digit(body)
    for text in (ten, f"{ten[:6]}-{ten[6:]}", f"19{ten}", f"20{ten[:6]}-{ten[6:]}"):
        assert not is_personnummer(text)
        assert canonical(text, date(2024, 6, 1)) is None


def test_the_forms_a_tester_found_missed_are_recognised():
    # With the century, the month used to be read from the day digits: these were all missed.
    for text in ("19430514-1139", "194305141139", "197010632391", "19701063-2391"):
        assert is_personnummer(text), text
    on = date(2024, 3, 1)
    assert {canonical(t, on) for t in ("19430514-1139", "194305141139", "430514-1139", "4305141139")} == {"194305141139"}
    assert canonical("701063-2391", on) == "197010632391"  # samordningsnummer: day 63 = 3 + 60, kept
    assert canonical("191212121212", on) == "191212121212"
    assert canonical("121212+1212", on) == "191212121212"  # '+': 100 or older in 2024
    assert canonical("121212-1212", on) == "201212121212"  # '-': under 100, so 2012


def test_the_century_of_a_ten_digit_number_follows_the_event_date():
    body = "250601123"
    ten = body + check_digit(body)  # 250601-123C
    assert canonical(ten, date(2024, 12, 31)) == "19" + ten  # 2025 is after the event: 1925
    assert canonical(ten, date(2025, 6, 1)) == "20" + ten  # born that day
    assert canonical(ten, date(2025, 5, 31)) == "19" + ten  # the day before: not yet born in 2025
    got = canonical_numbers(np.array([ten, ten, ten], dtype=object), np.array(["2024-12-31", "2025-06-01", "2025-05-31"], dtype="datetime64[D]"))
    assert got.tolist() == ["19" + ten, "20" + ten, "19" + ten]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=14), people.map(lambda p: forms(p[0], p[1], p[2], p[3])[1][-1])), max_size=30), st.dates(date(1990, 1, 1), date(2030, 1, 1)))
def test_the_vectorised_form_equals_one_by_one(values, on):
    got = canonical_numbers(np.array(values, dtype=object), np.full(len(values), np.datetime64(on, "D")))
    assert got.tolist() == [canonical(v, on) for v in values]


def test_a_ten_digit_number_whose_century_falls_outside_1800_2099_is_not_a_number():
    # '+' on 1995-01-01 for a person born on 1 Dec of a year ending in 96: 1896 is under 100 years back, so 1796
    assert canonical("961201+0000", date(1995, 1, 1)) is None
    assert canonical_numbers(np.array(["961201+0000"], dtype=object), np.array(["1995-01-01"], dtype="datetime64[D]")).tolist() == [None]


# --- every written form (issue 25; docs/personal-data.md)

SEPARATORS = [" ", "  ", " - ", "\u00a0", "\u202f", "\u2007", "\t", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\ufe63", "\uff0d", "\u00ad", " \u2013 ", "\u00a0-\u00a0"]
FULLWIDTH = str.maketrans("0123456789+-", "０１２３４５６７８９＋－")


def written_forms(birth: date, serial: int, coordination: bool, on: date) -> tuple[str, list[str]]:
    """The canonical form and every way the issue lists of writing it: any separator, dashes between the
    date's parts, fullwidth digits; 10 and 12 digits (10 with '+' from the year the person turns 100)."""
    twelve, plain = forms(birth, serial, coordination, on)
    ten = twelve[2:]
    old = on.year - birth.year >= 100
    out = list(plain)
    out += [f"{twelve[:8]}{s}{twelve[8:]}" for s in SEPARATORS]
    out += [f"{twelve[:4]}-{twelve[4:6]}-{twelve[6:8]}-{twelve[8:]}", f"{twelve[:4]}\u2013{twelve[4:6]}\u2013{twelve[6:8]} {twelve[8:]}", twelve.translate(FULLWIDTH)]
    if old:
        out += [f"{ten[:6]} + {ten[6:]}", f"{ten[:6]}\uff0b{ten[6:]}", f"{ten[:2]}-{ten[2:4]}-{ten[4:6]}+{ten[6:]}"]
    else:
        out += [f"{ten[:6]}{s}{ten[6:]}" for s in SEPARATORS] + [f"{ten[:2]}-{ten[2:4]}-{ten[4:6]}-{ten[6:]}", f"{ten[:6]}-{ten[6:]}".translate(FULLWIDTH)]
    return twelve, out


@settings(max_examples=150, deadline=None)
@given(people)
def test_every_written_form_is_found_masked_and_canonical(person):
    birth, serial, coordination, on = person
    expected, written = written_forms(birth, serial, coordination, on)
    for text in written:
        assert is_personnummer(text), repr(text)
        assert canonical(text, on) == expected, (repr(text), on)
        assert canonical(f"\u00a0{text} ", on) == expected
        assert find_personnummer(pd.Series([f"Enskild firma {text} AB", "x"], dtype=object)).tolist() == [True, False], repr(text)
        assert mask_numbers(f"fil {text}.csv, rad 3") == f"fil {MASK}.csv, rad 3", repr(text)
    ref = np.full(len(written), np.datetime64(on, "D"))
    assert canonical_numbers(np.array(written, dtype=object), ref).tolist() == [expected] * len(written)
    assert canonical_ids(np.array(written, dtype=object), ref).tolist() == [expected] * len(written)  # one person, one pseudonym
    assert shaped_ids(np.array(written, dtype=object)).all()
    arrow = pa.array([f"not {t}." for t in written] + ["2024-03-10 08:00", "V1234567"], pa.string())
    assert personnummer_in(arrow).tolist() == [True] * len(written) + [False, False]  # the import's byte and RE2 screen


@settings(max_examples=100, deadline=None)
@given(people, st.integers(1, 9))
def test_a_wrong_check_digit_is_not_a_number_in_any_written_form(person, delta):
    birth, serial, coordination, on = person
    _, written = written_forms(birth, serial, coordination, on)
    for text in written:
        wrong = text[:-1] + str((unicodedata.digit(text[-1]) + delta) % 10)
        assert not is_personnummer(wrong) and canonical(wrong, on) is None, repr(wrong)
        assert mask_numbers(f"a {wrong}") == f"a {wrong}"


def test_the_tester_s_forms_are_one_person():
    on = date(2024, 3, 1)
    for text in ("580505 7774", "580505\u20137774", "19580505 - 7774", "1958-05-05-7774", "５８０５０５－７７７４", "580505\u22127774", "580505\u20117774"):
        assert canonical(text, on) == "195805057774", repr(text)
    assert canonical("19720516 - 2014", on) == canonical("72-05-16-2014", on) == "197205162014"


def test_every_unicode_dash_is_a_separator():
    dashes = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Pd"] + ["\u2212", "\u207b", "\u208b", "\u00ad"]
    for dash in dashes:
        assert canonical(f"580505{dash}7774", date(2024, 3, 1)) == "195805057774", hex(ord(dash))
        assert mask_numbers(f"x 580505{dash}7774") == f"x {MASK}", hex(ord(dash))


def test_ordinary_numbers_are_not_numbers():
    ordinary = ["2024-03-10 08:00", "2024-03-10", "08:00-16:30", "070-123 45 67", "+46 70 123 45 67", "1 234 567,50", "12345678", "V-2024-03-10-17", "0.5 h", "2024-13-45-1234"]
    assert not find_personnummer(pd.Series(ordinary, dtype=object)).any()
    assert [mask_numbers(t) for t in ordinary] == ordinary
    assert not personnummer_in(pa.array(ordinary, pa.string())).any()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789 -+:\t\u2013\u00a0１aB", max_size=24),
            st.tuples(st.text(alphabet="0123 -:aB", max_size=4), people.flatmap(lambda p: st.sampled_from(written_forms(*p)[1])), st.text(alphabet="0123 -:aB", max_size=4)).map("".join),
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 3),
)
def test_the_import_screen_misses_nothing_its_pattern_finds(cells, skip):
    """The byte-level pre-screen only saves work: it flags exactly the cells the RE2 pattern matches (any slice)."""
    import pyarrow.compute as pc

    from ersattning.ingest.cells import _pnr_screen
    from ersattning.privacy.identity_numbers import PNR_RE2

    arr = pa.array(cells, pa.string()).slice(min(skip, len(cells) - 1))
    assert _pnr_screen(arr).tolist() == pc.match_substring_regex(arr, PNR_RE2).fill_null(False).to_numpy(zero_copy_only=False).tolist()
    assert find_personnummer(pd.Series(arr.to_pylist(), dtype=object)).tolist() == personnummer_in(arr).tolist()

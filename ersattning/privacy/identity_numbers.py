"""Swedish personal identity numbers (personnummer, samordningsnummer): finding and normalising them.

The rules (docs/personal-data.md):

- A number is ``YYYYMMDDNNNC`` (12 digits) or ``YYMMDDNNNC`` (10 digits), with ``-``, ``+`` or
  nothing before the last four digits; written in any form (:func:`plain_form`): blanks (also
  no-break), any Unicode dash, hyphen or minus, `` - ``, dashes between the date's parts, fullwidth
  or other Unicode digits. ``C`` is a Luhn check digit over the 10-digit form.
- ``MM`` is 01-12 and ``DD`` a day that exists in that month and year; a samordningsnummer
  (coordination number) has the day plus 60 (61-91).
- A 12-digit number names its century (18, 19 or 20). A 10-digit one does not: its birth year is
  the latest year ending in ``YY`` that is not after the reference date's year (the date of the
  event the number came with), one hundred years earlier with ``+`` (which is written from the
  year the person turns 100), and another hundred years earlier if that birth date would fall
  after the reference date (nobody is served before they are born).

One person has one canonical form, ``YYYYMMDDNNNC`` (the day kept +60 for a samordningsnummer),
so every way of writing their number gives one pseudonym. These numbers must never reach a file
in clear: :func:`find_personnummer` and :func:`personnummer_columns` find them anywhere in a
value, even in free text; :func:`canonical_numbers` turns whole-cell numbers into the canonical
form, and :func:`canonical_ids` does so for the ids an import pseudonymises; :func:`mask_numbers`
and :func:`masked_cells` replace numbers by :data:`MASK` in quarantined rows and messages.

``python-stdnum`` (``stdnum.se.personnummer``) was considered: its version 2.2 rejects
samordningsnummer (day + 60) and infers a 10-digit number's century from today's date rather
than from the event's, so the rules are implemented here and tested on their own.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Written forms (docs/personal-data.md): between the date and the last four digits any run of up to
# three blanks around one dash/hyphen/minus or '+', or blanks alone; a dash between the date's parts;
# any Unicode decimal digits (fullwidth too). As code point ranges, so that the same classes can be
# written for Python's re and for RE2 (Arrow's regex engine).
_BLANKS: tuple[tuple[int, int], ...] = (
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200B),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x2060), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)
"""Whitespace, the no-break spaces and the invisible zero-width space, word joiner and BOM."""
_DASH_POINTS: tuple[tuple[int, int], ...] = (
    (0x2D, 0x2D), (0xAD, 0xAD), (0x2D7, 0x2D7), (0x58A, 0x58A), (0x5BE, 0x5BE), (0x1400, 0x1400),
    (0x1806, 0x1806), (0x2010, 0x2015), (0x2043, 0x2043), (0x207B, 0x207B), (0x208B, 0x208B),
    (0x2212, 0x2212), (0x2796, 0x2796), (0x2E17, 0x2E17), (0x2E1A, 0x2E1A), (0x2E3A, 0x2E3B),
    (0x2E40, 0x2E40), (0x2E5D, 0x2E5D), (0x301C, 0x301C), (0x3030, 0x3030), (0x30A0, 0x30A0),
    (0xFE31, 0xFE32), (0xFE58, 0xFE58), (0xFE63, 0xFE63), (0xFF0D, 0xFF0D), (0x10EAD, 0x10EAD),
)
"""Every Unicode dash (category Pd), the minus signs, the soft hyphen, the hyphen bullet."""
_PLUS_POINTS: tuple[tuple[int, int], ...] = ((0x2B, 0x2B), (0xFE62, 0xFE62), (0xFF0B, 0xFF0B))


def _python_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "[" + "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]"


def _re2_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


def _body(digit: str, blank: str, dash: str, plus: str) -> str:
    """A number as written: (CC)YY, MM, DD (a dash may stand between them), a separator, NNNC."""
    gap = f"{blank}{{0,3}}"
    sep = f"(?:{gap}(?:{dash}|{plus}){gap}|{blank}{{1,3}})?"
    return f"(?:{digit}{{2}})?{digit}{{2}}{dash}?{digit}{{2}}{dash}?{digit}{{2}}{sep}{digit}{{4}}"


_PY_BLANK, _PY_DASH, _PY_PLUS = _python_class(_BLANKS), _python_class(_DASH_POINTS), _python_class(_PLUS_POINTS)
_PY_BODY = _body(r"\d", _PY_BLANK, _PY_DASH, _PY_PLUS)

PNR_PATTERN: re.Pattern[str] = re.compile(rf"(?<!\d)(?P<pnr>{_PY_BODY})(?!\d)")
"""A candidate personnummer/samordningsnummer in any written form (see :func:`plain_form`)."""

PNR_RE2: str = _body(r"\p{Nd}", _re2_class(_BLANKS), _re2_class(_DASH_POINTS), _re2_class(_PLUS_POINTS))
"""The same candidate as an RE2 pattern (Arrow's ``match_substring_regex``): a cell that holds no match holds no number."""

_WRITTEN = re.compile(f"{_PY_BLANK}*{_PY_BODY}{_PY_BLANK}*")
_PLUS_SIGN = re.compile(_PY_PLUS)
_MAYBE = re.compile(_PY_BODY)  # a cheap search before the exact one (no look-arounds)
_WHOLE = re.compile(r"(?P<century>\d{2})?(?P<yy>\d{2})(?P<mmdd>\d{4})(?P<sep>[-+]?)(?P<serial>\d{4})")
_ASCII_DIGIT = re.compile(r"[0-9]")


def plain_form(text: Any) -> str | None:
    """A whole-cell number in any written form as ASCII digits with ``+`` before the last four if it was
    written with one (``YYMMDD+NNNC``), else digits only; None if ``text`` is not shaped as a number.

    ``１９７２０５１６ – 2014``, ``72-05-16-2014`` and ``720516\u00a02014`` all become ``197205162014`` or
    ``7205162014``: only this form is checked and canonicalised, so every way of writing gives one person.
    """
    if not isinstance(text, str) or not _WRITTEN.fullmatch(text):
        return None
    digits = "".join(str(unicodedata.digit(c)) for c in text if c.isdecimal()) if not text.isascii() else "".join(_ASCII_DIGIT.findall(text))
    return f"{digits[:-4]}+{digits[-4:]}" if _PLUS_SIGN.search(text) else digits


_CENTURIES = (18, 19, 20)
_COORDINATION = 60  # a samordningsnummer's day is the day of birth + 60


def _luhn_ok(ten: str) -> bool:
    """The Luhn check over the 10-digit form ``YYMMDDNNNC``."""
    total = 0
    for i, ch in enumerate(ten):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return total % 10 == 0


def _month_day(mmdd: str) -> tuple[int, int]:
    """Month and day of birth (the day less 60 for a samordningsnummer)."""
    month, day = int(mmdd[:2]), int(mmdd[2:])
    return month, day - _COORDINATION if day > _COORDINATION else day


def _date_exists(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _date_ok(digits: str) -> bool:
    """Whether the date part of a 10- or 12-digit number (separator removed) exists in some allowed century."""
    if len(digits) == 12:
        if int(digits[:2]) not in _CENTURIES:
            return False
        years = [int(digits[:4])]
    else:
        years = [c * 100 + int(digits[:2]) for c in _CENTURIES]
    month, day = _month_day(digits[-8:-4])
    return any(_date_exists(year, month, day) for year in years)


def is_personnummer(text: Any) -> bool:
    """Whether ``text`` as a whole is a valid personnummer or samordningsnummer (date and Luhn check digit)."""
    plain = plain_form(text)
    if plain is None:
        return False
    digits = plain.replace("+", "")
    return _date_ok(digits) and _luhn_ok(digits[-10:])


def _birth_year(yy: int, month: int, day: int, plus: bool, on: date) -> int:
    """The birth year of a 10-digit number, relative to the reference date ``on`` (see the module's rules)."""
    year = on.year - (on.year - yy) % 100
    if plus:
        year -= 100
    if (year, month, day) > (on.year, on.month, on.day):
        year -= 100
    return year


def canonical(text: Any, on: date | None = None) -> str | None:
    """The canonical form ``YYYYMMDDNNNC`` of ``text`` if it is, as a whole, a valid identity number; else None.

    ``on`` is the reference date for a 10-digit number's century (default: today).
    """
    m = _WHOLE.fullmatch(plain_form(text) or "")
    if m is None:
        return None
    mmdd, serial = m["mmdd"], m["serial"]
    if not _luhn_ok(m["yy"] + mmdd + serial):
        return None
    month, day = _month_day(mmdd)
    if m["century"] is not None:
        if int(m["century"]) not in _CENTURIES:
            return None
        year = int(m["century"] + m["yy"])
    else:
        if not 1 <= month <= 12:
            return None
        year = _birth_year(int(m["yy"]), month, day, m["sep"] == "+", on or date.today())
        if year // 100 not in _CENTURIES:  # as for 12 digits: born in the 1800s, 1900s or 2000s
            return None
    if not _date_exists(year, month, day):
        return None
    return f"{year:04d}{mmdd}{serial}"


def canonical_numbers(values: pd.Series | np.ndarray, on: np.ndarray | date | None = None) -> np.ndarray:
    """:func:`canonical` of every cell (None where a cell is not an identity number as a whole).

    ``on`` is the reference date of each row (``datetime64``, any unit) or one date for all.
    Each distinct value is parsed once, and each distinct (value, birth year) pair formatted once,
    so a column of millions of rows costs a few numpy passes plus work per distinct person.
    """
    data = values.array if isinstance(values, pd.Series) else values
    codes, uniques = pd.factorize(np.asarray(data, dtype=object), use_na_sentinel=True)
    n = len(codes)
    out = np.full(n, None, dtype=object)
    if not len(uniques):
        return out
    texts = pd.Series([plain_form(u) for u in np.asarray(uniques, dtype=object)], dtype="string")
    parts = texts.str.extract(f"^{_WHOLE.pattern}$")
    matched = parts["mmdd"].notna().to_numpy()
    if not matched.any():
        return out
    u = len(uniques)
    fixed = np.full(u, None, dtype=object)  # the canonical form of 12-digit numbers (no reference date needed)
    ten = np.zeros(u, dtype=bool)  # 10-digit numbers that pass the check digit and have a month: century per row
    yy = np.zeros(u, dtype=np.int64)
    month = np.zeros(u, dtype=np.int64)
    day = np.zeros(u, dtype=np.int64)
    plus = np.zeros(u, dtype=bool)
    for i in np.flatnonzero(matched).tolist():
        century, y2, mmdd, sep, serial = (parts.at[i, k] for k in ("century", "yy", "mmdd", "sep", "serial"))
        if not _luhn_ok(y2 + mmdd + serial):
            continue
        if isinstance(century, str):
            fixed[i] = canonical(century + y2 + mmdd + serial)
            continue
        mo, d = _month_day(mmdd)
        if 1 <= mo <= 12 and 1 <= d <= 31:
            ten[i], yy[i], month[i], day[i], plus[i] = True, int(y2), mo, d, sep == "+"
    present = codes >= 0
    out[present] = fixed[codes[present]]
    rows = np.flatnonzero(present)
    rows = rows[ten[codes[rows]]]
    if not len(rows):
        return out
    if on is None:
        on = date.today()
    if isinstance(on, date):
        ref = np.full(len(rows), np.datetime64(on, "D"))
    else:
        ref = np.asarray(on)[rows].astype("datetime64[D]")
    if np.isnat(ref).any():
        raise ValueError("canonical_numbers: a 10-digit identity number needs a reference date")
    c = codes[rows]
    ref_year = ref.astype("datetime64[Y]").astype(np.int64) + 1970
    ref_md = (ref.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100 + (ref - ref.astype("datetime64[M]")).astype(np.int64) + 1
    year = ref_year - (ref_year - yy[c]) % 100 - 100 * plus[c]
    birth_md = month[c] * 100 + day[c]
    year -= 100 * ((year > ref_year) | ((year == ref_year) & (birth_md > ref_md)))
    pair_codes, pairs = pd.factorize(c * 10_000 + year)
    formatted = np.empty(len(pairs), dtype=object)
    for k, key in enumerate(pairs.tolist()):
        i, y = divmod(int(key), 10_000)
        formatted[k] = canonical(f"{y:04d}{parts.at[i, 'mmdd']}{parts.at[i, 'serial']}")
    out[rows] = formatted[pair_codes]
    return out


def find_personnummer(values: pd.Series) -> np.ndarray:
    """True where the value (as a string) contains a valid personnummer anywhere, e.g. in a free-text note.

    The regular expression runs once per distinct value and the date/Luhn
    check once per distinct candidate, so long repetitive columns stay cheap.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    result = np.zeros(len(series), dtype=bool)
    codes, uniques = pd.factorize(series.array, use_na_sentinel=True)
    if len(uniques) == 0:
        return result
    texts = pd.Series(np.asarray(uniques, dtype=object)).astype("string")
    # a cheap vectorized screen first: only values with ten digits in a row (allowing one separator) can hold one
    maybe = texts.str.contains(_MAYBE, regex=True).fillna(False).to_numpy(dtype=bool)
    if not maybe.any():
        return result
    found = texts[maybe].str.extractall(PNR_PATTERN)["pnr"]
    if found.empty:
        return result
    cand_codes, candidates = pd.factorize(found.array)
    valid = np.fromiter((is_personnummer(c) for c in candidates), dtype=bool, count=len(candidates))
    rows = np.asarray(found.index.get_level_values(0))[valid[cand_codes]]
    unique_hit = np.zeros(len(uniques), dtype=bool)
    unique_hit[rows] = True
    present = codes >= 0
    result[present] = unique_hit[codes[present]]
    return result


def _may_hold_text(dtype: Any) -> bool:
    # Integers too: a spreadsheet turns 191212121212 into a number, and it is still a personnummer.
    return (
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or (pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))
    )


def personnummer_columns(frame: pd.DataFrame) -> list[str]:
    """Names of text-like (and integer) columns holding a valid personnummer somewhere: these must not be stored."""
    names: list[str] = []
    for i, name in enumerate(frame.columns):
        column = frame.iloc[:, i]
        if _may_hold_text(column.dtype) and find_personnummer(column).any() and name not in names:
            names.append(name)
    return names


_SHAPED = f"^{_re2_class(_BLANKS)}*{PNR_RE2}{_re2_class(_BLANKS)}*$"  # what may be a whole-cell number (RE2)


def shaped_ids(values: np.ndarray) -> np.ndarray:
    """Which values (distinct, not missing) may be a whole-cell identity number: a superset of what
    :func:`canonical` reads (any digits, blanks around), by RE2; only these need :func:`canonical_numbers`."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    try:
        text = pa.array(np.asarray(values, dtype=object), type=pa.string())
        return pc.match_substring_regex(text, _SHAPED).fill_null(False).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # values that are not all text
        return pd.Series(np.asarray(values, dtype=object), dtype=object).astype("string").str.fullmatch(_WRITTEN.pattern).fillna(False).to_numpy(dtype=bool)


def canonical_ids(values: pd.Series | np.ndarray, on: np.ndarray) -> np.ndarray:
    """Source ids with every whole-cell identity number in its canonical form, the rest as they are.

    This is what is pseudonymised: ``19430514-1139``, ``194305141139``, ``430514-1139`` and ``4305141139``
    (a person born in 1943, as of a date after 1943) are one person, one pseudonym. ``on`` is each row's
    reference date (the event's date, ``datetime64``); a row without one keeps its value (it is rejected
    for the missing date anyway). Each distinct value is looked at once; only rows whose value has the
    shape of a number reach :func:`canonical_numbers`, so ids that are not numbers cost one factorize.
    """
    data = np.asarray(values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values, dtype=object)
    codes, uniques = pd.factorize(data, use_na_sentinel=True)
    if not len(uniques):
        return data
    shaped_np = shaped_ids(np.asarray(uniques, dtype=object))
    if not shaped_np.any():
        return data
    ref = np.asarray(on).astype("datetime64[D]")
    rows = np.flatnonzero((codes >= 0) & np.append(shaped_np, False)[codes] & ~np.isnat(ref))
    if not len(rows):
        return data
    canon = canonical_numbers(data[rows], ref[rows])
    found = pd.notna(canon)
    out = data.copy()
    out[rows[found]] = canon[found]
    return out


MASK = "<identity number>"
"""What a quarantine file or a message shows instead of an identity number (docs/personal-data.md)."""


def mask_numbers(text: str) -> str:
    """``text`` with every valid identity number in it replaced by :data:`MASK` (messages, quarantined cells)."""
    if not isinstance(text, str) or not _MAYBE.search(text):
        return text
    return PNR_PATTERN.sub(lambda m: MASK if is_personnummer(m["pnr"]) else m[0], text)



def masked_cells(values: list[Any]) -> list[Any]:
    """Cells with their identity numbers masked, each distinct cell looked at once; a number that is not text
    (a spreadsheet's 194305141139) is masked as a whole when it is one."""
    seen: dict[Any, Any] = {}
    out: list[Any] = []
    for v in values:
        key = (type(v), v) if isinstance(v, (str, int)) and not isinstance(v, bool) else None
        if key is not None and key in seen:
            out.append(seen[key])
            continue
        if isinstance(v, str):
            got: Any = mask_numbers(v)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            got = MASK if mask_numbers(str(v)) != str(v) else v
        elif isinstance(v, float) and v.is_integer() and abs(v) < 1e13:
            got = MASK if mask_numbers(str(int(v))) != str(int(v)) else v
        else:
            got = v
        if key is not None:
            seen[key] = got
        out.append(got)
    return out

"""Swedish personal identity numbers (personnummer, samordningsnummer).

They must never reach the store in clear; :func:`find_personnummer` and
:func:`personnummer_columns` find them, even hidden in free text.
"""

from __future__ import annotations

import calendar
import re
from typing import Any

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- personnummer

PNR_PATTERN: re.Pattern[str] = re.compile(r"(?<!\d)(?P<pnr>(?:\d{2})?\d{6}[-+]?\d{4})(?!\d)")
"""A candidate personnummer/samordningsnummer: YYMMDDNNNC or YYYYMMDDNNNC, optional '-'/'+' before the last four digits."""

_CENTURIES = (18, 19, 20)


def _luhn_ok(ten: str) -> bool:
    total = 0
    for i, ch in enumerate(ten):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return total % 10 == 0


def _date_ok(digits: str) -> bool:
    """Month 01-12 and a day that exists, where day+60 marks a samordningsnummer."""
    if len(digits) == 12:
        if int(digits[:2]) not in _CENTURIES:
            return False
        years = [int(digits[:4])]
        rest = digits[4:]
    else:
        yy = int(digits[:2])
        years = [c * 100 + yy for c in _CENTURIES]
        rest = digits
    month, day = int(rest[2:4]), int(rest[4:6])
    if day > 60:
        day -= 60
    if not 1 <= month <= 12 or day < 1:
        return False
    return any(day <= calendar.monthrange(year, month)[1] for year in years)


def is_personnummer(text: str) -> bool:
    """Whether ``text`` as a whole is a valid personnummer or samordningsnummer (date and Luhn check digit)."""
    if not isinstance(text, str):
        return False
    text = text.strip()
    if not PNR_PATTERN.fullmatch(text):
        return False
    digits = text.replace("-", "").replace("+", "")
    return _date_ok(digits) and _luhn_ok(digits[-10:])


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
    maybe = texts.str.contains(r"\d{6}[-+]?\d{4}", regex=True).fillna(False).to_numpy(dtype=bool)
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

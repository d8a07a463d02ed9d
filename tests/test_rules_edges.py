"""The rules docs/models.md and docs/indicators.md decide at their edges, each pinned by a hand case.

Every test writes its arithmetic beside the assertion, and each fails when the rule
it pins changes (rounding half up, end dates, the day an uplift is taken from,
uplifts on an unpaid second staff, the major holidays, the continuity window,
band, visits per day, age and stays).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tests.builders import History
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

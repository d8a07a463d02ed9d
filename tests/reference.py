"""A plain per-visit reference implementation of the per-minute rules.

Written the obvious way — one visit at a time, with datetime objects — so that
property tests can check the vectorized settlement against it, and the compare
benchmark can measure the naive loop on a sample.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, time
from fractions import Fraction

import pandas as pd

from ersattning.calendar import MAJOR_HOLIDAYS, swedish_holidays
from ersattning.models.performed_time import PerformedTime
from ersattning.projection import Projection


def _in_band(t: time, start: str, end: str) -> bool:
    a = int(start[:2]) * 60 + int(start[3:])
    b = int(end[:2]) * 60 + int(end[3:])
    m = t.hour * 60 + t.minute
    return a <= m < b if a <= b else (m >= a or m < b)


def _round(x: float, unit: float, mode: str) -> float:
    """Registered minutes to whole seconds, then to the unit; ``nearest`` rounds a tie half up (docs/models.md)."""
    q = Fraction(round(x * 60)) / (Fraction(str(unit)) * 60)
    if mode == "up":
        n = math.ceil(q)
    elif mode == "down":
        n = math.floor(q)
    else:
        n = math.floor(q + Fraction(1, 2))
    return n * unit


def settle_performed_time(model: PerformedTime, proj: Projection, start: str, end: str) -> list[dict[str, float]]:
    """Components per visit planned in [start month, end month], in projection order."""
    lo = pd.Timestamp(start + "-01")
    hi = pd.Timestamp(end + "-01") + pd.offsets.MonthBegin(1)
    ownership = dict(zip(proj.providers["provider"], proj.providers["ownership"].astype(str), strict=True))
    rural = {r: a == "rural" for r, a in zip(proj.recipients["recipient"], proj.recipients["area"].astype(str), strict=True)}
    stays = defaultdict(list)  # the stays of the model's kinds: (first day, day home or None)
    for r, k, s, e in zip(proj.stays["recipient"], proj.stays["kind"].astype(str), proj.stays["start"], proj.stays["end"], strict=True):
        if k in [x.value for x in model.stays.kinds] if model.stays else False:
            stays[r].append((s.date(), None if pd.isna(e) else e.date()))

    def stay_day(recipient: str, day: date) -> int:
        """Day of a stay ``day`` is (1 = the first day; the day home is none), 0 if none."""
        for s, e in stays[recipient]:
            if s <= day and (e is None or day < e):
                return (day - s).days + 1
        return 0

    holidays: dict[int, dict[date, str]] = {}

    def kinds_of(d: date) -> tuple[bool, bool, bool]:
        if d.year not in holidays:
            holidays[d.year] = swedish_holidays(d.year)
        name = holidays[d.year].get(d)
        major = name is not None and any(n in MAJOR_HOLIDAYS for n in name.split(" / "))
        return d.weekday() >= 5, name is not None, major

    def rate(day: date, personal_care: bool, private: bool) -> float:
        r = model.rates
        if personal_care:
            p = r.private_personal_care if private and r.private_personal_care is not None else r.personal_care
        else:
            p = r.private_service if private and r.private_service is not None else r.service
        return p.value_at(day)

    rows = []
    for v in proj.visits.itertuples(index=False):
        if not (lo <= v.planned_start < hi):
            continue
        rows.append(v)

    # first pass: paid minutes per visit, and the totals the granted-time cap needs
    paid_min = []
    sums: dict[tuple, float] = defaultdict(float)
    for v in rows:
        performed = v.status == "performed"
        at_night = performed and model.night_fee is not None and _in_band(v.actual_start.time(), model.night_fee.start, model.night_fee.end)
        if performed and not at_night:
            m = max(_round(float(v.actual_minutes), model.rounding_minutes, model.rounding), model.minimum_minutes)
        else:
            m = 0.0
        paid_min.append(m)
        sums[(v.recipient, v.planned_start.strftime("%Y-%m"), v.category == "personal_care")] += m
    granted: dict[tuple, float] = {}
    if model.cap_at_granted:
        from ersattning.context import build_context

        ctx = build_context(proj, start, end)
        for row in ctx.rm.itertuples():
            rid = ctx.recipient_ids[row.recipient]
            month = str(ctx.months[row.month])
            granted[(rid, month, True)] = row.granted_pc
            granted[(rid, month, False)] = row.granted_service

    out = []
    for v, m in zip(rows, paid_min, strict=True):
        day = v.planned_start.date()
        pc = v.category == "personal_care"
        private = ownership.get(v.provider, "private") == "private"
        per_min = rate(day, pc, private) / 60
        comp = dict.fromkeys(("base", "double_staffing", "time_uplift", "night_fee", "cancellation", "stay", "rural"), 0.0)
        performed = v.status == "performed"
        if performed:
            if model.night_fee is not None and _in_band(v.actual_start.time(), model.night_fee.start, model.night_fee.end):
                fee = model.night_fee.private_fee if private and model.night_fee.private_fee is not None else model.night_fee.fee
                comp["night_fee"] = fee.value_at(day)
            else:
                if model.cap_at_granted:
                    key = (v.recipient, v.planned_start.strftime("%Y-%m"), pc)
                    g = granted.get(key, 0.0)
                    if sums[key] > g:
                        m = m * g / sums[key]
                staff = 2 if isinstance(v.staff2, str) else 1
                if not model.pay_double_staffing:
                    staff = 1
                comp["base"] = m * per_min
                comp["double_staffing"] = m * (staff - 1) * per_min
                share = 0.0
                u = model.uplifts
                t = v.actual_start.time()
                weekend, holiday, major = kinds_of(v.actual_start.date())
                if u.evening and _in_band(t, u.evening.start, u.evening.end):
                    share = max(share, u.evening.share.value_at(day))
                if u.night and _in_band(t, u.night.start, u.night.end):
                    share = max(share, u.night.share.value_at(day))
                if u.weekend and weekend:
                    share = max(share, u.weekend.value_at(day))
                if u.holiday and holiday:
                    share = max(share, u.holiday.value_at(day))
                if u.major_holiday and major:
                    share = max(share, u.major_holiday.value_at(day))
                comp["time_uplift"] = (comp["base"] + comp["double_staffing"]) * share
        elif model.stays is not None and (n := stay_day(v.recipient, day)):
            # not performed on a stay day, whatever the status or reason: the stay rule's (personal care only)
            if pc and n <= len(model.stays.day_shares):
                comp["stay"] = model.stays.day_shares[n - 1].value_at(day) * v.planned_minutes * per_min
        elif v.status == "cancelled" and v.cancelled_by == "recipient":
            if v.cancel_reason == "stay":
                pass
            elif model.cancellations is not None and v.notice_minutes < model.cancellations.notice_limit_hours.value_at(day) * 60:
                share = model.cancellations.shares.get(v.category)
                if share is not None:
                    comp["cancellation"] = share.value_at(day) * v.planned_minutes * per_min
        if rural.get(v.recipient, False):
            comp["rural"] = sum(comp.values()) * model.rural_uplift.value_at(day)
        out.append(comp)
    return out

"""Per-minute payment for performed time (LOV "utförd tid"), docs/models.md.

Rules, each a component of its own:

- ``base``: registered minutes of each performed visit, rounded to a unit and
  raised to a minimum, × the hourly rate of the visit's group (personal care or
  service; private providers may have their own rates); optionally capped, per
  recipient-month and group, at the granted time for days at home.
- ``double_staffing``: the second staff of a double-staffed visit, paid alike.
- ``time_uplift``: the highest applicable share of evening, night, weekend,
  holiday and major-holiday uplifts (by the visit's local start).
- ``night_fee``: visits starting in the night window are paid a fee per visit
  instead of time (when a fee is set).
- ``cancellation``: recipient cancellations with notice shorter than a limit,
  paid as a share of the planned time by category.
- ``stay``: personal care planned on the days of a known stay (from the
  stays history) and not performed, paid by stay day (e.g. day 1 at 75 %,
  days 2–5 at 25 %, then nothing), whatever the visit's status or reason.
- ``rural``: an uplift on everything above for recipients in rural areas.
- ``new_client``: a one-off number of hours for each new personal-care client.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ersattning.calendar import MAJOR_HOLIDAYS, swedish_holidays
from ersattning.context import SettlementContext
from ersattning.domain import CancelReason, Category, StayKind
from ersattning.models.base import Rates, ReimbursementModel, Settlement, duration_text, money
from ersattning.parameters import Param, param


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.partition(":")
    return int(h) * 60 + int(m or 0)


class TimeBand(BaseModel):
    """A share paid on top for visits starting in [start, end) local time (may wrap midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(pattern=r"^\d{2}:\d{2}$")
    end: str = Field(pattern=r"^\d{2}:\d{2}$")
    share: Param

    def contains(self, minute_of_day: np.ndarray) -> np.ndarray:
        a, b = _minutes(self.start), _minutes(self.end)
        return (minute_of_day >= a) & (minute_of_day < b) if a <= b else (minute_of_day >= a) | (minute_of_day < b)


class Uplifts(BaseModel):
    """Time-of-day and calendar uplifts; the highest that applies is paid (they do not add up)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    evening: TimeBand | None = None
    night: TimeBand | None = None
    weekend: Param | None = None
    holiday: Param | None = None
    major_holiday: Param | None = None


class NightFee(BaseModel):
    """A fee per night visit instead of time-based payment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field("22:00", pattern=r"^\d{2}:\d{2}$")
    end: str = Field("07:00", pattern=r"^\d{2}:\d{2}$")
    fee: Param
    private_fee: Param | None = None

    def contains(self, minute_of_day: np.ndarray) -> np.ndarray:
        return TimeBand(start=self.start, end=self.end, share=param(0)).contains(minute_of_day)


class Cancellations(BaseModel):
    """Recipient cancellations with short notice are paid as a share of planned time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notice_limit_hours: Param = Field(description="cancellations with less notice than this are paid")
    shares: dict[Category, Param] = Field(description="share of planned time paid, by category; categories not listed are not paid")


class Stays(BaseModel):
    """Planned personal care during a stay, paid by the day of the stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day_shares: list[Param] = Field(description="share for stay day 1, 2, …; later days are not paid")
    kinds: list[StayKind] = Field(default_factory=lambda: [StayKind.hospital])


class PerformedTime(ReimbursementModel):
    kind: ClassVar[str] = "performed_time"
    admin_acts: ClassVar[dict[str, str]] = {
        "registration": "start_stop",
        "correction": "correction",
        "invoice_line": "paid_visit",
        "reconciliation": "recipient_month",
        "decision_follow_up": "decision_change",
    }

    rates: Rates
    rounding_minutes: float = Field(1.0, gt=0, description="registered minutes are rounded to this unit")
    rounding: Literal["nearest", "up", "down"] = "nearest"
    minimum_minutes: float = Field(0.0, ge=0, description="a performed visit is paid at least this long")
    cap_at_granted: bool = Field(False, description="pay no more time per recipient-month and group than granted for days at home")
    pay_double_staffing: bool = True
    uplifts: Uplifts = Uplifts()
    night_fee: NightFee | None = None
    rural_uplift: Param = param(0.0)
    cancellations: Cancellations | None = None
    stays: Stays | None = None
    new_client_hours: Param = param(0.0)

    # -- explain ---------------------------------------------------------------------

    def explain_visit(self, s: Settlement, i: int) -> list[str]:
        """Which rule paid visit ``i`` and how: time and its rounding, cap, rate, double staffing, uplift, fee, cancellation, stay."""
        ctx = s.ctx
        v = s.visit
        rules = []
        rate = float(self.rates.per_minute(ctx.v_day[i : i + 1], ctx.v_personal_care[i : i + 1], ctx.v_private[i : i + 1])[0] * 60)
        group = "personal care" if ctx.v_personal_care[i] else "service"
        owner = "private" if ctx.v_private[i] else "municipal"
        if v["night_fee"][i] and self.night_fee is not None:
            rules.append(f"night visit ({self.night_fee.start}–{self.night_fee.end}): fee per visit {money(v['night_fee'][i])} instead of time")
        elif ctx.performed[i]:
            raw = ctx.v_minutes[i]
            paid = float(self.paid_minutes(np.array([raw]))[0])
            how = {"nearest": "to the nearest", "up": "up to", "down": "down to"}[self.rounding]
            tie = ", a tie half up" if self.rounding == "nearest" else ""
            m, sec = divmod(int(round(raw * 60)), 60)
            rules.append(f"registered {m} min" + (f" {sec:02d} s" if sec else "") + f" → {paid:g} min (rounded {how} {self.rounding_minutes:g} min{tie}; minimum {self.minimum_minutes:g})")
            base = v["base"][i]
            if self.cap_at_granted and abs(paid * rate / 60 - base) > 0.005:
                rules.append(f"capped at granted time this month: {base / rate * 60:.1f} min paid")
            rules.append(f"base: {base / rate * 60:.1f} min × {rate:g} SEK/h ({group}, {owner}) = {money(base)}")
            if v["double_staffing"][i]:
                rules.append(f"double staffing: the second staff paid alike = {money(v['double_staffing'][i])}")
            if v["time_uplift"][i]:
                rules.append(self._explain_uplift(ctx, i, base + v["double_staffing"][i], v["time_uplift"][i]))
        elif v["cancellation"][i]:
            notice, limit = self._notice(ctx, i)
            rules.append(
                f"cancelled by the recipient with {duration_text(notice)} notice, under the {duration_text(limit)} limit: "
                f"{v['cancellation'][i] / rate * 60:.1f} min of the planned {ctx.visits['planned_minutes'].iloc[i]} × {rate:g} SEK/h = {money(v['cancellation'][i])}"
            )
        elif v["stay"][i]:
            rules.append(f"planned personal care on day {self._stay_day(ctx, i)} of a stay: {v['stay'][i] / rate * 60:.1f} min × {rate:g} SEK/h = {money(v['stay'][i])}")
        elif self.stays is not None and (day_no := self._stay_day(ctx, i)):
            what = "service (the stay rule pays personal care only)" if not ctx.v_personal_care[i] else f"day {day_no} of the stay (the stay rule pays days 1–{len(self.stays.day_shares)})"
            rules.append(f"not paid: planned during a stay, {what}")
        else:
            rules.append(self._explain_unpaid(ctx, i))
        if v["rural"][i]:
            rules.append(f"rural uplift = {money(v['rural'][i])}")
        return rules

    def explain_month(self, s: Settlement, j: int) -> list[str]:
        return ["sum of this month's visits (see --visit for each), plus any one-off for a new client", *super().explain_month(s, j)]

    def _explain_uplift(self, ctx: SettlementContext, i: int, paid_for: float, amount: float) -> str:
        """Which uplift visit ``i`` was paid and why: every uplift that applies to its start, by name, the highest paid."""
        u = self.uplifts
        start = ctx.actual_local[i].astype("datetime64[m]")
        on = start.astype("datetime64[D]")
        day, minute, bits = ctx.v_day[i], ctx.minute_of_day[i : i + 1], int(ctx.v_day_kind_bits[i])
        names = swedish_holidays(on.astype(date).year).get(on.astype(date), "").split(" / ")
        applies: list[tuple[str, Param, str]] = []
        for band, label in ((u.evening, "evening"), (u.night, "night")):
            if band is not None and band.contains(minute)[0]:
                applies.append((f"{label} ({band.start}–{band.end})", band.share, f"uplifts.{label}.share"))
        if u.weekend is not None and bits & 1:
            applies.append((f"weekend ({on.astype(date):%A} {on})", u.weekend, "uplifts.weekend"))
        if u.holiday is not None and bits & 2:
            applies.append((f"holiday ({' / '.join(names)} {on})", u.holiday, "uplifts.holiday"))
        if u.major_holiday is not None and bits & 4:
            applies.append((f"major holiday ({' / '.join(n for n in names if n in MAJOR_HOLIDAYS)} {on})", u.major_holiday, "uplifts.major_holiday"))
        shares = [(label, p.value_at(day, name)) for label, p, name in applies]
        shares.sort(key=lambda x: -x[1])
        if not shares:  # cannot happen for a settled uplift; said rather than guessed
            return f"time uplift = {money(amount)}"
        (label, share), others = shares[0], [f"{lb} +{sh * 100:g} %" for lb, sh in shares[1:]]
        line = f"time uplift: {label}: +{share * 100:g} % of {money(paid_for)} = {money(amount)}, by the visit's start {str(start).replace('T', ' ')} for all its minutes"
        return line + (f" (also applies, the highest is paid: {', '.join(others)})" if others else "")

    def _notice(self, ctx: SettlementContext, i: int) -> tuple[float, float]:
        """Visit ``i``'s notice and the limit under which a cancellation is paid, in minutes (the limit NaN without the rule)."""
        notice = float(ctx.visits["notice_minutes"].iloc[i])
        if self.cancellations is None:
            return notice, float("nan")
        return notice, self.cancellations.notice_limit_hours.value_at(ctx.v_day[i], "cancellations.notice_limit_hours") * 60

    def _explain_unpaid(self, ctx: SettlementContext, i: int) -> str:
        """Why a visit that was not performed is paid nothing: who cancelled, the notice against the limit, the category."""
        v = ctx.visits.iloc[i]
        if v["status"] != "cancelled":
            return f"not paid: not performed ({v['status']}), and no cancellation or stay rule applies"
        if v["cancelled_by"] != "recipient":
            return f"not paid: cancelled by the {v['cancelled_by']} ({v['cancel_reason']}); the cancellation rule pays the recipient's cancellations only"
        if self.cancellations is None:
            return "not paid: cancelled by the recipient, and this model pays no cancellations"
        if v["cancel_reason"] == "stay":
            return "not paid: cancelled by the recipient for a stay, and no known stay of the listed kinds covers the day (import stays with ersattning import --kind stays)"
        notice, limit = self._notice(ctx, i)
        if not notice < limit:
            return f"not paid: cancelled by the recipient with {duration_text(notice)} notice, not under the {duration_text(limit)} limit"
        return f"not paid: cancelled by the recipient with {duration_text(notice)} notice, under the {duration_text(limit)} limit, but {v['category']} has no share"

    def _stay_day(self, ctx: SettlementContext, i: int) -> int:
        """Day of a stay visit ``i`` is planned on (0: none), as the stay rule counts it."""
        assert self.stays is not None
        return int(ctx.stay_day_numbers(np.array([i]), [k.value for k in self.stays.kinds])[0])

    # -- the rules -----------------------------------------------------------------

    def paid_minutes(self, actual: np.ndarray) -> np.ndarray:
        """Rounding and minimum, per visit (docs/models.md, "Rounding").

        Registered times are whole seconds, so the minutes are first taken to the
        whole second (removing the float32 storage error: 12.5 min may be stored
        as 12.4999…); with a unit of whole seconds the rounding is then exact
        (the same as integer arithmetic, tested), and ``nearest`` rounds a tie half up (12.5 → 13).
        """
        out = np.multiply(actual, 60.0, dtype=np.float64)
        np.round(out, out=out)  # whole seconds, exact in float64
        # whole seconds over a unit of whole seconds: a tie (k + 1/2) is exact, and a quotient that is not one lies
        # at least 1/(2 × unit) from it, far beyond the division's error, so floor and ceil below are exact
        unit = self.rounding_minutes * 60.0
        if abs(unit - round(unit)) < 1e-9 * unit:  # 31/60 min is 31.000000000000004 s: a whole number of seconds meant
            unit = float(round(unit))
        out /= unit
        if self.rounding == "nearest":
            out += 0.5  # floor(q + 1/2): half up
            np.floor(out, out=out)
        elif self.rounding == "up":
            np.ceil(out, out=out)
        else:
            np.floor(out, out=out)
        out *= self.rounding_minutes
        return np.maximum(out, self.minimum_minutes, out=out)

    def uplift_share(self, ctx: SettlementContext) -> np.ndarray:
        """The highest applicable uplift of each visit, looked up in a (day × kind of time) table.

        A visit's kind of time is 5 bits: weekend, holiday and major holiday of
        its day, and whether it starts in the evening or the night band; the
        table holds the share for each day (parameters are dated) and kind.
        """
        u = self.uplifts
        days = ctx.days_table
        keys = np.arange(32)
        table = np.zeros((len(days), 32))
        for bit, p, name in ((1, u.weekend, "weekend"), (2, u.holiday, "holiday"), (4, u.major_holiday, "major_holiday"), (8, u.evening.share if u.evening else None, "evening.share"), (16, u.night.share if u.night else None, "night.share")):
            if p is not None:
                values = np.nan_to_num(p.at(days, f"uplifts.{name}", strict=False))
                table = np.maximum(table, np.where((keys & bit) > 0, values[:, None], 0.0))
        band = np.zeros(24 * 60, dtype=np.int8)
        minutes = np.arange(24 * 60)
        if u.evening is not None:
            band |= np.where(u.evening.contains(minutes), 8, 0).astype(np.int8)
        if u.night is not None:
            band |= np.where(u.night.contains(minutes), 16, 0).astype(np.int8)
        if not table.any():
            return np.zeros(ctx.n_visits)
        flat = ctx.v_day_code * 32 + (ctx.v_day_kind_bits | band[ctx.minute_of_day])
        return np.take(table.ravel(), flat)

    def per_minute(self, ctx: SettlementContext) -> np.ndarray:
        return self.rates.per_visit(ctx)

    def settle(self, ctx: SettlementContext) -> Settlement:
        n = ctx.n_visits
        performed = ctx.performed
        per_minute = self.per_minute(ctx)

        # night visits (few): a fee per visit instead of time
        night = np.zeros(n)
        night_idx = np.zeros(0, dtype=np.int64)
        if self.night_fee is not None:
            night_idx = np.flatnonzero(self.night_fee.contains(ctx.minute_of_day) & performed)
            days = ctx.v_day[night_idx]
            fee = self.night_fee.fee.at(days, "night_fee.fee")
            if self.night_fee.private_fee is not None:
                fee = np.where(ctx.v_private[night_idx], self.night_fee.private_fee.at(days, "night_fee.private_fee"), fee)
            night[night_idx] = fee
            timed = performed.copy()
            timed[night_idx] = False
        else:
            timed = performed
        minutes = self.paid_minutes(ctx.v_minutes)
        minutes *= timed
        cap_factor = None
        if self.cap_at_granted:
            granted = np.where(ctx.v_personal_care, ctx.rm["granted_pc"].to_numpy()[ctx.v_rm], ctx.rm["granted_service"].to_numpy()[ctx.v_rm])
            key = ctx.v_rm * 2 + (~ctx.v_personal_care)
            paid_sum = np.bincount(key, weights=minutes, minlength=2 * len(ctx.rm))[key]
            cap_factor = np.where(paid_sum > granted, granted / np.maximum(paid_sum, 1e-9), 1.0)
            minutes *= cap_factor
        base = minutes * per_minute
        uplift = self.uplift_share(ctx)
        time_uplift = base * uplift
        double = np.zeros(n)
        two = ctx.v_double_idx if self.pay_double_staffing else np.zeros(0, dtype=np.int64)
        double[two] = base[two]
        time_uplift[two] *= 2

        # cancellations and stays touch few visits: computed on those only. A visit not performed
        # on a day of a known stay (of the listed kinds) is the stay rule's, whatever its status or
        # cancellation reason; a visit performed during a stay is paid as performed (docs/models.md)
        cancellation = np.zeros(n)
        paid_extra: list[tuple[np.ndarray, np.ndarray]] = []  # (visits, minutes paid) for cancellations and stays
        stay_day = np.zeros(n, dtype=np.int64)
        if self.stays is not None:
            missed = np.flatnonzero(~performed)
            stay_day[missed] = ctx.stay_day_numbers(missed, [k.value for k in self.stays.kinds])
        stay_reason = list(CancelReason).index(CancelReason.stay)
        if self.cancellations is not None:
            idx = np.flatnonzero(ctx.v_cancelled_by_recipient & (ctx.v_cancel_reason != stay_reason) & (stay_day == 0))
            days = ctx.v_day[idx]
            notice = ctx.visits["notice_minutes"].to_numpy()[idx]
            short = notice < self.cancellations.notice_limit_hours.at(days, "cancellations.notice_limit_hours") * 60
            idx, days = idx[short], days[short]
            shares = np.zeros(len(idx))
            cats = ctx.v_category[idx]
            for cat, p in self.cancellations.shares.items():
                sel = cats == list(Category).index(cat)
                if sel.any():
                    shares[sel] = p.at(days[sel], f"cancellations.shares.{cat.value}")
            paid_extra.append((idx, shares * ctx.v_planned_minutes[idx]))
            cancellation[idx] = paid_extra[-1][1] * per_minute[idx]

        stay = np.zeros(n)
        if self.stays is not None:
            idx = np.flatnonzero((stay_day > 0) & ctx.v_personal_care)
            paid_extra.append((idx, self.stay_shares(ctx.v_day[idx], stay_day[idx]) * ctx.v_planned_minutes[idx]))
            stay[idx] = paid_extra[-1][1] * per_minute[idx]

        rural = np.zeros(n)
        rural_idx = np.flatnonzero(ctx.v_rural)
        rural_rate = np.zeros(0)
        if len(rural_idx):
            rural_rate = self.rural_uplift.at(ctx.v_day[rural_idx], "rural_uplift")
            if rural_rate.any():
                i = rural_idx
                rural[i] = (base[i] + double[i] + time_uplift[i] + night[i] + cancellation[i] + stay[i]) * rural_rate

        month_new_client = np.zeros(len(ctx.rm))
        new_client_minutes = np.zeros(len(ctx.rm))
        rm = ctx.rm
        new = rm["new_client"].to_numpy() & (rm["granted_full_pc"].to_numpy() > 0)
        if new.any():
            first_days = ctx.month_starts[rm["month"].to_numpy()[new]]
            hours = self.new_client_hours.at(first_days, "new_client_hours")
            rate = self.rates.per_minute(first_days, np.ones(new.sum(), dtype=bool), rm["private"].to_numpy()[new]) * 60
            rate_rural = 1 + np.where(rm["rural"].to_numpy()[new], self.rural_uplift.at(first_days, "rural_uplift"), 0.0)
            month_new_client[new] = hours * rate * rate_rural
            new_client_minutes[new] = hours * 60

        # minutes paid for as time (double staffing counts twice; a night fee covers the visit's minutes)
        paid_minutes = minutes.copy()
        paid_minutes[two] *= 2
        paid_minutes[night_idx] = ctx.v_minutes[night_idx] * ctx.v_staff[night_idx]
        for idx, extra in paid_extra:
            paid_minutes[idx] += extra
        # one more performed minute earns the rate with its uplift, unless a cap or a fee binds
        def marginal() -> np.ndarray:
            """One more performed minute earns the rate with its uplift, unless a cap or a night fee binds."""
            out = per_minute * timed
            out *= 1 + uplift
            out[two] *= 2
            if len(rural_rate) and rural_rate.any():
                out[rural_idx] *= 1 + rural_rate
            if cap_factor is not None:
                out[cap_factor < 1.0] = 0.0
            return out

        return Settlement(
            name="",
            kind=self.kind,
            ctx=ctx,
            visit={"base": base, "double_staffing": double, "time_uplift": time_uplift, "night_fee": night, "cancellation": cancellation, "stay": stay, "rural": rural},
            month={"new_client": month_new_client},
            visit_paid_minutes=paid_minutes,
            month_paid_minutes=new_client_minutes,
            marginal=marginal,
            # a cap at granted time pays nothing in months without a decision
            unpriced_months={"recipient_months_without_decision": ctx.without_decision() & (ctx.rm_sum(ctx.v_minutes) > 0)} if self.cap_at_granted else {},
        )

    def stay_shares(self, days: np.ndarray, day_no: np.ndarray) -> np.ndarray:
        """Share of planned time paid on day ``day_no`` of a stay (1 = the stay's first day; 0 and days past the list pay nothing)."""
        assert self.stays is not None
        shares = np.zeros(len(days))
        for d, p in enumerate(self.stays.day_shares, start=1):
            sel = day_no == d
            if sel.any():
                shares[sel] = p.at(days[sel], f"stays.day_shares[{d - 1}]")
        return shares

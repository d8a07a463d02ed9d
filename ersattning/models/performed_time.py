"""Per-minute payment for performed time (LOV "utförd tid"), design.md §4.

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
- ``stay``: planned personal care cancelled for a stay, paid by stay day
  (e.g. day 1 at 75 %, days 2–5 at 25 %, then nothing).
- ``rural``: an uplift on everything above for recipients in rural areas.
- ``new_client``: a one-off number of hours for each new personal-care client.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ersattning.context import SettlementContext
from ersattning.domain import Category, StayKind
from ersattning.models.base import Rates, ReimbursementModel, Settlement
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

    # -- the rules -----------------------------------------------------------------

    def paid_minutes(self, actual: np.ndarray) -> np.ndarray:
        """Rounding and minimum, per visit."""
        u = self.rounding_minutes
        op = {"nearest": np.round, "up": np.ceil, "down": np.floor}[self.rounding]
        rounded = op(actual / u) * u
        return np.maximum(rounded, self.minimum_minutes)

    def uplift_share(self, ctx: SettlementContext) -> np.ndarray:
        days = ctx.v_day
        share = np.zeros(ctx.n_visits)
        weekend, holiday, major = ctx.day_kinds
        mod = ctx.minute_of_day
        u = self.uplifts
        for band, name in ((u.evening, "evening"), (u.night, "night")):
            if band is not None:
                share = np.maximum(share, np.where(band.contains(mod), band.share.at(days, f"uplifts.{name}.share"), 0.0))
        for mask, p, name in ((weekend, u.weekend, "weekend"), (holiday, u.holiday, "holiday"), (major, u.major_holiday, "major_holiday")):
            if p is not None:
                share = np.maximum(share, np.where(mask, p.at(days, f"uplifts.{name}"), 0.0))
        return share

    def settle(self, ctx: SettlementContext) -> Settlement:
        n = ctx.n_visits
        days = ctx.v_day
        performed = ctx.performed
        per_minute = self.rates.per_minute(days, ctx.v_personal_care, ctx.v_private)
        zero = np.zeros(n)

        at_night = self.night_fee.contains(ctx.minute_of_day) & performed if self.night_fee else np.zeros(n, dtype=bool)
        timed = performed & ~at_night
        minutes = np.where(timed, self.paid_minutes(ctx.v_minutes), 0.0)
        unpaid_by_cap = zero
        cap_factor = np.ones(n)
        if self.cap_at_granted:
            granted = np.where(ctx.v_personal_care, ctx.rm["granted_pc"].to_numpy()[ctx.v_rm], ctx.rm["granted_service"].to_numpy()[ctx.v_rm])
            key = ctx.v_rm * 2 + (~ctx.v_personal_care)
            paid_sum = np.bincount(key, weights=minutes, minlength=2 * len(ctx.rm))[key]
            cap_factor = np.where(paid_sum > granted, granted / np.maximum(paid_sum, 1e-9), 1.0)
            capped = minutes * cap_factor
            unpaid_by_cap = minutes - capped
            minutes = capped
        staff = np.where(self.pay_double_staffing, ctx.v_staff, np.minimum(ctx.v_staff, 1)).astype(np.float64)
        base = minutes * per_minute
        double = minutes * np.maximum(staff - 1, 0) * per_minute
        uplift = self.uplift_share(ctx)
        time_uplift = (base + double) * uplift

        night = zero
        if self.night_fee is not None:
            fee = self.night_fee.fee.at(days, "night_fee.fee")
            if self.night_fee.private_fee is not None:
                fee = np.where(ctx.v_private, self.night_fee.private_fee.at(days, "night_fee.private_fee"), fee)
            night = np.where(at_night, fee, 0.0)

        planned = ctx.visits["planned_minutes"].to_numpy(np.float64)
        cancelled_by_recipient = (ctx.v_status == 2) & (ctx.visits["cancelled_by"] == "recipient").to_numpy()
        reason = ctx.visits["cancel_reason"].astype(str).to_numpy()
        cancellation = zero
        cancel_share = zero
        if self.cancellations is not None:
            limit = self.cancellations.notice_limit_hours.at(days, "cancellations.notice_limit_hours") * 60
            notice = ctx.visits["notice_minutes"].to_numpy(np.float64)
            short = cancelled_by_recipient & (reason != "stay") & (notice < limit)
            cancel_share = np.zeros(n)
            category = ctx.visits["category"].astype(str).to_numpy()
            for cat, share in self.cancellations.shares.items():
                sel = short & (category == cat.value)
                cancel_share[sel] = share.at(days[sel], f"cancellations.shares.{cat.value}")
            cancellation = cancel_share * planned * per_minute

        stay = zero
        stay_share = zero
        if self.stays is not None:
            stay_share = self._stay_shares(ctx, cancelled_by_recipient & (reason == "stay") & ctx.v_personal_care)
            stay = stay_share * planned * per_minute

        visit_total = base + double + time_uplift + night + cancellation + stay
        rural_share = np.where(ctx.v_rural, self.rural_uplift.at(days, "rural_uplift"), 0.0)
        rural = visit_total * rural_share

        month_new_client = np.zeros(len(ctx.rm))
        rm = ctx.rm
        new = rm["new_client"].to_numpy() & (rm["granted_full_pc"].to_numpy() > 0)
        if new.any():
            first_days = ctx.month_starts[rm["month"].to_numpy()[new]]
            hours = self.new_client_hours.at(first_days, "new_client_hours")
            rate = self.rates.per_minute(first_days, np.ones(new.sum(), dtype=bool), rm["private"].to_numpy()[new]) * 60
            rate_rural = 1 + np.where(rm["rural"].to_numpy()[new], self.rural_uplift.at(first_days, "rural_uplift"), 0.0)
            month_new_client[new] = hours * rate * rate_rural

        paid_minutes = minutes * staff + np.where(at_night, ctx.v_minutes * ctx.v_staff, 0.0) + cancel_share * planned + stay_share * planned
        marginal = np.where(timed & (cap_factor >= 1.0), per_minute * staff * (1 + uplift) * (1 + rural_share), 0.0)
        settlement = Settlement(
            name="",
            kind=self.kind,
            ctx=ctx,
            visit={"base": base, "double_staffing": double, "time_uplift": time_uplift, "night_fee": night, "cancellation": cancellation, "stay": stay, "rural": rural},
            month={"new_client": month_new_client},
            visit_paid_minutes=paid_minutes,
            month_paid_minutes=np.where(month_new_client > 0, self.new_client_hours.at(ctx.month_starts[rm["month"].to_numpy()], "new_client_hours") * 60, 0.0),
            marginal_minute=marginal,
        )
        settlement.notes["unpaid_by_cap_minutes"] = f"{unpaid_by_cap.sum():.0f}"
        return settlement

    def _stay_shares(self, ctx: SettlementContext, candidates: np.ndarray) -> np.ndarray:
        """Share paid for each candidate visit by the day of its stay (day 1 = the stay's first day)."""
        assert self.stays is not None
        out = np.zeros(ctx.n_visits)
        stays = ctx.projection.stays
        stays = stays[stays["kind"].astype(str).isin([k.value for k in self.stays.kinds])]
        idx = np.flatnonzero(candidates)
        if not len(idx) or not len(stays):
            return out
        s_r = ctx.recipient_ids.get_indexer(stays["recipient"].astype(str))
        s_start = stays["start"].to_numpy().astype("datetime64[D]")
        order = np.lexsort((s_start, s_r))
        s_r, s_start = s_r[order], s_start[order]
        # the latest stay of the same recipient that started on or before the visit's day
        key_s = s_r.astype(np.int64) * 100_000 + (s_start - np.datetime64("1970-01-01")).astype(np.int64)
        key_v = ctx.v_recipient[idx].astype(np.int64) * 100_000 + (ctx.v_day[idx] - np.datetime64("1970-01-01")).astype(np.int64)
        j = np.searchsorted(key_s, key_v, side="right") - 1
        ok = (j >= 0) & (s_r[np.maximum(j, 0)] == ctx.v_recipient[idx])
        day_no = np.where(ok, (ctx.v_day[idx] - s_start[np.maximum(j, 0)]).astype(np.int64) + 1, 0)
        shares = np.zeros(len(idx))
        for d, p in enumerate(self.stays.day_shares, start=1):
            sel = day_no == d
            shares[sel] = p.at(ctx.v_day[idx][sel], f"stays.day_shares[{d - 1}]")
        out[idx] = shares
        return out

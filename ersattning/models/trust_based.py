"""Trust-based payment: a fixed amount per recipient-month or per team (docs/models.md).

Small self-steering teams are paid a fixed amount per recipient-month by need
tier (bands of the decision's monthly granted hours, never pro-rated), pro rata
in the amount only, for the days at home with a decision — or a fixed amount
per active team-month, shared across the team's recipient-months by planned
time. Follow-up is by periodic dialogue instead of registration audits. An
optional quality component pays a bonus share to providers whose continuity
(median distinct staff per 14 days, Kolada definition) is at or below a threshold.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ersattning.context import SettlementContext
from ersattning.exact import exact_bincount
from ersattning.indicators import continuity_by_provider
from ersattning.models.base import ReimbursementModel, Settlement, money, no_decision_rule
from ersattning.parameters import Param, param


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    up_to_hours: float | None = Field(description="upper bound of granted hours per month (inclusive); null for the last tier")
    amount: Param = Field(description="SEK per recipient-month")


class QualityBonus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    continuity_at_most: Param = Field(description="provider's median distinct staff per 14 days must be at most this")
    bonus_share: Param = Field(description="share of the fixed payment added as a bonus")


class TrustBased(ReimbursementModel):
    kind: ClassVar[str] = "trust_based"
    admin_acts: ClassVar[dict[str, str]] = {
        "invoice_line": "provider_month",
        "dialogue_meeting": "team_month",
        "decision_follow_up": "decision_change",
    }

    basis: Literal["need_tier", "team"] = "need_tier"
    tiers: list[Tier] = Field(default_factory=list)
    team_amount: Param | None = None
    quality: QualityBonus | None = None
    rural_uplift: Param = param(0.0)

    @model_validator(mode="after")
    def _consistent(self) -> TrustBased:
        if self.basis == "need_tier":
            if not self.tiers or self.tiers[-1].up_to_hours is not None:
                raise ValueError("need_tier needs tiers, the last with up_to_hours: null")
            bounds = [t.up_to_hours for t in self.tiers[:-1] if t.up_to_hours is not None]
            if len(bounds) < len(self.tiers) - 1 or bounds != sorted(bounds):
                raise ValueError("tiers must have increasing up_to_hours")
        elif self.team_amount is None:
            raise ValueError("basis team needs team_amount")
        return self

    def settle(self, ctx: SettlementContext) -> Settlement:
        rm = ctx.rm
        n = len(rm)
        days = ctx.month_starts[rm["month"].to_numpy()]
        unpriced: dict[str, np.ndarray] = {}
        if self.basis == "need_tier":
            # the tier by the decisions' monthly granted hours; pro rata only in the amount, for days at home with a decision
            hours = rm["granted_monthly"].to_numpy() / 60
            tier = self.tier_of(hours)
            base = np.zeros(n)
            for i, t in enumerate(self.tiers):
                sel = tier == i
                base[sel] = t.amount.at(days[sel], f"tiers[{i}].amount")
            base = base * self.share_paid(rm) * (hours > 0)
            unpriced["recipient_months_without_decision"] = ctx.without_decision()
        else:
            assert self.team_amount is not None
            planned = ctx.visits["planned_minutes"].to_numpy(np.float64)
            n_m = len(ctx.months)
            team_month = ctx.v_team.astype(np.int64) * n_m + ctx.v_month
            teams, inverse = np.unique(team_month, return_inverse=True)
            team_minutes = team_month_minutes(ctx, teams, inverse, planned)
            amount = self.team_amount.at(ctx.month_starts[teams % n_m], "team_amount")
            # each team-month's amount shared across its visits by planned time, then summed per recipient-month
            per_visit = amount[inverse] * planned / team_minutes[inverse]
            base = ctx.rm_sum(per_visit)
        rural = np.where(rm["rural"].to_numpy(), self.rural_uplift.at(days, "rural_uplift"), 0.0)
        month = {"fixed": base}
        if self.quality is not None:
            medians = continuity_by_provider(ctx)
            rm_median = np.where(rm["provider"].to_numpy() >= 0, medians[np.maximum(rm["provider"].to_numpy(), 0)], np.nan)
            meets = rm_median <= self.quality.continuity_at_most.at(days, "quality.continuity_at_most")
            month["quality_bonus"] = np.where(meets, base * self.quality.bonus_share.at(days, "quality.bonus_share"), 0.0)
        month["rural"] = sum(month.values()) * rural
        return Settlement(name="", kind=self.kind, ctx=ctx, month=month, unpriced_months=unpriced)

    def tier_of(self, hours: np.ndarray) -> np.ndarray:
        """Index of the tier of each monthly granted hours (the first whose bound is at least it)."""
        bounds = np.array([t.up_to_hours for t in self.tiers[:-1]], dtype=np.float64)
        return np.searchsorted(bounds, hours, side="left")

    @staticmethod
    def share_paid(rm: pd.DataFrame) -> np.ndarray:
        """Days at home with a decision in force / days in the month."""
        return rm["decision_days_at_home"].to_numpy() / rm["days_in_month"].to_numpy()

    def explain_month(self, s: Settlement, j: int) -> list[str]:
        r = s.ctx.rm.iloc[j]
        if self.basis == "need_tier":
            if r["decision_days"] == 0:
                return [no_decision_rule(self.kind, s.ctx, j), *super().explain_month(s, j)]
            hours = r["granted_monthly"] / 60
            i = int(self.tier_of(np.array([hours]))[0])
            bound = self.tiers[i].up_to_hours
            label = f"≤ {bound:g} h" if bound is not None else "the last tier"
            amount = self.tiers[i].amount.value_at(s.ctx.month_starts[int(r["month"])], f"tiers[{i}].amount")
            rule = (
                f"need tier {i + 1} ({label}) by the decisions' {hours:.1f} granted h/month; "
                f"{money(amount)} × {r['decision_days_at_home']}/{r['days_in_month']} days at home with a decision = {money(amount * r['decision_days_at_home'] / r['days_in_month'])}"
            )
        else:
            rule = "team amount per team-month, shared across the team's recipients by planned time"
        return [rule, *super().explain_month(s, j)]


def team_month_minutes(ctx: SettlementContext, teams: np.ndarray, inverse: np.ndarray, planned: np.ndarray) -> np.ndarray:
    """Planned minutes of each team-month ``teams`` (team × months + month), summed exactly.

    A team serves many recipients: a region settled partition by partition puts the region's
    sums in ``ctx.cache["team_month_minutes"]`` as (sorted keys, minutes).
    """
    given = ctx.cache.get("team_month_minutes")
    if isinstance(given, tuple):
        keys, minutes = given
        return np.asarray(minutes)[np.searchsorted(keys, teams)]
    return exact_bincount(inverse, planned, len(teams)).to_floats()

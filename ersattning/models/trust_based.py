"""Trust-based payment: a fixed amount per recipient-month or per team (docs/models.md).

Small self-steering teams are paid a fixed amount per recipient-month by need
tier (bands of granted hours), pro rata for days at home — or a fixed amount
per active team-month, shared across the team's recipient-months by planned
time. Follow-up is by periodic dialogue instead of registration audits. An
optional quality component pays a bonus share to providers whose continuity
(median distinct staff per 14 days, Kolada definition) is at or below a threshold.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ersattning.context import SettlementContext
from ersattning.indicators import continuity_by_provider
from ersattning.models.base import ReimbursementModel, Settlement
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
        home_share = rm["days_at_home"].to_numpy() / rm["days_in_month"].to_numpy()
        if self.basis == "need_tier":
            hours = (rm["granted_full_pc"].to_numpy() + rm["granted_full_service"].to_numpy()) / 60
            bounds = np.array([t.up_to_hours for t in self.tiers[:-1]], dtype=np.float64)
            tier = np.searchsorted(bounds, hours, side="left")
            base = np.zeros(n)
            for i, t in enumerate(self.tiers):
                sel = tier == i
                base[sel] = t.amount.at(days[sel], f"tiers[{i}].amount")
            base = base * home_share * (hours > 0)
        else:
            assert self.team_amount is not None
            planned = ctx.visits["planned_minutes"].to_numpy(np.float64)
            n_m = len(ctx.months)
            team_month = ctx.v_team.astype(np.int64) * n_m + ctx.v_month
            teams, inverse = np.unique(team_month, return_inverse=True)
            team_minutes = np.bincount(inverse, weights=planned)
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
        return Settlement(name="", kind=self.kind, ctx=ctx, month=month)

    def explain_month(self, s: Settlement, j: int) -> list[str]:
        r = s.ctx.rm.iloc[j]
        if self.basis == "need_tier":
            hours = (r["granted_full_pc"] + r["granted_full_service"]) / 60
            rule = f"need tier by {hours:.1f} granted h/month, pro rata {r['days_at_home']}/{r['days_in_month']} days at home"
        else:
            rule = "team amount per team-month, shared across the team's recipients by planned time"
        return [rule, *super().explain_month(s, j)]

"""Payment per granted minute for the days the recipient is at home (docs/models.md).

Whatever was performed, the provider is paid the decision's granted time, pro
rata for days at home (stays and days before enrolment or after departure are
deducted), at an hourly rate times a price factor. A cost-neutral price factor
is performed/granted (Stockholm 2014 billed 82.5 % of granted time).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ersattning.context import SettlementContext
from ersattning.models.base import Rates, ReimbursementModel, Settlement, no_decision_rule
from ersattning.parameters import Param, param


class GrantedTime(ReimbursementModel):
    kind: ClassVar[str] = "granted_time"
    admin_acts: ClassVar[dict[str, str]] = {
        "invoice_line": "recipient_month",
        "reconciliation": "recipient_month",
        "decision_follow_up": "decision_change",
    }

    rates: Rates
    price_factor: Param = param(1.0)
    rural_uplift: Param = param(0.0)

    def settle(self, ctx: SettlementContext) -> Settlement:
        rm = ctx.rm
        days = ctx.month_starts[rm["month"].to_numpy()]
        private = rm["private"].to_numpy()
        factor = self.price_factor.at(days, "price_factor")
        rural = np.where(rm["rural"].to_numpy(), self.rural_uplift.at(days, "rural_uplift"), 0.0)
        amounts = {}
        minutes = np.zeros(len(rm))
        full = np.zeros(len(rm))
        for group, col, col_full in (("personal_care", "granted_pc", "granted_full_pc"), ("service", "granted_service", "granted_full_service")):
            per_minute = self.rates.per_minute(days, np.full(len(rm), group == "personal_care"), private)
            home = rm[col].to_numpy()
            amounts[group] = home * per_minute * factor
            full += rm[col_full].to_numpy() * per_minute * factor
            minutes += home
        base = amounts["personal_care"] + amounts["service"]
        deduction = base - full  # negative: the granted time of days away
        return Settlement(
            name="",
            kind=self.kind,
            ctx=ctx,
            month={"base": full, "stay_deduction": deduction, "rural": base * rural},
            month_paid_minutes=minutes,
            unpriced_months={"recipient_months_without_decision": ctx.without_decision()},
        )

    def explain_month(self, s: Settlement, j: int) -> list[str]:
        r = s.ctx.rm.iloc[j]
        if r["decision_days"] == 0:
            return [no_decision_rule(self.kind, s.ctx, j), *super().explain_month(s, j)]
        granted_home = (r["granted_pc"] + r["granted_service"]) / 60
        return [f"granted time for days at home: {granted_home:.1f} h × rate × price factor (the time of days away is the stay deduction)", *super().explain_month(s, j)]

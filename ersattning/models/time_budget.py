"""Time budget per recipient (Stockholm's ramtid), docs/models.md.

The decision states a monthly budget of hours (granted time for days at home ×
a budget factor); provider and recipient decide together how to use it. No cap
per visit and no minute-level audit. Variants:

- ``performed_up_to_budget``: performed staff-minutes, at most the budget;
- ``full_budget``: the whole budget, whatever was performed;
- ``budget_with_floor``: performed time, but at least a floor share of the
  budget and at most the budget (the top-up is its own component).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from ersattning.context import SettlementContext
from ersattning.models.base import Rates, ReimbursementModel, Settlement, no_decision_rule
from ersattning.parameters import Param, param


class TimeBudget(ReimbursementModel):
    kind: ClassVar[str] = "time_budget"
    admin_acts: ClassVar[dict[str, str]] = {
        "registration": "start_stop",
        "invoice_line": "recipient_month",
        "reconciliation": "recipient_month",
        "decision_follow_up": "decision_change",
    }

    variant: Literal["performed_up_to_budget", "full_budget", "budget_with_floor"]
    rates: Rates
    budget_factor: Param = param(1.0)
    floor_share: Param = Field(default_factory=lambda: param(0.0), description="budget_with_floor: share of the budget always paid")
    count_double_staffing: bool = True
    rural_uplift: Param = param(0.0)

    def settle(self, ctx: SettlementContext) -> Settlement:
        rm = ctx.rm
        n = len(rm)
        days = ctx.month_starts[rm["month"].to_numpy()]
        private = rm["private"].to_numpy()
        staff_minutes = ctx.v_minutes * (ctx.v_staff if self.count_double_staffing else np.minimum(ctx.v_staff, 1))
        # performed staff-minutes per recipient-month, service in column 0 and personal care in column 1
        performed_by_group = np.bincount(ctx.v_rm * 2 + ctx.v_personal_care, weights=staff_minutes, minlength=2 * n).reshape(n, 2)
        budget_factor = self.budget_factor.at(days, "budget_factor")
        floor_share = self.floor_share.at(days, "floor_share") if self.variant == "budget_with_floor" else np.zeros(n)
        paid_total = np.zeros(n)
        pay = np.zeros(n)
        top_up = np.zeros(n)
        under_budget = np.zeros(n, dtype=bool)
        for is_pc, col in ((True, "granted_pc"), (False, "granted_service")):
            performed = performed_by_group[:, int(is_pc)]
            budget = rm[col].to_numpy() * budget_factor
            if self.variant == "full_budget":
                paid, extra = budget, np.zeros(n)
            else:
                paid = np.minimum(performed, budget)
                extra = np.maximum(floor_share * budget - paid, 0.0)
                under_budget |= (performed < budget) & (performed >= floor_share * budget) & (budget > 0)
            per_minute = self.rates.per_minute(days, np.full(n, is_pc), private)
            pay += paid * per_minute
            top_up += extra * per_minute
            paid_total += paid + extra
        rural = np.where(rm["rural"].to_numpy(), self.rural_uplift.at(days, "rural_uplift"), 0.0)
        def marginal() -> np.ndarray:
            """One more performed minute earns the rate where the recipient-month is between floor and budget."""
            if self.variant == "full_budget":
                return np.zeros(ctx.n_visits)
            out = self.rates.per_visit(ctx)
            out *= under_budget[ctx.v_rm] & ctx.performed
            out *= 1 + rural[ctx.v_rm]
            if self.count_double_staffing:
                out[ctx.v_double_idx] *= 2
            return out

        month = {"budget": pay}
        if self.variant == "budget_with_floor":
            month["floor_top_up"] = top_up
        month["rural"] = (pay + top_up) * rural
        unpriced = {"recipient_months_without_decision": ctx.without_decision()}
        return Settlement(name="", kind=self.kind, ctx=ctx, month=month, month_paid_minutes=paid_total, marginal=marginal, unpriced_months=unpriced)

    def explain_month(self, s: Settlement, j: int) -> list[str]:
        r = s.ctx.rm.iloc[j]
        if r["decision_days"] == 0:
            return [no_decision_rule(self.kind, s.ctx, j), *super().explain_month(s, j)]
        granted_home = (r["granted_pc"] + r["granted_service"]) / 60
        paid = s.month_paid_minutes[j] / 60 if s.month_paid_minutes is not None else float("nan")
        return [f"variant {self.variant}: budget {granted_home:.1f} h × budget factor; paid {paid:.1f} h", *super().explain_month(s, j)]

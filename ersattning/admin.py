"""Administrative load: acts counted from the history × what each model requires (docs/admin-load.md).

A model declares the acts it needs and the unit each is counted in; the
scenario says how many minutes an act takes and what an hour costs. Reference
figures (docs/admin-load.md): staff spend ~58 % of working time in homes; one
assessor per ~161 recipients; Buurtzorg used 108 vs 168 hours per client.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ersattning.context import SettlementContext
from ersattning.models.base import Settlement
from ersattning.parameters import Param

UNITS = {
    "start_stop": "two registrations (start and stop) per staff on each performed visit",
    "correction": "each correction of registered times",
    "paid_visit": "each visit with a payment (an invoice line)",
    "recipient_month": "each recipient-month enrolled",
    "provider_month": "each provider-month with a payment",
    "team_month": "each team-month with visits",
    "decision_change": "each decision granted, revised or ended in the period",
}


class AdminAssumptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hourly_cost: Param = Field(description="SEK per hour of administrative work")
    minutes_per_act: dict[str, Param] = Field(description="minutes one act takes, by kind of act")


def count_units(ctx: SettlementContext, s: Settlement, unit: str) -> float:
    if unit == "start_stop":
        # a behaviour assumption may leave visits unregistered (ctx.registered)
        return float(2 * ctx.v_staff[ctx.registered].sum()) if ctx.v_registered is not None else float(2 * ctx.v_staff.sum())
    if unit == "correction":
        corrections = ctx.visits["corrections"].to_numpy()
        return float(corrections[ctx.registered].sum()) if ctx.v_registered is not None else float(corrections.sum())
    if unit == "paid_visit":
        total = sum((a for a in s.visit.values()), np.zeros(ctx.n_visits))
        return float((np.abs(total) > 0).sum())
    if unit == "recipient_month":
        return float((ctx.rm["days_enrolled"].to_numpy() > 0).sum())
    if unit == "provider_month":
        return float((s.provider_months()["total"].to_numpy() != 0).sum())
    if unit == "team_month":
        return float(len(np.unique(ctx.v_team.astype(np.int64) * len(ctx.months) + ctx.v_month))) if ctx.n_visits else 0.0
    if unit == "decision_change":
        d = ctx.projection.decisions
        lo, hi = ctx.month_starts[0], (ctx.months[-1] + 1).astype("datetime64[D]")
        start = d["valid_from"].to_numpy().astype("datetime64[D]")
        end = d["valid_to"].to_numpy().astype("datetime64[D]")
        return float(((start >= lo) & (start < hi)).sum() + ((end >= lo) & (end < hi)).sum())
    raise ValueError(f"unknown unit {unit!r}; known: {', '.join(UNITS)}")


def under_behaviour(assumptions: AdminAssumptions, minutes: dict[str, Param]) -> AdminAssumptions:
    """The scenario's admin assumptions with a model's own minutes per act (its ``behaviour.admin_minutes``)."""
    if not minutes:
        return assumptions
    return assumptions.model_copy(update={"minutes_per_act": {**assumptions.minutes_per_act, **minutes}})


def admin_load(ctx: SettlementContext, s: Settlement, acts: dict[str, str], assumptions: AdminAssumptions) -> pd.DataFrame:
    """One row per kind of act: count, minutes each, hours and SEK."""
    return admin_table(ctx.month_starts[:1], acts, assumptions, {unit: count_units(ctx, s, unit) for unit in set(acts.values())})


def admin_table(day: np.ndarray, acts: dict[str, str], assumptions: AdminAssumptions, counts: dict[str, float]) -> pd.DataFrame:
    """The admin load from the count of each unit (a region settled in partitions adds its counts up first)."""
    cost = float(assumptions.hourly_cost.at(day, "admin.hourly_cost")[0])
    rows = []
    for act, unit in acts.items():
        if act not in assumptions.minutes_per_act:
            raise ValueError(f"admin.minutes_per_act has no figure for {act!r}")
        count = counts[unit]
        minutes = float(assumptions.minutes_per_act[act].at(day, f"admin.minutes_per_act.{act}")[0])
        hours = count * minutes / 60
        rows.append({"act": act, "unit": unit, "count": count, "minutes_per_act": minutes, "hours": hours, "cost_sek": hours * cost})
    return pd.DataFrame(rows, columns=["act", "unit", "count", "minutes_per_act", "hours", "cost_sek"])

"""How each model reached its amount for one visit or one recipient-month, rule by rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ersattning.compare import Comparison
from ersattning.models import GrantedTime, PerformedTime, TimeBudget, TrustBased
from ersattning.models.base import ReimbursementModel, Settlement


class ExplainError(ValueError):
    """The visit or recipient-month asked for is not in the comparison."""


@dataclass
class Explanation:
    subject: dict[str, Any]
    models: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.subject.items()]
        for m in self.models:
            lines.append("")
            lines.append(f"{m['model']} ({m['kind']}): {m['total_sek']:,.2f} SEK")
            lines.extend(f"  {rule}" for rule in m["rules"])
        return "\n".join(lines)


def _find_visit(c: Comparison, visit_id: str) -> int:
    from uuid import UUID

    try:
        u = UUID(visit_id)
    except ValueError:
        raise ExplainError(f"{visit_id!r} is not a visit id (a UUID)") from None
    hi, lo = int.from_bytes(u.bytes[:8], "big"), int.from_bytes(u.bytes[8:], "big")
    keys = c.ctx.projection.visit_keys
    v = c.ctx.projection.visits
    day = v["planned_start"].to_numpy().astype("datetime64[D]")
    lo_d, hi_d = c.ctx.month_starts[0], (c.ctx.months[-1] + 1).astype("datetime64[D]")
    in_period = np.flatnonzero((day >= lo_d) & (day < hi_d))
    match = np.flatnonzero((keys["key_hi"].to_numpy()[in_period] == np.uint64(hi)) & (keys["key_lo"].to_numpy()[in_period] == np.uint64(lo)))
    if not len(match):
        raise ExplainError(f"no visit {visit_id} planned in the scenario's period")
    return int(match[0])  # context visits are the period's visits in projection order


def _money(x: float) -> str:
    return f"{x:,.2f} SEK"


def _params_used(model: ReimbursementModel, day: np.datetime64) -> list[str]:
    out = []
    for name, p in model.parameters().items():
        try:
            value = p.value_at(day, name)
        except ValueError:
            continue
        src = f" — {p.source}" if p.source else (" — assumption" if p.assumption else "")
        out.append(f"{name} = {value:g}{src}")
    return out


def explain_visit(c: Comparison, visit_id: str) -> Explanation:
    i = _find_visit(c, visit_id)
    ctx = c.ctx
    v = ctx.visits.iloc[i]
    subject = {
        "visit": visit_id,
        "recipient": str(v["recipient"]),
        "provider": str(v["provider"]),
        "category": str(v["category"]),
        "status": str(v["status"]),
        "planned": f"{v['planned_start']} for {v['planned_minutes']} min, {v['staff_planned']} staff",
    }
    if v["status"] == "performed":
        subject["performed"] = f"{v['actual_start']} for {v['actual_minutes']:.1f} min, staff {v['staff1']}" + (f" and {v['staff2']}" if pd.notna(v["staff2"]) else "") + f" ({v['registration']})"
        if v["corrections"]:
            subject["corrections"] = int(v["corrections"])
    if v["status"] == "cancelled":
        subject["cancelled"] = f"by {v['cancelled_by']} ({v['cancel_reason']}), {v['notice_minutes'] / 60:.1f} h before"
    day = ctx.v_day[i]
    out = Explanation(subject)
    for entry, model in c.scenario.models:
        s = c.settlements[entry.name]
        rules = _visit_rules(model, s, i, day)
        total = float(sum(a[i] for a in s.visit.values()))
        if not s.visit:
            rules = [f"{model.kind} pays per recipient-month, not per visit: see --recipient {subject['recipient']} --month {str(day)[:7]}"]
        out.models.append({"model": entry.name, "kind": model.kind, "total_sek": total, "components": {k: float(a[i]) for k, a in s.visit.items() if a[i]}, "rules": rules + _params_used(model, day)})
    return out


def _visit_rules(model: ReimbursementModel, s: Settlement, i: int, day: np.datetime64) -> list[str]:
    ctx = s.ctx
    rules = []
    if isinstance(model, PerformedTime):
        rate = float(model.rates.per_minute(ctx.v_day[i : i + 1], ctx.v_personal_care[i : i + 1], ctx.v_private[i : i + 1])[0] * 60)
        group = "personal care" if ctx.v_personal_care[i] else "service"
        owner = "private" if ctx.v_private[i] else "municipal"
        if s.visit["night_fee"][i]:
            rules.append(f"night visit ({model.night_fee.start}–{model.night_fee.end}): fee per visit {_money(s.visit['night_fee'][i])} instead of time")
        elif ctx.performed[i]:
            raw = ctx.v_minutes[i]
            paid = float(model.paid_minutes(np.array([raw]))[0])
            rules.append(f"registered {raw:.1f} min → {paid:g} min (rounded {model.rounding} to {model.rounding_minutes:g} min, minimum {model.minimum_minutes:g})")
            base = s.visit["base"][i]
            if model.cap_at_granted and abs(paid * rate / 60 - base) > 0.005:
                rules.append(f"capped at granted time this month: {base / rate * 60:.1f} min paid")
            rules.append(f"base: {base / rate * 60:.1f} min × {rate:g} SEK/h ({group}, {owner}) = {_money(base)}")
            if s.visit["double_staffing"][i]:
                rules.append(f"double staffing: the second staff paid alike = {_money(s.visit['double_staffing'][i])}")
            if s.visit["time_uplift"][i]:
                share = s.visit["time_uplift"][i] / (base + s.visit["double_staffing"][i])
                rules.append(f"time uplift {share:.1%} (highest of evening/night/weekend/holiday that applies) = {_money(s.visit['time_uplift'][i])}")
        elif s.visit["cancellation"][i]:
            rules.append(f"cancelled by the recipient with short notice: {s.visit['cancellation'][i] / rate * 60:.1f} min of the planned {ctx.visits['planned_minutes'].iloc[i]} × {rate:g} SEK/h = {_money(s.visit['cancellation'][i])}")
        elif s.visit["stay"][i]:
            rules.append(f"planned personal care during a stay: {s.visit['stay'][i] / rate * 60:.1f} min × {rate:g} SEK/h = {_money(s.visit['stay'][i])}")
        else:
            rules.append("not paid: not performed, and no cancellation or stay rule applies")
        if s.visit["rural"][i]:
            rules.append(f"rural uplift = {_money(s.visit['rural'][i])}")
    return rules


def explain_recipient_month(c: Comparison, recipient: str, month: str) -> Explanation:
    ctx = c.ctx
    rec = ctx.projection.recipients
    ids = ctx.recipient_ids
    code = ids.get_indexer([recipient])[0]
    if code < 0:
        by_pseudonym = rec.loc[rec["pseudonym"] == recipient, "recipient"]
        code = ids.get_indexer(by_pseudonym.astype(str))[0] if len(by_pseudonym) else -1
    if code < 0:
        raise ExplainError(f"no recipient {recipient!r} (give the recipient id or pseudonym)")
    try:
        m = int((np.datetime64(month, "M") - ctx.months[0]).astype(int))
    except ValueError:
        raise ExplainError(f"{month!r} is not a month, YYYY-MM") from None
    rows = np.flatnonzero((ctx.rm["recipient"].to_numpy() == code) & (ctx.rm["month"].to_numpy() == m))
    if not (0 <= m < len(ctx.months)) or not len(rows):
        raise ExplainError(f"recipient {recipient} has no recipient-month {month} in the scenario's period")
    j = int(rows[0])
    r = ctx.rm.iloc[j]
    visits = np.flatnonzero(ctx.v_rm == j)
    subject = {
        "recipient": ids[code],
        "month": month,
        "provider": ctx.provider_ids[r["provider"]] if r["provider"] >= 0 else "-",
        "days": f"{r['days_enrolled']} enrolled, {r['days_at_home']} at home, of {r['days_in_month']}",
        "granted": f"personal care {r['granted_full_pc'] / 60:.1f} h, service {r['granted_full_service'] / 60:.1f} h (for days at home {r['granted_pc'] / 60:.1f} h and {r['granted_service'] / 60:.1f} h)",
        "visits": f"{len(visits)} planned, {int(ctx.performed[visits].sum())} performed, {ctx.v_minutes[visits].sum() / 60:.1f} h performed",
    }
    out = Explanation(subject)
    day = ctx.month_starts[m]
    for entry, model in c.scenario.models:
        s = c.settlements[entry.name]
        comps: dict[str, float] = {}
        for k, a in s.visit.items():
            comps[k] = comps.get(k, 0.0) + float(a[visits].sum())
        for k, a in s.month.items():
            comps[k] = comps.get(k, 0.0) + float(a[j])
        comps = {k: v for k, v in comps.items() if abs(v) > 0.005}
        rules = [f"{k}: {_money(v)}" for k, v in comps.items()]
        rules = _month_rules(model, s, j, r) + rules
        out.models.append({"model": entry.name, "kind": model.kind, "total_sek": sum(comps.values()), "components": comps, "rules": rules + _params_used(model, day)})
    return out


def _month_rules(model: ReimbursementModel, s: Settlement, j: int, r: pd.Series) -> list[str]:
    granted_home = (r["granted_pc"] + r["granted_service"]) / 60
    if isinstance(model, GrantedTime):
        return [f"granted time for days at home: {granted_home:.1f} h × rate × price factor (the time of days away is the stay deduction)"]
    if isinstance(model, TimeBudget):
        paid = s.month_paid_minutes[j] / 60 if s.month_paid_minutes is not None else float("nan")
        return [f"variant {model.variant}: budget {granted_home:.1f} h × budget factor; paid {paid:.1f} h"]
    if isinstance(model, TrustBased):
        hours = (r["granted_full_pc"] + r["granted_full_service"]) / 60
        if model.basis == "need_tier":
            return [f"need tier by {hours:.1f} granted h/month, pro rata {r['days_at_home']}/{r['days_in_month']} days at home"]
        return ["team amount per team-month, shared across the team's recipients by planned time"]
    if isinstance(model, PerformedTime):
        return ["sum of this month's visits (see --visit for each), plus any one-off for a new client"]
    return []

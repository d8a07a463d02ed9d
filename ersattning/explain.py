"""How each model reached its amount for one visit or one recipient-month, rule by rule.

The driver: it finds the visit or recipient-month and describes it; the rule
lines come from each model (``ReimbursementModel.explain_visit`` /
``explain_month`` / ``explain_parameters``), so a model of one's own explains
itself too (docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd

from ersattning.compare import Comparison


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


def explain_visit(c: Comparison, visit_id: str) -> Explanation:
    i = _find_visit(c, visit_id)
    ctx = c.ctx
    v = ctx.visits.iloc[i]
    subject: dict[str, Any] = {
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
        total = float(sum(a[i] for a in s.visit.values()))
        if s.visit:
            rules = model.explain_visit(s, i)
        else:
            rules = [f"{model.kind} pays per recipient-month, not per visit: see --recipient {subject['recipient']} --month {str(day)[:7]}"]
        out.models.append({"model": entry.name, "kind": model.kind, "total_sek": total, "components": {k: float(a[i]) for k, a in s.visit.items() if a[i]}, "rules": rules + model.explain_parameters(day)})
    return out


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
        comps = s.month_components(j)
        out.models.append({"model": entry.name, "kind": model.kind, "total_sek": sum(comps.values()), "components": comps, "rules": model.explain_month(s, j) + model.explain_parameters(day)})
    return out

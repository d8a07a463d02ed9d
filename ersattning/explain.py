"""How each model reached its amount for one visit or one recipient-month, rule by rule.

The driver: it finds the visit or recipient-month and describes it; the rule
lines come from each model (``ReimbursementModel.explain_visit`` /
``explain_month`` / ``explain_parameters``), so a model of one's own explains
itself too (docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd

from ersattning.compare import Comparison
from ersattning.context import SettlementContext
from ersattning.domain import stable_id
from ersattning.models.base import duration_text, no_decision_reason
from ersattning.privacy import Pseudonymiser
from ersattning.privacy.identity_numbers import canonical
from ersattning.privacy.visit_ids import visit_ids


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
            if m.get("behaviour"):
                lines.append(f"  as replayed (static): {m['static_total_sek']:,.2f} SEK")
                lines.extend(f"    {rule}" for rule in m["static_rules"])
                lines.append("  as transformed by the model's behaviour assumptions:")
                lines.extend(f"    {line}" for line in m["behaviour"])
            lines.extend(f"  {rule}" for rule in m["rules"])
        return "\n".join(lines)


def _find_visit(c: Comparison, visit_id: str, pseudonymiser: Pseudonymiser | None) -> tuple[int, str]:
    """The context row of a visit given by its id (a UUID) or by the source's own visit id, and its UUID.

    A source id is hashed with the pseudonym key exactly as the import hashed it
    (``ingest.ids.visit_ids``); it is never stored or printed.
    """
    candidates: list[tuple[int, int]] = []
    try:
        u = UUID(visit_id)
        candidates.append((int.from_bytes(u.bytes[:8], "big"), int.from_bytes(u.bytes[8:], "big")))
    except ValueError:
        pass
    if pseudonymiser is not None:
        _, hi, lo = visit_ids(pseudonymiser, np.array([visit_id], dtype=object))
        candidates.append((int(hi[0]), int(lo[0])))
    if not candidates:
        raise ExplainError("the visit given is not a visit id (a UUID), and without the pseudonym key it cannot be looked up as the source's own visit id")
    keys = c.ctx.projection.visit_keys
    v = c.ctx.projection.visits
    day = v["planned_start"].to_numpy().astype("datetime64[D]")
    lo_d, hi_d = c.ctx.month_starts[0], (c.ctx.months[-1] + 1).astype("datetime64[D]")
    in_period = np.flatnonzero((day >= lo_d) & (day < hi_d))
    key_hi, key_lo = keys["key_hi"].to_numpy()[in_period], keys["key_lo"].to_numpy()[in_period]
    for hi_, lo_ in candidates:
        match = np.flatnonzero((key_hi == np.uint64(hi_)) & (key_lo == np.uint64(lo_)))
        if len(match):
            # context visits are the period's visits in projection order
            return int(match[0]), str(UUID(bytes=hi_.to_bytes(8, "big") + lo_.to_bytes(8, "big")))
    if len(candidates) == 1 and pseudonymiser is not None:  # not a UUID: looked up as a source id only
        raise ExplainError("the visit given is not a visit id (a UUID), nor the source's own id of a visit planned in the scenario's period")
    raise ExplainError("no visit planned in the scenario's period has this id" + (" (looked up as a visit id and as the source's own visit id)" if pseudonymiser is not None else ""))


def explain_visit(c: Comparison, visit_id: str, pseudonymiser: Pseudonymiser | None = None) -> Explanation:
    """Visit ``visit_id`` (its UUID, or the source's own id hashed with ``pseudonymiser``), rule by rule."""
    i, visit_id = _find_visit(c, visit_id, pseudonymiser)
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
        subject["cancelled"] = f"by {v['cancelled_by']} ({v['cancel_reason']}), {duration_text(v['notice_minutes'])} before"
    day = ctx.v_day[i]
    out = Explanation(subject)
    per_month = lambda model: [f"{model.kind} pays per recipient-month, not per visit: see --recipient {subject['recipient']} --month {str(day)[:7]}"]  # noqa: E731
    for entry, model in c.scenario.models:
        s = c.settlements[entry.name]
        s0 = c.static_settlements.get(entry.name, s)
        item: dict[str, Any] = {"model": entry.name, "kind": model.kind}
        if s0 is not s:  # behaviour assumed: the visit as replayed, then as transformed
            item["static_total_sek"] = float(sum(a[i] for a in s0.visit.values()))
            item["static_rules"] = model.explain_visit(s0, i) if s0.visit else per_month(model)
        j, lines = _transformed_visit(s.ctx, i)
        if s0 is not s:
            item["behaviour"] = lines + model.explain_behaviour(s.ctx)
        if j is None:
            item.update(total_sek=0.0, components={}, rules=model.explain_parameters(day))
        else:
            item["total_sek"] = float(sum(a[j] for a in s.visit.values()))
            item["components"] = {k: float(a[j]) for k, a in s.visit.items() if a[j]}
            item["rules"] = (model.explain_visit(s, j) if s.visit else per_month(model)) + model.explain_parameters(day)
        out.models.append(item)
    return out


def _transformed_visit(cf: SettlementContext, i: int) -> tuple[int | None, list[str]]:
    """Row of static visit ``i`` in a counterfactual context (None when a transformation merged it away), and what changed."""
    if cf.static is None:
        return i, []
    if cf.origin is None:
        j = i
    else:
        j = int(np.searchsorted(cf.origin, i))
        if j >= len(cf.origin) or cf.origin[j] != i:
            return None, ["merged into another short visit of the same recipient-day (consolidation): paid nothing of its own"]
    v0, v = cf.static.visits.iloc[i], cf.visits.iloc[j]
    lines = []
    if v["status"] != v0["status"]:
        lines.append(f"status {v0['status']} → {v['status']}")
    if v["status"] == "performed":
        before = f"{v0['actual_minutes']:.1f} min" if v0["status"] == "performed" else "not performed"
        staff = str(v["staff1"]) + (f" and {v['staff2']}" if pd.notna(v["staff2"]) else "")
        staff0 = str(v0["staff1"]) + (f" and {v0['staff2']}" if pd.notna(v0["staff2"]) else "") if v0["status"] == "performed" else "-"
        lines.append(f"performed {before} → {cf.v_minutes[j]:.1f} min; staff {staff0} → {staff}")
        if cf.v_registered is not None and not cf.v_registered[j]:
            lines.append("not registered with start and stop")
    return j, lines or ["unchanged"]


def _find_recipient(c: Comparison, recipient: str, pseudonymiser: Pseudonymiser | None, on: date) -> int:
    """The context code of a recipient given by id, pseudonym, or the source's own id (hashed as the import does; never printed).

    A source id that is an identity number is put in its canonical form first, as the import does (a
    10-digit number's century as of ``on``), so any written form of it finds the person.
    """
    ids = c.ctx.recipient_ids
    code = int(ids.get_indexer([recipient])[0])
    pseudonyms = [recipient]
    if pseudonymiser is not None:
        pseudonyms.append(pseudonymiser.one(canonical(recipient, on) or recipient))
    for pseudonym in pseudonyms:
        if code >= 0:
            break
        # the recipient aggregate's id is derived from the pseudonym (enrolled by decisions, or seen in visits only)
        code = int(ids.get_indexer([stable_id("recipient", pseudonym).hex])[0])
    if code < 0:
        raise ExplainError("no such recipient (give the recipient id, the pseudonym, or the source's own id with the pseudonym key at hand)")
    return code


def explain_recipient_month(c: Comparison, recipient: str, month: str, pseudonymiser: Pseudonymiser | None = None) -> Explanation:
    """Recipient-month ``recipient`` (id, pseudonym or the source's own id) in ``month``, rule by rule."""
    ctx = c.ctx
    ids = ctx.recipient_ids
    try:
        m = int((np.datetime64(month, "M") - ctx.months[0]).astype(int))
    except ValueError:
        raise ExplainError(f"{month!r} is not a month, YYYY-MM") from None
    code = _find_recipient(c, recipient, pseudonymiser, np.datetime64(month, "D").astype(date))
    rows = np.flatnonzero((ctx.rm["recipient"].to_numpy() == code) & (ctx.rm["month"].to_numpy() == m))
    if not (0 <= m < len(ctx.months)) or not len(rows):
        raise ExplainError(f"recipient {ids[code]} has no recipient-month {month} in the scenario's period")
    j = int(rows[0])
    r = ctx.rm.iloc[j]
    visits = np.flatnonzero(ctx.v_rm == j)
    subject = {
        "recipient": ids[code],
        "month": month,
        "provider": ctx.provider_ids[r["provider"]] if r["provider"] >= 0 else "-",
        "days": f"{r['days_enrolled']} enrolled, {r['days_at_home']} at home, of {r['days_in_month']}",
        "granted": f"personal care {r['granted_full_pc'] / 60:.1f} h, service {r['granted_full_service'] / 60:.1f} h (for days at home {r['granted_pc'] / 60:.1f} h and {r['granted_service'] / 60:.1f} h)",
        "decisions": f"in force {r['decision_days']} of {r['days_in_month']} days" if r["decision_days"] else f"none in force: {no_decision_reason(ctx, j)}",
        "visits": f"{len(visits)} planned, {int(ctx.performed[visits].sum())} performed, {ctx.v_minutes[visits].sum() / 60:.1f} h performed",
    }
    out = Explanation(subject)
    day = ctx.month_starts[m]
    for entry, model in c.scenario.models:
        s = c.settlements[entry.name]
        s0 = c.static_settlements.get(entry.name, s)
        comps = s.month_components(j)
        item: dict[str, Any] = {"model": entry.name, "kind": model.kind, "total_sek": sum(comps.values()), "components": comps, "rules": model.explain_month(s, j) + model.explain_parameters(day)}
        if s0 is not s:  # behaviour assumed: the month as replayed, then as transformed (recipient-months are shared)
            item["static_total_sek"] = sum(s0.month_components(j).values())
            item["static_rules"] = model.explain_month(s0, j)
            cf = s.ctx
            mine = np.flatnonzero(cf.v_rm == j)
            item["behaviour"] = [
                f"visits: {len(visits)} planned, {int(ctx.performed[visits].sum())} performed, {ctx.v_minutes[visits].sum() / 60:.1f} h → "
                f"{len(mine)} planned, {int(cf.performed[mine].sum())} performed, {cf.v_minutes[mine].sum() / 60:.1f} h",
                *model.explain_behaviour(cf),
            ]
        out.models.append(item)
    return out

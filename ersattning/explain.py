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
from ersattning.domain import stable_id
from ersattning.ingest.ids import visit_ids
from ersattning.privacy import Pseudonymiser
from ersattning.privacy.identity_numbers import canonical


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
        "visits": f"{len(visits)} planned, {int(ctx.performed[visits].sum())} performed, {ctx.v_minutes[visits].sum() / 60:.1f} h performed",
    }
    out = Explanation(subject)
    day = ctx.month_starts[m]
    for entry, model in c.scenario.models:
        s = c.settlements[entry.name]
        comps = s.month_components(j)
        out.models.append({"model": entry.name, "kind": model.kind, "total_sek": sum(comps.values()), "components": comps, "rules": model.explain_month(s, j) + model.explain_parameters(day)})
    return out

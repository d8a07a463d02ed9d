"""The counterfactual history: the replayed visits transformed as a model's behaviour assumptions say.

``apply`` takes the static settlement context and returns another one in which
the visits are transformed, in this order (docs/models.md, "Behaviour assumptions"):

1. provider cancellations: fewer (a seeded share of provider-cancelled visits
   performed as planned, by the recipient's usual staff) or more (a seeded
   share of performed visits cancelled by the provider for staffing);
2. consolidation: short visits of a recipient-day (one rate group) merged into
   the first of them, at the same or a changed total time;
3. performed time: minutes scaled by 1 + the change (by category if given);
4. the team rule: staff re-assigned (team.py), so continuity and every
   indicator computed from staff come from the counterfactual history;
5. registration: a seeded share of performed visits no longer registered with
   start and stop (fewer registrations and corrections to administer).

Each step touches only the arrays it changes; recipient-months are shared with
the static context, and the store and the projection are never changed. Every
step is listed in ``ctx.transformations`` (for the report and the manifest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ersattning.behaviour.assumptions import Behaviour
from ersattning.behaviour.seeded import uniform
from ersattning.behaviour.team import group_of, reassign, staff_counts, teams
from ersattning.context import SettlementContext
from ersattning.domain import CancelledBy, CancelReason, Category
from ersattning.parameters import Param

PROVIDER = list(CancelledBy).index(CancelledBy.provider)
STAFFING = list(CancelReason).index(CancelReason.staffing)
PERFORMED, CANCELLED = 1, 2


@dataclass
class _Draft:
    """The visit columns being transformed (copied when first written)."""

    ctx: SettlementContext
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    keep: np.ndarray | None = None
    timing_changed: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)

    def get(self, name: str) -> np.ndarray:
        if name in self.cols:
            return self.cols[name]
        return _column(self.ctx, name)

    def write(self, name: str) -> np.ndarray:
        if name not in self.cols:
            self.cols[name] = _column(self.ctx, name).copy()
        return self.cols[name]

    def step(self, name: str, visits: int, params: dict[str, float], text: str) -> None:
        """Record a transformation: ``visits`` it touched (a region figure, hidden with them), never counts in ``text``."""
        self.steps.append({"transformation": name, "visits": int(visits), "parameters": params, "description": text})


def _column(ctx: SettlementContext, name: str) -> np.ndarray:
    v = ctx.visits
    if name == "status":
        return ctx.v_status
    if name == "minutes":
        return ctx.v_minutes
    if name == "staff":
        return ctx.v_staff
    if name in ("staff1", "staff2", "cancelled_by", "cancel_reason", "registration"):
        return v[name].cat.codes.to_numpy()
    return v[name].to_numpy()


def _first_value(p: Param, ctx: SettlementContext, name: str) -> float:
    return p.value_at(ctx.month_starts[0], name)


def _per_visit(p: Param, ctx: SettlementContext, name: str, idx: np.ndarray) -> np.ndarray:
    """The parameter on the planned day of visits ``idx``."""
    value = ctx.per_visit(p, name)  # a table of the period's days, gathered
    if isinstance(value, np.ndarray):
        return value[idx]
    return np.full(len(idx), value)


def _keys(ctx: SettlementContext) -> np.ndarray:
    """Stable keys of the visits for seeded choices: their rows in the static context."""
    return (np.arange(ctx.n_visits) if ctx.origin is None else ctx.origin).astype(np.uint64)


def _cancellations(d: _Draft, p: Param, seed: int) -> None:
    ctx = d.ctx
    status = d.get("status")
    by_provider = np.flatnonzero((status == CANCELLED) & (d.get("cancelled_by") == PROVIDER))
    value = ctx.per_visit(p, "behaviour.provider_cancellations_change")
    change = value if isinstance(value, np.ndarray) else np.full(ctx.n_visits, value)
    keys = _keys(ctx)
    done = 0
    # fewer: a share -change of provider-cancelled visits performed as planned
    fewer = by_provider[uniform(keys[by_provider], seed, "perform") < np.clip(-change[by_provider], 0, 1)]
    if len(fewer):
        counts = staff_counts(ctx.static if ctx.static is not None else ctx)
        t = teams(counts, 1, seed)  # the recipient's usual staff member
        g = group_of(ctx)[fewer]
        gi = t.group_index(g)
        ok = (t.groups[gi] == g) if len(t.groups) else np.zeros(len(g), dtype=bool)
        fewer, gi = fewer[ok], gi[ok]
        status_w = d.write("status")
        status_w[fewer] = PERFORMED
        d.write("staff1")[fewer] = t.member(gi, np.zeros(len(gi), dtype=np.int64))
        d.write("staff2")[fewer] = -1
        d.write("staff")[fewer] = 1
        d.write("minutes")[fewer] = ctx.v_planned_minutes[fewer]
        d.write("actual_start")[fewer] = _column(ctx, "planned_start")[fewer]
        d.write("actual_minutes")[fewer] = ctx.v_planned_minutes[fewer]
        d.write("cancelled_by")[fewer] = -1
        d.write("cancel_reason")[fewer] = -1
        d.write("notice_minutes")[fewer] = np.nan
        d.write("registration")[fewer] = 0
        done += len(fewer)
    # more: as many performed visits as change × the provider cancellations, cancelled for staffing
    performed = np.flatnonzero(status == PERFORMED)
    rise = np.clip(change[performed], 0, None) * len(by_provider) / max(len(performed), 1)
    more = performed[uniform(keys[performed], seed, "cancel") < rise]
    if len(more):
        d.write("status")[more] = CANCELLED
        d.write("cancelled_by")[more] = PROVIDER
        d.write("cancel_reason")[more] = STAFFING
        d.write("notice_minutes")[more] = np.nan
        for name in ("minutes", "staff"):
            d.write(name)[more] = 0
        d.write("staff1")[more] = -1
        d.write("staff2")[more] = -1
        d.write("actual_minutes")[more] = np.nan
        d.write("actual_start")[more] = np.datetime64("NaT")
        done += len(more)
    d.timing_changed |= done > 0
    d.step("provider_cancellations", done, _describe(p), "fewer: visits cancelled by the provider performed as planned instead, by the recipient's usual staff; more: performed visits cancelled by the provider for staffing")


def _consolidate(d: _Draft, b: Behaviour, seed: int) -> None:
    ctx = d.ctx
    c = b.consolidate
    assert c is not None
    limit = _first_value(c.short_minutes, ctx, "behaviour.consolidate.short_minutes")
    minutes = d.get("minutes")
    short = np.flatnonzero((d.get("status") == PERFORMED) & (minutes > 0) & (minutes <= limit))
    merged = 0
    dropped = np.zeros(0, dtype=np.int64)
    if len(short):
        n_days = len(ctx.days_table)
        key = (ctx.v_recipient[short].astype(np.int64) * n_days + ctx.v_day_code[short]) * 2 + ctx.v_personal_care[short]
        order = np.lexsort((ctx.planned_local[short], key))
        short, key = short[order], key[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        group = np.cumsum(first) - 1
        size = np.bincount(group)
        lead = short[first]
        share = _per_visit(c.share, ctx, "behaviour.consolidate.share", lead)
        chosen = (size >= 2) & (uniform(key[first].astype(np.uint64), seed, "consolidate") < share)
        if chosen.any():
            total = np.bincount(group, weights=minutes[short])
            factor = 1.0 + (_per_visit(c.time_change, ctx, "behaviour.consolidate.time_change", lead) if c.time_change is not None else 0.0)
            new_minutes = total * factor
            out = chosen[group] & ~first
            dropped = short[out]
            m = d.write("minutes")
            m[lead[chosen]] = new_minutes[chosen]
            d.write("actual_minutes")[lead[chosen]] = new_minutes[chosen]
            keep = np.ones(ctx.n_visits, dtype=bool) if d.keep is None else d.keep
            keep[dropped] = False
            d.keep = keep
            merged = int(chosen.sum())
            d.timing_changed = True
    params = {"short_minutes": limit, **{f"share{k}": v for k, v in _describe(c.share).items()}}
    if c.time_change is not None:
        params.update({f"time_change{k}": v for k, v in _describe(c.time_change).items()})
    d.step("consolidate", merged + len(dropped), params, "short visits of a recipient-day (one rate group) merged into the first of them")


def _performed_change(d: _Draft, b: Behaviour) -> None:
    ctx = d.ctx
    idx = np.flatnonzero(d.get("status") == PERFORMED)
    change = np.zeros(len(idx))
    params: dict[str, float] = {}
    if b.performed_change is not None:
        change = _per_visit(b.performed_change, ctx, "behaviour.performed_change", idx)
        params.update(_describe(b.performed_change))
    cats = ctx.v_category[idx]
    for cat, p in b.performed_change_by_category.items():
        sel = cats == list(Category).index(cat)
        if sel.any():
            change[sel] = _per_visit(p, ctx, f"behaviour.performed_change_by_category.{cat.value}", idx[sel])
        params.update({f"{cat.value}{k}": v for k, v in _describe(p).items()})
    factor = np.maximum(1.0 + change, 0.0)
    m = d.write("minutes")
    m[idx] = m[idx] * factor
    a = d.write("actual_minutes")
    a[idx] = m[idx]
    d.step("performed_change", int((factor != 1.0).sum()), params, "performed minutes scaled by 1 + the change")


def _team(d: _Draft, b: Behaviour) -> None:
    ctx = d.ctx
    assert b.team is not None
    k = int(round(_first_value(b.team.size, ctx, "behaviour.team.size")))  # the size in force on the period's first day
    performed = d.get("status") == PERFORMED
    if d.keep is not None:
        performed = performed & d.keep
    new1, new2, changed = reassign(ctx, performed, d.get("staff1"), d.get("staff2"), k, b.seed_value)
    d.cols["staff1"], d.cols["staff2"] = new1, new2
    d.step("team", changed, {"size": float(k)}, "staff re-assigned so each recipient meets at most the k staff who served them most (visits counted: those whose staff changed)")


def _registration(d: _Draft, b: Behaviour) -> None:
    ctx = d.ctx
    assert b.registration is not None
    performed = d.get("status") == PERFORMED
    idx = np.flatnonzero(performed)
    share = _per_visit(b.registration, ctx, "behaviour.registration", idx)
    registered = performed.copy()
    registered[idx] = uniform(_keys(ctx)[idx], b.seed_value, "registration") < share
    d.cols["registered"] = registered
    d.step("registration", int(performed.sum() - registered.sum()), _describe(b.registration), "performed visits no longer registered with start and stop (nor corrected)")


def _describe(p: Param) -> dict[str, float]:
    """A parameter's values for the manifest: '' for an undated one, '@date' for each dated value."""
    if not p.dated:
        return {"": next(iter(p.values.values()))}
    return {f"@{d}": v for d, v in sorted(p.values.items())}


def apply(ctx: SettlementContext, behaviour: Behaviour, seed: int | None = None) -> SettlementContext:
    """The counterfactual context of ``behaviour`` on the static ``ctx`` (``ctx`` itself when nothing changes the visits).

    Cheap to call again with another parameter value: what depends only on the
    replayed history (who served whom) is cached on the static context.
    """
    if not behaviour.touches_history():
        return ctx
    b = behaviour if seed is None else behaviour.model_copy(update={"seed": seed})
    d = _Draft(ctx)
    if b.provider_cancellations_change is not None:
        _cancellations(d, b.provider_cancellations_change, b.seed_value)
    if b.consolidate is not None:
        _consolidate(d, b, b.seed_value)
    if b.performed_change is not None or b.performed_change_by_category:
        _performed_change(d, b)
    if b.team is not None:
        _team(d, b)
    if b.registration is not None:
        _registration(d, b)
    return _build(ctx, d)


_CATEGORICAL = ("status", "staff1", "staff2", "cancelled_by", "cancel_reason", "registration")
_ARRAYS = {"status": "v_status", "minutes": "v_minutes", "staff": "v_staff", "registered": "v_registered"}


def _build(ctx: SettlementContext, d: _Draft) -> SettlementContext:
    visits = ctx.visits.copy(deep=False)
    for name, values in d.cols.items():
        if name in _ARRAYS:
            continue
        if name in _CATEGORICAL:
            visits[name] = pd.Categorical.from_codes(values, categories=ctx.visits[name].cat.categories)
        else:
            visits[name] = values.astype(ctx.visits[name].dtype, copy=False)
    if "status" in d.cols:
        visits["status"] = pd.Categorical.from_codes(d.cols["status"], categories=ctx.visits["status"].cat.categories)
    arrays = {field_: d.cols[name] for name, field_ in _ARRAYS.items() if name in d.cols}
    if "v_status" in arrays:
        arrays["v_status"] = arrays["v_status"].astype(np.int8)
    keep = None if d.keep is None else np.flatnonzero(d.keep)
    if keep is not None:
        visits = visits.take(keep).reset_index(drop=True)
        arrays = {k: v[keep] for k, v in arrays.items()}
    out = ctx.derive(visits, keep, timing_changed=d.timing_changed, **arrays)
    out.transformations = list(ctx.transformations) + d.steps
    return out

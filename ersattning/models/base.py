"""The policy-object interface every reimbursement model implements.

A model is a pydantic object: its parameters are validated when a scenario is
loaded, and ``settle`` turns a :class:`SettlementContext` into a
:class:`Settlement` with numpy expressions over all visits at once — never a
Python loop per visit. Components (base, uplifts, cancellations, stays,
bonuses …) are kept apart all the way to the provider-month.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ersattning.behaviour import Behaviour
from ersattning.context import SettlementContext
from ersattning.exact import ExactSum, exact_sum, exact_total
from ersattning.parameters import Param, iter_params, raise_before


class ReimbursementModel(BaseModel):
    """Base class: subclasses set ``kind`` and implement ``settle``.

    ``behaviour`` holds what care is assumed to do under the model (written
    beside ``params`` in the scenario); compare settles the counterfactual
    history it gives beside the static replay (docs/models.md, "Behaviour assumptions").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    behaviour: Behaviour = Field(default_factory=Behaviour, description="behaviour assumptions under this model (neutral by default)")

    kind: ClassVar[str] = ""
    #: administrative acts this model requires, and the unit each is counted in
    admin_acts: ClassVar[dict[str, str]] = {}

    def settle(self, ctx: SettlementContext) -> Settlement:
        raise NotImplementedError

    def uses_ownership(self) -> bool:
        """Whether the model pays private providers other rates (a parameter named ``private_…`` is set).

        Such a model cannot settle a provider of unknown ownership without a stated
        default (docs/models.md); a model of one's own may override this.
        """
        return any(part.startswith("private") for name in self.parameters() for part in name.split("."))

    def parameters(self) -> dict[str, Param]:
        """Every dated parameter of the model, by dotted name (for assumptions and explain)."""
        return dict(iter_params(self))

    # -- explain: the rules behind one amount, as lines of text (``ersattning explain``) --

    def explain_visit(self, s: Settlement, i: int) -> list[str]:
        """How visit ``i`` (a row of ``s.ctx.visits``) got its amount, rule by rule.

        The default names the components the visit was paid; a model overrides
        it to say which rule gave each, with its figures.
        """
        return [f"{k}: {money(float(a[i]))}" for k, a in s.visit.items() if a[i]]

    def explain_month(self, s: Settlement, j: int) -> list[str]:
        """How recipient-month ``j`` (a row of ``s.ctx.rm``) got its amount: the rule lines, then each component.

        The default lists the components; a model puts its rule first.
        """
        return [f"{k}: {money(v)}" for k, v in s.month_components(j).items()]

    def explain_behaviour(self, ctx: SettlementContext) -> list[str]:
        """The transformations behind this model's counterfactual history (none: it settles the replay)."""
        if not ctx.transformations:
            return ["behaviour: none assumed, the replayed history is settled"]
        out = []
        for t in ctx.transformations:
            params = ", ".join(f"{k or 'value'}={v:g}" for k, v in t["parameters"].items())
            out.append(f"behaviour: {t['transformation']} ({params}): {t['description']}")
        return out

    def explain_parameters(self, day: np.datetime64) -> list[str]:
        """Every parameter in force on ``day``, with its source (or that it is an assumption)."""
        out = []
        for name, p in self.parameters().items():
            try:
                value = p.value_at(day, name)
            except ValueError:
                continue
            src = f" — {p.source}" if p.source else (" — assumption" if p.assumption else "")
            out.append(f"{name} = {value:g}{src}")
        return out


def money(x: float) -> str:
    """An amount as explanations write it."""
    return f"{x:,.2f} SEK"


#: what each kind of unpriced item is, for stderr and explain (docs/models.md, "Loud assumptions")
UNPRICED = {
    "recipient_months_without_decision": "recipient-months with no decision in force (why, for one of them: ersattning explain --recipient ID --month YYYY-MM; "
    "missing decisions: ersattning import --kind decisions)",
}


def no_decision_rule(kind: str, ctx: SettlementContext, j: int) -> str:
    """The reason recipient-month ``j`` without a decision is paid nothing by a model that prices decisions."""
    return f"no decision in force this month: {kind} prices the decision's granted time, so it pays 0.00 SEK here ({no_decision_reason(ctx, j)})"


def no_decision_reason(ctx: SettlementContext, j: int) -> str:
    """Why recipient-month ``j`` has no decision in force: none imported for the recipient, the
    last one ended, the first not yet started, a gap between two, or not enrolled meanwhile.

    End dates are exclusive (docs/models.md, "End dates"): a decision with ``valid_to`` D
    was last in force the day before D.
    """
    r = ctx.rm.iloc[j]
    month_lo = ctx.month_starts[int(r["month"])]
    month_hi = (ctx.months[int(r["month"])] + 1).astype("datetime64[D]")
    d = ctx.projection.decisions
    d = d[d["recipient"].astype(str) == str(ctx.recipient_ids[int(r["recipient"])])]
    if not len(d):
        return "none imported for this recipient: import its decisions with ersattning import --kind decisions"
    start = d["valid_from"].to_numpy().astype("datetime64[D]")
    end = d["valid_to"].to_numpy().astype("datetime64[D]")
    before = ~np.isnat(end) & (end <= month_lo)
    after = start >= month_hi
    if after.all():
        return f"not yet started: the first decision starts on {start.min()}"
    if before.all():
        last = end.max()
        return f"ended on {last} (in force up to {last - np.timedelta64(1, 'D')}: an end date is not paid)"
    if (before | after).all():
        return f"between decisions: one ended on {end[before].max()}, the next starts on {start[after].min()}"
    return "the recipient was not enrolled on the days a decision was in force this month"


def duration_text(minutes: float) -> str:
    """A length as "23 h 59 min" (seconds added when there are any): never rounded across a limit such as 24 h."""
    seconds = int(round(float(minutes) * 60))
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    return f"{h} h {m:02d} min" + (f" {sec:02d} s" if sec else "")


class Rates(BaseModel):
    """Hourly rates by rate group, optionally different for private providers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    personal_care: Param = Field(description="SEK per hour of personal care")
    service: Param = Field(description="SEK per hour of service (cleaning, laundry, shopping …)")
    private_personal_care: Param | None = Field(None, description="rate for private providers, if different")
    private_service: Param | None = None

    def per_minute(self, days: np.ndarray, personal_care: np.ndarray, private: np.ndarray) -> np.ndarray:
        """SEK per minute for each item, by its day, rate group and ownership."""
        pc = self.personal_care.at(days, "rates.personal_care")
        sv = self.service.at(days, "rates.service")
        if self.private_personal_care is not None:
            pc = np.where(private, self.private_personal_care.at(days, "rates.private_personal_care"), pc)
        if self.private_service is not None:
            sv = np.where(private, self.private_service.at(days, "rates.private_service"), sv)
        return np.where(personal_care, pc, sv) / 60.0

    def per_visit(self, ctx: SettlementContext) -> np.ndarray:
        """SEK per minute for every visit (its group, ownership and planned day), from a (day × group/ownership) table."""
        days = ctx.days_table
        named = {
            0: ("rates.service", self.service),
            1: ("rates.private_service", self.private_service) if self.private_service is not None else ("rates.service", self.service),
            2: ("rates.personal_care", self.personal_care),
            3: ("rates.private_personal_care", self.private_personal_care) if self.private_personal_care is not None else ("rates.personal_care", self.personal_care),
        }
        table = np.stack([p.at(days, name, strict=False) for name, p in named.values()], axis=1) / 60
        out = np.take(table.ravel(), ctx.v_day_rate_index)
        if np.isnan(table).any() and np.isnan(out).any():
            bad = np.isnan(out)
            name, p = named[int(ctx.v_rate_key[np.flatnonzero(bad)[0]])]
            raise_before(name, ctx.v_day[bad].min(), min(p.values))
        return out


@dataclass
class Settlement:
    """What one model pays, item by item, with its components kept apart.

    ``visit`` holds per-visit amounts (aligned with the context's visits) and
    ``month`` per-recipient-month amounts (aligned with ``ctx.rm``). Both are
    dicts component → float64 array; ``paid_minutes`` counts the minutes a
    model pays for as time (NaN where it pays no time at all).
    """

    name: str
    kind: str
    ctx: SettlementContext
    visit: dict[str, np.ndarray] = field(default_factory=dict)
    month: dict[str, np.ndarray] = field(default_factory=dict)
    visit_paid_minutes: np.ndarray | None = None
    month_paid_minutes: np.ndarray | None = None
    #: SEK one more performed minute would earn, per visit — an incentive indicator,
    #: computed on demand (``marginal_minute``) so settling stays about payment only
    marginal: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    admin_counts: dict[str, float] = field(default_factory=dict)
    #: what the model could not price, by reason (a key of ``UNPRICED``): masks over ``ctx.rm`` and over the visits
    unpriced_months: dict[str, np.ndarray] = field(default_factory=dict)
    unpriced_visits: dict[str, np.ndarray] = field(default_factory=dict)
    _provider_months: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def marginal_minute(self) -> np.ndarray:
        if self.marginal is None:
            return np.zeros(self.ctx.n_visits)
        return self.marginal()

    @property
    def components(self) -> list[str]:
        return list(dict.fromkeys([*self.visit, *self.month]))

    def recipient_months(self) -> pd.DataFrame:
        """One row per recipient-month: each component, the total and the paid minutes."""
        ctx = self.ctx
        out = {c: self.component_rm(c) for c in self.components}
        frame = pd.DataFrame(out, index=ctx.rm.index)
        frame["total"] = frame.sum(axis=1) if out else 0.0
        frame["paid_minutes"] = self.paid_minutes_by_rm()
        return frame

    def month_components(self, j: int) -> dict[str, float]:
        """Each component of recipient-month ``j`` (its visits' and its own), leaving out those that round to nothing."""
        visits = np.flatnonzero(self.ctx.v_rm == j)
        out: dict[str, float] = {}
        for k, a in self.visit.items():
            out[k] = out.get(k, 0.0) + float(a[visits].sum())
        for k, a in self.month.items():
            out[k] = out.get(k, 0.0) + float(a[j])
        return {k: v for k, v in out.items() if abs(v) > 0.005}

    def paid_minutes_by_rm(self) -> np.ndarray:
        paid = np.zeros(len(self.ctx.rm))
        known = False
        if self.visit_paid_minutes is not None:
            paid += self.ctx.rm_sum(self.visit_paid_minutes)
            known = True
        if self.month_paid_minutes is not None:
            paid += self.month_paid_minutes
            known = True
        return paid if known else np.full(len(self.ctx.rm), np.nan)

    def provider_months(self) -> pd.DataFrame:
        """Totals by provider and month, components as columns (visits go to their own provider)."""
        if self._provider_months is None:
            self._provider_months = self._by_provider_month()
        return self._provider_months

    def _by_provider_month(self) -> pd.DataFrame:
        ctx = self.ctx
        n_p, n_m = len(ctx.provider_ids), len(ctx.months)
        rm_p = ctx.rm["provider"].to_numpy()
        rm_m = ctx.rm["month"].to_numpy()
        rows = {}
        for c in self.components:
            acc = np.zeros(n_p * n_m + 1)  # last slot: months with no provider known
            if c in self.visit:
                acc[: n_p * n_m] += np.bincount(ctx.v_provider * n_m + ctx.v_month, weights=self.visit[c], minlength=n_p * n_m)
            if c in self.month:
                key = np.where(rm_p >= 0, rm_p * n_m + rm_m, n_p * n_m)
                acc += np.bincount(key, weights=self.month[c], minlength=n_p * n_m + 1)
            if acc[-1] != 0:
                raise ValueError(f"{self.name}: {acc[-1]:.2f} SEK of {c} belong to recipient-months with no provider")
            rows[c] = acc[:-1]
        frame = pd.DataFrame(rows)
        frame.insert(0, "month", np.tile(ctx.months.astype(str), n_p))
        frame.insert(0, "provider", np.repeat(ctx.provider_ids.to_numpy(), n_m))
        frame["total"] = frame[self.components].sum(axis=1) if self.components else 0.0
        return frame

    def unpriced(self) -> dict[str, tuple[int, float]]:
        """Each reason the model could not price something: (how many, what they were paid in SEK); reasons with none left out."""
        out: dict[str, tuple[int, float]] = {}
        if self.unpriced_months:
            totals = self.recipient_months()["total"].to_numpy()
            for k, mask in self.unpriced_months.items():
                if mask.any():
                    out[k] = (int(mask.sum()), exact_total(totals[mask]))
        for k, mask in self.unpriced_visits.items():
            if mask.any():
                paid = sum((exact_sum(self.ctx.rm_sum(a, mask)) for a in self.visit.values()), ExactSum())
                out[k] = (int(mask.sum()), float(paid))
        return out

    def component_rm(self, c: str) -> np.ndarray:
        """Component ``c`` per recipient-month (its visits' and its own)."""
        total = np.zeros(len(self.ctx.rm))
        if c in self.visit:
            total += self.ctx.rm_sum(self.visit[c])
        if c in self.month:
            total += self.month[c]
        return total

    def component_totals(self) -> dict[str, float]:
        """Each component's exact sum over the recipient-months (the same öre however the region is partitioned, ersattning/exact.py)."""
        return {c: exact_total(self.component_rm(c)) for c in self.components}

    def total(self) -> float:
        return float(sum(self.component_totals().values()))

"""Compare a scenario's models on one service history: cost, quality, administration.

Returns DataFrames (for notebooks and reports) and a documented JSON document
(for ``ersattning compare --format json``), which every output renders. Small
cells, and the complementary cells that keep them from being worked out, are
hidden there (suppression.py, docs/personal-data.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ersattning import __version__, projection
from ersattning.admin import AdminAssumptions, admin_table, count_units, under_behaviour
from ersattning.behaviour import apply as apply_behaviour
from ersattning.checks import DEMO_DATA, Coverage, Finding, history_figures, plausibility, preflight
from ersattning.context import OwnershipError, SettlementContext, build_context, ownership_problem
from ersattning.exact import ExactSum, GroupedSum, exact_bincount, exact_sum
from ersattning.indicators import SharedSummary, combine_shared, shared_summary
from ersattning.models.base import UNPRICED, Settlement
from ersattning.projection import Projection
from ersattning.scenario import Scenario
from ersattning.store import Store
from ersattning.store.base import SYNTH_META_KEY
from ersattning.suppression import MIN_PERSONS, complementary, is_small

HISTOGRAM_BINS = 40


class PartitionedComparisonError(RuntimeError):
    """Something that needs the whole settlement context was asked of a comparison settled in partitions."""


@dataclass
class Comparison:
    scenario: Scenario
    #: the settlement context (None when the region was settled partition by partition: see ``ctx``)
    context: SettlementContext | None
    settlements: dict[str, Settlement]  # empty when settled partition by partition
    models: pd.DataFrame  # one row per model
    components: pd.DataFrame  # model × component, SEK
    monthly: pd.DataFrame  # model × month, SEK
    providers: pd.DataFrame  # provider × model: cost, Δ vs baseline; primary/complementary/suppressed masks
    admin: pd.DataFrame  # model × act
    indicators: dict[str, dict[str, Any]]  # model → indicators (shared ones included)
    manifest: dict[str, Any]
    suppress: bool = True  # small-cell suppression (suppression.py); off only on explicit request
    providers_protected: bool = True  # the hidden providers cannot be worked out from the region's totals
    #: each model settled on the replayed history (the same object as in ``settlements`` when it assumes no behaviour)
    static_settlements: dict[str, Settlement] = field(default_factory=dict)
    static_indicators: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what each model could not price, by reason: (how many, what they were paid)
    unpriced_by_model: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)
    unknown_ownership: list[str] = field(default_factory=list)
    default_ownership: str | None = None
    #: payment per enrolled recipient-month under each model, with the recipient (for the payment distribution)
    payments: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: what the checks before and after settling found (checks.py): coverage, plausibility of the history
    checks: list[Finding] = field(default_factory=list)

    @property
    def ctx(self) -> SettlementContext:
        """The settlement context; a comparison settled partition by partition holds none (explain, the report and the analyses need one)."""
        if self.context is None:
            raise PartitionedComparisonError("this comparison was settled partition by partition and holds no settlement context; run it in one process (compare --partitions 0)")
        return self.context

    @property
    def names(self) -> list[str]:
        """The models' names, in the scenario's order."""
        return [str(n) for n in self.models["model"]]

    @property
    def region_is_small(self) -> bool:
        """The whole comparison describes 1–4 recipients."""
        return self.suppress and bool(is_small(self.manifest["recipients"]))

    @property
    def region_hidden(self) -> bool:
        """Every figure about the region is hidden: it is a small cell, or its totals would give back hidden providers."""
        return self.region_is_small or (self.suppress and not self.providers_protected)

    def suppressed_providers(self) -> np.ndarray:
        """Mask of provider rows whose figures are not shown (small ones and their complementary cells)."""
        return self.providers["suppressed"].to_numpy(dtype=bool) if self.suppress else np.zeros(len(self.providers), dtype=bool)

    def region_value(self, value: Any) -> Any:
        """A figure about the whole region, or None when the region's figures are hidden."""
        return None if self.region_hidden else value

    @cached_property
    def recipient_month_totals(self) -> pd.DataFrame:
        """Payment per recipient-month under each model (recipient, month and provider as codes of the context)."""
        frame = self.ctx.rm[["recipient", "month", "provider"]].copy()
        for name, s in self.settlements.items():
            frame[name] = s.recipient_months()["total"].to_numpy()
        return frame

    @cached_property
    def distribution(self) -> pd.DataFrame:
        """Recipient-months by payment per model on common bins, with each bin's persons and suppression masks."""
        return payment_distribution(self)

    @property
    def baseline(self) -> str:
        return self.scenario.spec.baseline

    def unpriced(self, model: str) -> dict[str, tuple[int, float]]:
        """What ``model`` could not price, by reason: (how many, what they were paid)."""
        return self.unpriced_by_model.get(model, {})

    def assumed(self, model: str) -> dict[str, Any]:
        """Assumptions the data made ``model`` rely on: providers settled at the scenario's default ownership."""
        if not self.unknown_ownership or model not in self.scenario.ownership_models():
            return {}
        return {"providers_at_default_ownership": len(self.unknown_ownership), "default_ownership": self.default_ownership}

    def findings(self) -> list[Finding]:
        """Every silent assumption and every doubt about the data said aloud, each with a stable code (docs/checks.md)."""
        out = []
        if self.manifest.get("demo"):
            out.append(DEMO_DATA)
        out += self.checks
        unknown = self.unknown_ownership
        users = [m for m in self.names if self.assumed(m)]
        if users:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            out.append(
                Finding(
                    "default_ownership_assumed",
                    f"assumption: {len(unknown)} provider(s) of unknown ownership ({shown}) settled as {self.default_ownership} (providers.default_ownership in the scenario) by {', '.join(users)}",
                    value=len(unknown),
                )
            )
        hidden = self.region_hidden
        for name in self.names:
            for reason, (n, paid) in self.unpriced(name).items():
                what = UNPRICED.get(reason, reason)
                message = f"{name}: some {what} (counts hidden: the region is small)" if hidden else f"{name}: {n:,} {what}: paid {paid:,.2f} SEK"
                out.append(Finding(f"unpriced_{reason}", message, value=None if hidden else n))
        return out

    def warnings(self) -> list[str]:
        """The findings' messages (``compare`` prints these on stderr)."""
        return [f.message for f in self.findings()]

    def suppression(self) -> dict[str, Any]:
        """How many cells each rule hid (suppression.py)."""
        on = self.suppress
        p, d = self.providers, self.distribution
        count = lambda frame, col: int(frame[col].sum()) if on else 0  # noqa: E731
        return {
            "on": on,
            "min_persons": MIN_PERSONS,
            "providers_suppressed": count(p, "suppressed"),
            "providers_primary": count(p, "primary"),
            "providers_complementary": count(p, "complementary"),
            "bins_suppressed": count(d, "suppressed"),
            "bins_primary": count(d, "primary"),
            "bins_complementary": count(d, "complementary"),
            "region_suppressed": self.region_hidden,
            "region_reason": None if not self.region_hidden else ("fewer than 5 recipients" if self.region_is_small else "its totals would give back hidden providers"),
        }

    def transformations(self, model: str) -> list[dict[str, Any]]:
        """The behaviour transformations of ``model`` in order (none: it settles the replay); visit counts hidden like every region figure."""
        t = self.manifest.get("transformations", {}).get(model)
        if not t:
            return []
        return [{**step, "visits": self.region_value(step["visits"])} for step in t["steps"]]

    def _static_json(self, row: pd.Series) -> dict[str, Any]:
        """A model's figures on the replayed history, beside its figures under its behaviour assumptions."""
        r = self.region_value
        name = row["model"]
        return {
            "cost_sek": r(_num(row["static_cost_sek"])),
            "delta_vs_baseline_sek": r(_num(row["static_delta_sek"])),
            "delta_vs_baseline_pct": r(_num(row["static_delta_pct"])),
            "paid_hours": r(_num(row["static_paid_hours"])),
            "performed_hours": r(_num(row["static_performed_hours"])),
            "admin_hours": r(_num(row["static_admin_hours"])),
            "admin_cost_sek": r(_num(row["static_admin_cost_sek"])),
            "indicators": {k: r(_num(v)) for k, v in self.static_indicators.get(name, self.indicators[name]).items()},
        }

    def to_json(self) -> dict[str, Any]:
        r = self.region_value
        dist = self.distribution
        models = []
        for _, row in self.models.iterrows():
            name = row["model"]
            bins = dist[dist["model"] == name]
            hidden_bins = bins["suppressed"].to_numpy(dtype=bool) & self.suppress
            models.append(
                {
                    "name": name,
                    "label": row["label"],
                    "kind": row["kind"],
                    "cost_sek": r(_num(row["cost_sek"])),
                    "delta_vs_baseline_sek": r(_num(row["delta_sek"])),
                    "delta_vs_baseline_pct": r(_num(row["delta_pct"])),
                    "cost_per_recipient_month_sek": r(_num(row["cost_per_recipient_month_sek"])),
                    "paid_hours": r(_num(row["paid_hours"])),
                    "performed_hours": r(_num(row["performed_hours"])),
                    "granted_hours": r(_num(row["granted_hours"])),
                    "admin_hours": r(_num(row["admin_hours"])),
                    "admin_cost_sek": r(_num(row["admin_cost_sek"])),
                    "components": {k: r(_num(v)) for k, v in self.components.loc[name].items() if not (isinstance(v, float) and math.isnan(v))},
                    "admin": [
                        {k: (r(_num(v)) if k in ("count", "hours", "cost_sek") else _num(v) if isinstance(v, (int, float, np.number)) else v) for k, v in a.items() if k != "model"}
                        for a in self.admin[self.admin["model"] == name].to_dict("records")
                    ],
                    "indicators": {k: r(_num(v)) for k, v in self.indicators[name].items()},
                    "monthly_cost_sek": {m: r(_num(v)) for m, v in self.monthly.loc[name].items()},
                    # a hidden region shows no bins at all: their edges and which of them are empty come from its data
                    "payment_distribution": []
                    if self.region_hidden
                    else [
                        {"from": _num(f), "to": _num(t), "recipient_months": None if h else int(n)}
                        for f, t, n, h in zip(bins["bin_from"], bins["bin_to"], bins["recipient_months"], hidden_bins, strict=True)
                    ],
                    "unpriced": {k: r(n) for k, (n, _) in self.unpriced(name).items()},
                    "unpriced_paid_sek": {k: r(_num(paid)) for k, (_, paid) in self.unpriced(name).items()},
                    "assumed": self.assumed(name),
                    "static": self._static_json(row),
                    "transformations": self.transformations(name),
                }
            )
        providers = []
        hidden = self.suppressed_providers()
        for i, (_, row) in enumerate(self.providers.iterrows()):
            item = {"provider": row["provider"], "recipients": None if hidden[i] else int(row["recipients"]), "suppressed": bool(hidden[i])}
            if not hidden[i]:
                item["cost_sek"] = {m: _num(row[f"cost:{m}"]) for m in self.names}
                item["delta_vs_baseline_sek"] = {m: _num(row[f"delta:{m}"]) for m in self.names}
            providers.append(item)
        manifest = {**self.manifest, **{k: r(self.manifest[k]) for k in ("recipients", "recipient_months", "visits")}}
        manifest["transformations"] = {m: {**t, "steps": self.transformations(m)} for m, t in self.manifest.get("transformations", {}).items()}
        return {
            "scenario": self.scenario.name,
            "baseline": self.baseline,
            "warnings": [f.to_json() for f in self.findings()],
            "suppression": self.suppression(),
            "models": models,
            "providers": providers,
            "manifest": manifest,
        }


def _num(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) else round(f, 4)
    return v


@dataclass
class ModelSummary:
    """One model's settlement on one partition of recipients, small enough to ship: exact sums, counts and
    provider-month bins. Summaries of disjoint partitions add up to the region's (``combine``)."""

    components: dict[str, ExactSum]
    provider_months: dict[str, GroupedSum]  # component → providers × months bins
    paid: ExactSum | None  # None: the model pays no time
    unpaid_performed: ExactSum
    paid_not_performed: ExactSum
    marginal: tuple[ExactSum, ExactSum]  # Σ SEK per staff-minute × weight, Σ weight
    unpriced: dict[str, tuple[int, ExactSum]]
    units: dict[str, float]  # admin units that add up across partitions
    team_months: np.ndarray  # distinct team × months + month keys (teams serve many recipients)
    shared: SharedSummary | None  # the history it was settled on (None: model indicators only)


@dataclass
class PartitionSummary:
    """A scenario settled on one partition of recipients (or on the whole region as one partition)."""

    provider_ids: list[str]
    months: list[str]
    models: dict[str, ModelSummary]
    static: dict[str, ModelSummary]  # models whose static replay differs from their counterfactual
    shared: SharedSummary  # the replayed history
    payments: pd.DataFrame  # enrolled recipient-months: recipient (made unique across partitions), each model's total
    pair_provider: np.ndarray  # each (provider, recipient) served, once
    pair_recipient: np.ndarray
    unknown_ownership: np.ndarray  # mask over provider_ids
    default_ownership: str | None
    transformations: dict[str, dict[str, Any]]


@dataclass
class Settled:
    """The settlements of one partition (kept in memory by the single-process path) and their summary."""

    settlements: dict[str, Settlement]
    static_settlements: dict[str, Settlement]
    summary: PartitionSummary


#: admin units that need the whole region: counted in ``combine`` from the combined bins and keys
_REGION_UNITS = ("provider_month", "team_month")


@dataclass
class _VisitKeys:
    """What every settlement on one context shares in its summary (computed once per context)."""

    staff_minutes: np.ndarray  # performed minutes × staff, per visit
    staff_minutes_rm: np.ndarray  # … per recipient-month
    rm_key: np.ndarray  # provider × months + month of each recipient-month (providers × months: none known)
    v_key: np.ndarray  # provider × months + month of each visit
    foreign: np.ndarray  # visits at another provider than their recipient-month's
    mixed: np.ndarray  # recipient-months with such visits
    mixed_own: np.ndarray  # the other visits of those recipient-months


def _visit_keys(ctx: SettlementContext) -> _VisitKeys:
    cached = ctx.cache.get("summary.keys")
    if isinstance(cached, _VisitKeys):
        return cached
    n_p, n_m = len(ctx.provider_ids), len(ctx.months)
    rm_p = ctx.rm["provider"].to_numpy()
    rm_key = np.where(rm_p >= 0, rm_p * n_m + ctx.rm["month"].to_numpy(), n_p * n_m)
    v_key = ctx.v_provider.astype(np.int64) * n_m + ctx.v_month
    own = v_key == rm_key[ctx.v_rm] if ctx.n_visits else np.zeros(0, dtype=bool)
    foreign = np.flatnonzero(~own)
    mixed = np.unique(ctx.v_rm[foreign])
    is_mixed = np.zeros(len(ctx.rm), dtype=bool)
    is_mixed[mixed] = True
    staff_minutes = ctx.v_minutes * ctx.v_staff
    keys = _VisitKeys(staff_minutes, ctx.rm_sum(staff_minutes), rm_key, v_key, foreign, mixed, np.flatnonzero(own & is_mixed[ctx.v_rm]))
    ctx.cache["summary.keys"] = keys
    return keys


def _provider_month_sums(s: Settlement, per_rm: dict[str, np.ndarray]) -> dict[str, GroupedSum]:
    """Each component by provider × month, exactly: a recipient-month's visits at its own provider and its own
    amounts summed per recipient-month first (the same in every partition), visits at another provider one by one."""
    ctx = s.ctx
    k = _visit_keys(ctx)
    n = len(ctx.provider_ids) * len(ctx.months) + 1
    out = {}
    for c in s.components:
        own = per_rm[c]
        if c in s.visit and len(k.foreign):  # the recipient-months with visits elsewhere: their own visits again
            own = own.copy()
            own[k.mixed] = np.bincount(ctx.v_rm[k.mixed_own], weights=s.visit[c][k.mixed_own], minlength=len(ctx.rm))[k.mixed]
            if c in s.month:
                own[k.mixed] += s.month[c][k.mixed]
        bins = exact_bincount(k.rm_key, own, n)
        if c in s.visit and len(k.foreign):
            bins = bins + exact_bincount(k.v_key[k.foreign], s.visit[c][k.foreign], n)
        if bins.scaled[-1] or bins.special[-1]:
            raise ValueError(f"{s.name}: {bins.to_floats()[-1]:.2f} SEK of {c} belong to recipient-months with no provider")
        out[c] = GroupedSum(bins.scaled[:-1], bins.special[:-1])
    return out


def recipient_month_components(s: Settlement) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each component per recipient-month and their total (as ``Settlement.recipient_months``)."""
    per_rm = {c: s.component_rm(c) for c in s.components}
    total = pd.DataFrame(per_rm).sum(axis=1).to_numpy() if per_rm else np.zeros(len(s.ctx.rm))
    return per_rm, total


def summarise_model(s: Settlement, acts: dict[str, str], shared: SharedSummary | None, per_rm: tuple[dict[str, np.ndarray], np.ndarray] | None = None) -> ModelSummary:
    """What ``combine`` needs of one settlement on one partition (``per_rm``: ``recipient_month_components(s)`` if at hand)."""
    ctx = s.ctx
    k = _visit_keys(ctx)
    components, totals = per_rm or recipient_month_components(s)
    paid = s.paid_minutes_by_rm()
    known = bool(len(paid)) and not np.isnan(paid).all()
    marginal = ExactSum()
    if k.staff_minutes.any():
        per_staff_minute = np.where(ctx.v_staff > 0, s.marginal_minute / np.maximum(ctx.v_staff, 1), 0.0)
        marginal = exact_sum(ctx.rm_sum(per_staff_minute * k.staff_minutes))
    unpriced: dict[str, tuple[int, ExactSum]] = {r: (int(mask.sum()), exact_sum(totals[mask])) for r, mask in s.unpriced_months.items()}
    for r, mask in s.unpriced_visits.items():
        unpriced[r] = (int(mask.sum()), sum((exact_sum(ctx.rm_sum(a, mask)) for a in s.visit.values()), ExactSum()))
    units = {u: count_units(ctx, s, u) for u in set(acts.values()) if u not in _REGION_UNITS}
    team_months = np.unique(ctx.v_team.astype(np.int64) * len(ctx.months) + ctx.v_month) if "team_month" in acts.values() else np.zeros(0, dtype=np.int64)
    return ModelSummary(
        components={c: exact_sum(v) for c, v in components.items()},
        provider_months=_provider_month_sums(s, components),
        paid=exact_sum(paid) if known else None,
        unpaid_performed=exact_sum(np.maximum(k.staff_minutes_rm - paid, 0)) if known else ExactSum(),
        paid_not_performed=exact_sum(np.maximum(paid - k.staff_minutes_rm, 0)) if known else ExactSum(),
        marginal=(marginal, exact_sum(k.staff_minutes_rm)),
        unpriced=unpriced,
        units=units,
        team_months=team_months,
        shared=shared,
    )


def settle_partition(scenario: Scenario, ctx: SettlementContext, *, recipient_offset: int = 0, progress: Callable[[str], None] | None = None) -> Settled:
    """Settle every model of the scenario on ``ctx`` (the region, or one partition of its recipients) and summarise."""
    step = progress or (lambda _: None)
    step("indicators")
    tolerance = scenario.spec.indicators.punctuality_tolerance_minutes
    shared = shared_summary(ctx, tolerance)
    settlements: dict[str, Settlement] = {}
    static_settlements: dict[str, Settlement] = {}
    models: dict[str, ModelSummary] = {}
    static: dict[str, ModelSummary] = {}
    transformations: dict[str, dict[str, Any]] = {}
    enrolled = ctx.rm["days_enrolled"].to_numpy() > 0
    payments = pd.DataFrame({"recipient": ctx.rm["recipient"].to_numpy()[enrolled].astype(np.int64) + recipient_offset})
    for entry, model in scenario.models:
        step(f"settle {entry.name}")
        acts = scenario.acts(entry, model)
        behaviour = model.behaviour
        # the counterfactual history of the model's behaviour assumptions (ctx itself when there are none)
        cf = apply_behaviour(ctx, behaviour)
        s = model.settle(cf)
        s.name = entry.name
        settlements[entry.name] = s
        per_rm = recipient_month_components(s)
        models[entry.name] = summarise_model(s, acts, shared if cf is ctx else shared_summary(cf, tolerance), per_rm)
        payments[entry.name] = per_rm[1][enrolled]
        if cf is ctx:
            static_settlements[entry.name] = s
        else:
            s0 = model.settle(ctx)
            s0.name = entry.name
            static_settlements[entry.name] = s0
            static[entry.name] = summarise_model(s0, acts, shared)
        if not behaviour.is_neutral():
            transformations[entry.name] = {"seed": behaviour.seed_value, "steps": [] if cf is ctx else cf.transformations, "admin_minutes": {k: p.describe() for k, p in behaviour.admin_minutes.items()}}
    pairs = _provider_recipient_pairs(ctx)
    n_r = max(len(ctx.recipient_ids), 1)
    used = np.zeros(len(ctx.provider_ids), dtype=bool)
    used[ctx.provider_ids.get_indexer(pd.Index(ctx.unknown_ownership))] = True
    summary = PartitionSummary(
        provider_ids=[str(p) for p in ctx.provider_ids],
        months=[str(m) for m in ctx.months.astype(str)],
        models=models,
        static=static,
        shared=shared,
        payments=payments,
        pair_provider=pairs // n_r,
        pair_recipient=pairs % n_r + recipient_offset,
        unknown_ownership=used,
        default_ownership=ctx.default_ownership,
        transformations=transformations,
    )
    return Settled(settlements, static_settlements, summary)


def _provider_month_frame(parts: list[ModelSummary], provider_ids: list[str], months: list[str]) -> pd.DataFrame:
    """The model's totals by provider and month (``Settlement.provider_months``' layout) from the partitions' bins."""
    components = list(dict.fromkeys(c for p in parts for c in p.provider_months))
    n_p, n_m = len(provider_ids), len(months)
    rows = {}
    for c in components:
        bins = [p.provider_months[c] for p in parts if c in p.provider_months]
        total = bins[0]
        for b in bins[1:]:
            total = total + b
        rows[c] = total.to_floats() if n_p * n_m else np.zeros(0)
    frame = pd.DataFrame(rows, index=pd.RangeIndex(n_p * n_m))
    frame.insert(0, "month", np.tile(np.array(months), n_p))
    frame.insert(0, "provider", np.repeat(np.array(provider_ids, dtype=object), n_m))
    frame["total"] = frame[components].sum(axis=1) if components else 0.0
    return frame


def model_indicators(s: Settlement) -> dict[str, float | None]:
    """What a model pays for, and the incentive it sets (one settlement, the region in one piece)."""
    ctx = s.ctx
    part = [summarise_model(s, {}, None)]
    return _model_indicators(part, _provider_month_frame(part, [str(p) for p in ctx.provider_ids], [str(m) for m in ctx.months.astype(str)]))


def _model_indicators(parts: list[ModelSummary], pm: pd.DataFrame) -> dict[str, float | None]:
    """What a model pays for, and the incentive it sets."""
    out: dict[str, float | None] = {}
    paid = [p.paid for p in parts if p.paid is not None]
    if not paid:
        out["paid_hours"] = None
        out["unpaid_performed_hours"] = None
        out["paid_not_performed_hours"] = None
    else:
        out["paid_hours"] = float(sum(paid, ExactSum())) / 60
        out["unpaid_performed_hours"] = float(sum((p.unpaid_performed for p in parts), ExactSum())) / 60
        out["paid_not_performed_hours"] = float(sum((p.paid_not_performed for p in parts), ExactSum())) / 60
    weights = float(sum((p.marginal[1] for p in parts), ExactSum()))
    # SEK per extra staff-minute, averaged over performed time
    out["marginal_sek_per_minute"] = float(sum((p.marginal[0] for p in parts), ExactSum())) / weights if weights > 0 else None
    monthly = pm.pivot(index="provider", columns="month", values="total")
    monthly = monthly[monthly.sum(axis=1) > 0]
    if len(monthly) and monthly.shape[1] > 1:
        cv = monthly.std(axis=1, ddof=0) / monthly.mean(axis=1)
        out["revenue_volatility"] = float(cv.median())
    else:
        out["revenue_volatility"] = None
    return out


def _unpriced(parts: list[ModelSummary]) -> dict[str, tuple[int, float]]:
    out: dict[str, tuple[int, float]] = {}
    for reason in dict.fromkeys(k for p in parts for k in p.unpriced):
        n = sum(p.unpriced[reason][0] for p in parts if reason in p.unpriced)
        if n:
            out[reason] = (n, float(sum((p.unpriced[reason][1] for p in parts if reason in p.unpriced), ExactSum())))
    return out


@dataclass
class _Reduced:
    cost: float
    components: dict[str, float]
    provider_months: pd.DataFrame
    indicators: dict[str, Any]
    admin: pd.DataFrame


def _reduce_model(scenario: Scenario, acts: dict[str, str], admin: AdminAssumptions, parts: list[ModelSummary], provider_ids: list[str], months: list[str]) -> _Reduced:
    """One model's figures on the region from its partitions' summaries."""
    components = {c: float(sum((p.components[c] for p in parts if c in p.components), ExactSum())) for c in dict.fromkeys(c for p in parts for c in p.components)}
    pm = _provider_month_frame(parts, provider_ids, months)
    counts = {u: float(sum(p.units.get(u, 0.0) for p in parts)) for u in set(acts.values()) if u not in _REGION_UNITS}
    counts["provider_month"] = float((pm["total"].to_numpy() != 0).sum())
    counts["team_month"] = float(len(np.unique(np.concatenate([p.team_months for p in parts]))))
    day = np.array([np.datetime64(months[0], "D")]) if months else np.array([], dtype="datetime64[D]")
    indicators = {**combine_shared([p.shared for p in parts if p.shared is not None]), **_model_indicators(parts, pm)}
    return _Reduced(float(sum(components.values())), components, pm, indicators, admin_table(day, acts, admin, counts))


def combine(scenario: Scenario, parts: list[PartitionSummary], manifest: dict[str, Any], *, suppress: bool = True) -> Comparison:
    """The comparison of the region from its partitions' summaries (one summary: the region in one piece).

    Sums are exact (ersattning/exact.py), so the partitioning changes no öre; medians and the payment
    distribution come from gathered small data: window counts per provider and value, and one payment
    per recipient-month and model (docs/ARCHITECTURE.md, "Large regions").
    """
    first = parts[0]
    provider_ids, months = first.provider_ids, first.months
    unknown_mask = np.logical_or.reduce([p.unknown_ownership for p in parts])
    unknown = [provider_ids[i] for i in np.flatnonzero(unknown_mask)]
    problem = ownership_problem(unknown, first.default_ownership, scenario.ownership_models())
    if problem:
        raise OwnershipError(problem)
    shared = combine_shared([p.shared for p in parts])
    recipient_months = int(shared["recipient_months"] or 0)
    rows, admin_rows, monthly, components, indicators, provider_months = [], [], {}, {}, {}, {}
    static_indicators: dict[str, dict[str, Any]] = {}
    unpriced: dict[str, dict[str, tuple[int, float]]] = {}
    for entry, model in scenario.models:
        name = entry.name
        acts = scenario.acts(entry, model)
        effective = [p.models[name] for p in parts]
        r = _reduce_model(scenario, acts, under_behaviour(scenario.spec.admin, model.behaviour.admin_minutes), effective, provider_ids, months)
        if name in first.static:
            r0 = _reduce_model(scenario, acts, scenario.spec.admin, [p.static[name] for p in parts], provider_ids, months)
        elif model.behaviour.admin_minutes:  # only its own admin minutes: the same settlement, the scenario's minutes
            r0 = _Reduced(r.cost, r.components, r.provider_months, r.indicators, _reduce_model(scenario, acts, scenario.spec.admin, effective, provider_ids, months).admin)
        else:
            r0 = r
        static_indicators[name] = r0.indicators
        indicators[name] = r.indicators
        unpriced[name] = _unpriced(effective)
        admin = r.admin
        admin.insert(0, "model", name)
        admin_rows.append(admin)
        provider_months[name] = r.provider_months
        monthly[name] = r.provider_months.groupby("month", sort=True)["total"].sum()
        components[name] = pd.Series(r.components, dtype=np.float64)
        rows.append(
            {
                "model": name,
                "label": entry.label or name,
                "kind": model.kind,
                "cost_sek": r.cost,
                "cost_per_recipient_month_sek": r.cost / recipient_months if recipient_months else float("nan"),
                "paid_hours": r.indicators["paid_hours"],
                "performed_hours": r.indicators["performed_hours"],
                "granted_hours": r.indicators["granted_hours"],
                "admin_hours": float(r.admin["hours"].sum()),
                "admin_cost_sek": float(r.admin["cost_sek"].sum()),
                # the static replay beside it (the same figures when the model assumes no behaviour)
                "static_cost_sek": r0.cost,
                "static_paid_hours": r0.indicators["paid_hours"],
                "static_performed_hours": r0.indicators["performed_hours"],
                "static_admin_hours": float(r0.admin["hours"].sum()),
                "static_admin_cost_sek": float(r0.admin["cost_sek"].sum()),
            }
        )
    models = pd.DataFrame(rows)
    base_cost = float(models.loc[models["model"] == scenario.spec.baseline, "cost_sek"].iloc[0])
    models["delta_sek"] = models["cost_sek"] - base_cost
    models["delta_pct"] = models["delta_sek"] / base_cost * 100 if base_cost else float("nan")
    static_base = float(models.loc[models["model"] == scenario.spec.baseline, "static_cost_sek"].iloc[0])
    models["static_delta_sek"] = models["static_cost_sek"] - static_base
    models["static_delta_pct"] = models["static_delta_sek"] / static_base * 100 if static_base else float("nan")
    pair_provider = np.concatenate([p.pair_provider for p in parts])
    pair_recipient = np.concatenate([p.pair_recipient for p in parts])
    providers = _providers(provider_ids, pair_provider, pair_recipient, provider_months, scenario.spec.baseline)
    transformations = first.transformations
    manifest = {
        **manifest,
        "visits": sum(p.shared.visits for p in parts),
        "recipients": int(shared["recipients"] or 0),
        "recipient_months": recipient_months,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # each model's behaviour assumptions as applied: seed, the transformations in order, its own admin minutes
        "transformations": transformations,
    }
    c = Comparison(
        static_indicators=static_indicators,
        providers_protected=bool(providers.attrs.get("providers_protected", True)),
        scenario=scenario,
        context=None,
        settlements={},
        models=models,
        components=pd.DataFrame(components).T.fillna(0.0),
        monthly=pd.DataFrame(monthly).T,
        providers=providers,
        admin=pd.concat(admin_rows, ignore_index=True),
        indicators=indicators,
        manifest=manifest,
        suppress=suppress,
        unpriced_by_model=unpriced,
        unknown_ownership=unknown,
        default_ownership=first.default_ownership,
        payments=pd.concat([p.payments for p in parts], ignore_index=True),
    )
    c.checks = plausibility(history_figures([p.shared for p in parts], shared), hidden=c.region_hidden)
    return c


def comparison_manifest(scenario: Scenario, store: Store | tuple[str, str], position: int, as_of: datetime | str | None) -> dict[str, Any]:
    """The manifest's fields that come from the scenario and the store (``combine`` adds the counts); ``store``
    may be given as (where, store id) when only its partitioned projection is at hand."""
    where, store_id = store if isinstance(store, tuple) else (store.location.display_url, store.store_id)
    synthetic = not isinstance(store, tuple) and store.get_meta(SYNTH_META_KEY) is not None
    return {
        "version": __version__,
        "scenario": scenario.name,
        "scenario_path": scenario.path,
        "scenario_sha256": scenario.sha256,
        "store": where,
        "store_id": store_id,
        "store_position": int(position),
        "as_of": None if as_of is None else str(pd.Timestamp(as_of)),
        "period": {"start": scenario.spec.period.start, "end": scenario.spec.period.end},
        "period_from": scenario.period_from,
        # a synthetic region (ersattning synth, or the demo compare writes): its figures are not real ones
        "demo": synthetic,
    }


def compare(scenario: Scenario, store: Store, *, as_of: datetime | str | None = None, suppress: bool = True, progress: Callable[[str], None] | None = None) -> Comparison:
    """Settle every model of the scenario on the store (as known at ``as_of``); ``progress`` is told each step.

    The region is settled as one partition and combined by the same code a partitioned run uses
    (ersattning/partitioned/), so both give the same figures.
    """
    step = progress or (lambda _: None)
    step("projection")
    return compare_projection(scenario, store, projection.load(store, as_of=as_of), as_of=as_of, suppress=suppress, progress=step)


def compare_projection(
    scenario: Scenario, store: Store, proj: Projection, *, as_of: datetime | str | None = None, suppress: bool = True, progress: Callable[[str], None] | None = None
) -> Comparison:
    """``compare`` on a projection of ``store`` already loaded (as known at ``as_of``)."""
    step = progress or (lambda _: None)
    found = preflight(scenario, Coverage.of(proj), store.location.display_url)
    ctx = build_context(proj, scenario.spec.period.start, scenario.spec.period.end, scenario.default_ownership)
    problem = ctx.ownership_problem(scenario.ownership_models())
    if problem:
        raise OwnershipError(problem)
    settled = settle_partition(scenario, ctx, progress=step)
    c = combine(scenario, [settled.summary], comparison_manifest(scenario, store, proj.position, as_of), suppress=suppress)
    c.checks = found + c.checks
    c.context = ctx
    c.settlements = settled.settlements
    c.static_settlements = settled.static_settlements
    return c


def _providers(provider_ids: list[str], pair_provider: np.ndarray, pair_recipient: np.ndarray, provider_months: dict[str, pd.DataFrame], baseline: str) -> pd.DataFrame:
    """Cost per provider and model, Δ vs the baseline; which rows are hidden (small ones and their complementary cells).

    ``pair_provider``/``pair_recipient``: each (provider code, recipient) served once. ``providers_protected`` in
    ``attrs``: False when no choice of providers hides the small ones from the region's totals.
    """
    names = list(provider_months)
    counts = np.bincount(pair_provider, minlength=len(provider_ids))
    out = pd.DataFrame({"provider": np.array(provider_ids, dtype=object), "recipients": counts, "code": np.arange(len(provider_ids))})
    for name, pm in provider_months.items():
        out[f"cost:{name}"] = pm.groupby("provider", sort=False)["total"].sum().reindex(out["provider"]).to_numpy()
    for name in names:
        out[f"delta:{name}"] = out[f"cost:{name}"] - out[f"cost:{baseline}"]
    cost = out[[f"cost:{n}" for n in names]].fillna(0.0).to_numpy()
    out = out[(out["recipients"] > 0) | (np.abs(cost).sum(axis=1) > 0)].reset_index(drop=True)
    cost = out[[f"cost:{n}" for n in names]].fillna(0.0).to_numpy()
    persons = out["recipients"].to_numpy()
    primary = persons < MIN_PERSONS  # 0 too: a provider paid for nobody is shown nowhere
    codes = out["code"].to_numpy()

    def group_size(hidden: np.ndarray) -> int:
        return int(np.unique(pair_recipient[np.isin(pair_provider, codes[hidden])]).size)

    hidden, protected = complementary(persons, primary, counts=persons[:, None], amounts=cost, group_size=group_size)
    out["primary"] = primary
    out["complementary"] = hidden & ~primary
    out["suppressed"] = hidden
    out.attrs["providers_protected"] = protected
    return out.drop(columns="code")


def _provider_recipient_pairs(ctx: SettlementContext) -> np.ndarray:
    """Each (provider, recipient) served — by a visit, or a recipient-month paid to it — once, as provider × n_r + recipient."""
    n_p, n_r = len(ctx.provider_ids), max(len(ctx.recipient_ids), 1)
    rm_p = ctx.rm["provider"].to_numpy()
    ok = rm_p >= 0
    keys = np.concatenate([ctx.v_provider.astype(np.int64) * n_r + ctx.v_recipient, rm_p[ok].astype(np.int64) * n_r + ctx.rm["recipient"].to_numpy()[ok]])
    if n_p * n_r <= 50_000_000:
        return np.flatnonzero(np.bincount(keys, minlength=n_p * n_r) > 0)
    return np.unique(keys)


def payment_distribution(c: Comparison, bins: int = HISTOGRAM_BINS) -> pd.DataFrame:
    """Recipient-months by payment, per model, on common bins; each bin's persons and what is hidden.

    A bin is a primary cell when its recipient-months belong to 1–4 distinct
    recipients (one person's twelve months are still one person); the bins of
    a model add up to the recipient-months, so complementary bins are hidden
    too (suppression.complementary). The bins span the 1st to the 99th
    percentile over all models; the two open tails are bins of their own, so no
    single recipient-month stands out at the edges. ``bin_from``/``bin_to`` are
    NaN for the open ends.
    """
    columns = ["model", "bin_from", "bin_to", "recipient_months", "persons", "primary", "complementary", "suppressed"]
    rm = c.payments
    recipient = rm["recipient"].to_numpy().astype(np.int64) if len(rm) else np.zeros(0, dtype=np.int64)
    names = c.names
    values = {n: rm[n].to_numpy() if n in rm else np.zeros(0) for n in names}
    every = np.concatenate(list(values.values())) if names else np.array([])
    if every.size == 0:
        return pd.DataFrame(columns=columns)
    lo, hi = np.percentile(every, [1, 99])
    lo, hi = _nice_floor(lo), _nice_ceil(hi)
    if hi <= lo:
        hi = lo + 1
    edges = np.linspace(lo, hi, bins + 1)
    n_bins = bins + 2  # below lo, the inner bins, above hi
    frm = np.concatenate([[np.nan], edges[:-1], [hi]])
    to = np.concatenate([[lo], edges[1:], [np.nan]])
    n_r = int(recipient.max()) + 1 if recipient.size else 1
    rows = []
    for n in names:
        v = values[n]
        inner = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1) + 1  # the last inner bin includes hi
        which = np.where(v < lo, 0, np.where(v > hi, n_bins - 1, inner))
        months = np.bincount(which, minlength=n_bins)
        pairs = np.unique(which * n_r + recipient)
        pair_bin, pair_recipient = pairs // n_r, pairs % n_r
        persons = np.bincount(pair_bin, minlength=n_bins)
        primary = is_small(persons)

        def group_size(hidden: np.ndarray, pair_bin: np.ndarray = pair_bin, pair_recipient: np.ndarray = pair_recipient) -> int:
            return int(np.unique(pair_recipient[hidden[pair_bin]]).size)

        hidden, protected = complementary(persons, primary, counts=months[:, None], group_size=group_size)
        if not protected:  # the bins' total is the region's recipient-months: hide every bin with someone in it
            hidden = persons > 0
        rows.append(pd.DataFrame({"model": n, "bin_from": frm, "bin_to": to, "recipient_months": months, "persons": persons, "primary": primary, "complementary": hidden & ~primary, "suppressed": hidden}))
    return pd.concat(rows, ignore_index=True)


def _nice_floor(x: float) -> float:
    step = 10 ** max(np.floor(np.log10(abs(x))) - 1, 0) if x else 1
    return float(np.floor(x / step) * step)


def _nice_ceil(x: float) -> float:
    step = 10 ** max(np.floor(np.log10(abs(x))) - 1, 0) if x else 1
    return float(np.ceil(x / step) * step)


def winners_and_losers(c: Comparison, n: int = 3) -> dict[str, dict[str, list[tuple[str, float, float]]]]:
    """For each non-baseline model: providers gaining and losing most (SEK, % of baseline), suppressed ones left out."""
    p = c.providers[~c.suppressed_providers()]
    out = {}
    for name in c.names:
        if name == c.baseline:
            continue
        delta = p[f"delta:{name}"]
        base = p[f"cost:{c.baseline}"].replace(0, np.nan)
        pct = delta / base * 100
        order = delta.sort_values()
        losers = [(p.loc[i, "provider"], float(delta[i]), float(pct[i])) for i in order.index[:n] if delta[i] < 0]
        winners = [(p.loc[i, "provider"], float(delta[i]), float(pct[i])) for i in order.index[::-1][:n] if delta[i] > 0]
        out[name] = {"winners": winners, "losers": losers}
    return out

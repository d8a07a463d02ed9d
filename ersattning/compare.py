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
from ersattning.admin import AdminAssumptions, admin_load, under_behaviour
from ersattning.behaviour import apply as apply_behaviour
from ersattning.context import OwnershipError, SettlementContext, build_context
from ersattning.indicators import shared_indicators
from ersattning.models.base import UNPRICED, ReimbursementModel, Settlement
from ersattning.scenario import Scenario
from ersattning.store import Store
from ersattning.suppression import MIN_PERSONS, complementary, is_small

HISTOGRAM_BINS = 40


@dataclass
class Comparison:
    scenario: Scenario
    ctx: SettlementContext
    settlements: dict[str, Settlement]
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
        return self.settlements[model].unpriced()

    def assumed(self, model: str) -> dict[str, Any]:
        """Assumptions the data made ``model`` rely on: providers settled at the scenario's default ownership."""
        ctx = self.ctx
        if not ctx.unknown_ownership or model not in self.scenario.ownership_models():
            return {}
        return {"providers_at_default_ownership": len(ctx.unknown_ownership), "default_ownership": ctx.default_ownership}

    def warnings(self) -> list[str]:
        """Every silent assumption said aloud (``compare`` prints these on stderr)."""
        out = []
        ctx = self.ctx
        users = [m for m in self.settlements if self.assumed(m)]
        if users:
            shown = ", ".join(ctx.unknown_ownership[:10]) + (f" and {len(ctx.unknown_ownership) - 10} more" if len(ctx.unknown_ownership) > 10 else "")
            out.append(f"assumption: {len(ctx.unknown_ownership)} provider(s) of unknown ownership ({shown}) settled as {ctx.default_ownership} (providers.default_ownership in the scenario) by {', '.join(users)}")
        for name in self.settlements:
            for reason, (n, paid) in self.unpriced(name).items():
                out.append(f"{name}: {n:,} {UNPRICED.get(reason, reason)}: paid {paid:,.2f} SEK")
        return out

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
                    "payment_distribution": [
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
                item["cost_sek"] = {m: _num(row[f"cost:{m}"]) for m in self.settlements}
                item["delta_vs_baseline_sek"] = {m: _num(row[f"delta:{m}"]) for m in self.settlements}
            providers.append(item)
        manifest = {**self.manifest, **{k: r(self.manifest[k]) for k in ("recipients", "recipient_months", "visits")}}
        manifest["transformations"] = {m: {**t, "steps": self.transformations(m)} for m, t in self.manifest.get("transformations", {}).items()}
        return {
            "scenario": self.scenario.name,
            "baseline": self.baseline,
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


def model_indicators(s: Settlement) -> dict[str, float | None]:
    """What a model pays for, and the incentive it sets."""
    ctx = s.ctx
    performed_staff_minutes = ctx.rm_sum(ctx.v_minutes * ctx.v_staff)
    paid = s.paid_minutes_by_rm()
    out: dict[str, float | None] = {}
    if np.isnan(paid).all():
        out["paid_hours"] = None
        out["unpaid_performed_hours"] = None
        out["paid_not_performed_hours"] = None
    else:
        out["paid_hours"] = float(paid.sum() / 60)
        out["unpaid_performed_hours"] = float(np.maximum(performed_staff_minutes - paid, 0).sum() / 60)
        out["paid_not_performed_hours"] = float(np.maximum(paid - performed_staff_minutes, 0).sum() / 60)
    weights = ctx.v_minutes * ctx.v_staff
    if weights.sum() > 0:
        # SEK per extra staff-minute, averaged over performed time
        per_staff_minute = np.where(ctx.v_staff > 0, s.marginal_minute / np.maximum(ctx.v_staff, 1), 0.0)
        out["marginal_sek_per_minute"] = float(np.average(per_staff_minute, weights=weights))
    else:
        out["marginal_sek_per_minute"] = None
    monthly = s.provider_months().pivot(index="provider", columns="month", values="total")
    monthly = monthly[monthly.sum(axis=1) > 0]
    if len(monthly) and monthly.shape[1] > 1:
        cv = monthly.std(axis=1, ddof=0) / monthly.mean(axis=1)
        out["revenue_volatility"] = float(cv.median())
    else:
        out["revenue_volatility"] = None
    return out


def _settle(model: ReimbursementModel, ctx: SettlementContext, acts: dict[str, str], admin: AdminAssumptions, shared: dict[str, Any]) -> tuple[Settlement, pd.DataFrame, dict[str, Any]]:
    """One model on one history (replayed or counterfactual): its settlement, admin load and indicators."""
    s = model.settle(ctx)
    return s, admin_load(ctx, s, acts, admin), {**shared, **model_indicators(s)}


def compare(scenario: Scenario, store: Store, *, as_of: datetime | str | None = None, suppress: bool = True, progress: Callable[[str], None] | None = None) -> Comparison:
    """Settle every model of the scenario on the store (as known at ``as_of``); ``progress`` is told each step."""
    step = progress or (lambda _: None)
    step("projection")
    proj = projection.load(store, as_of=as_of)
    ctx = build_context(proj, scenario.spec.period.start, scenario.spec.period.end, scenario.default_ownership)
    problem = ctx.ownership_problem(scenario.ownership_models())
    if problem:
        raise OwnershipError(problem)
    step("indicators")
    shared = shared_indicators(ctx, scenario.spec.indicators.punctuality_tolerance_minutes)
    settlements: dict[str, Settlement] = {}
    static_settlements: dict[str, Settlement] = {}
    static_indicators: dict[str, dict[str, Any]] = {}
    transformations: dict[str, dict[str, Any]] = {}
    rows, admin_rows, monthly, components, indicators = [], [], {}, {}, {}
    recipient_months = int((ctx.rm["days_enrolled"] > 0).sum())
    tolerance = scenario.spec.indicators.punctuality_tolerance_minutes
    for entry, model in scenario.models:
        step(f"settle {entry.name}")
        acts = scenario.acts(entry, model)
        behaviour = model.behaviour
        # the counterfactual history of the model's behaviour assumptions (ctx itself when there are none)
        cf = apply_behaviour(ctx, behaviour)
        s, admin, ind = _settle(model, cf, acts, under_behaviour(scenario.spec.admin, behaviour.admin_minutes), shared if cf is ctx else shared_indicators(cf, tolerance))
        s.name = entry.name
        settlements[entry.name] = s
        if behaviour.is_neutral():
            s0, admin0, ind0 = s, admin, ind
        elif cf is ctx:  # only its own admin minutes: the same settlement, the scenario's minutes
            s0, admin0, ind0 = s, admin_load(ctx, s, acts, scenario.spec.admin), ind
            transformations[entry.name] = {"seed": behaviour.seed_value, "steps": [], "admin_minutes": {k: p.describe() for k, p in behaviour.admin_minutes.items()}}
        else:
            s0, admin0, ind0 = _settle(model, ctx, acts, scenario.spec.admin, shared)
            s0.name = entry.name
            transformations[entry.name] = {"seed": behaviour.seed_value, "steps": cf.transformations, "admin_minutes": {k: p.describe() for k, p in behaviour.admin_minutes.items()}}
        static_settlements[entry.name] = s0
        static_indicators[entry.name] = ind0
        admin.insert(0, "model", entry.name)
        admin_rows.append(admin)
        indicators[entry.name] = ind
        cost = s.total()
        pm = s.provider_months()
        monthly[entry.name] = pm.groupby("month", sort=True)["total"].sum()
        components[entry.name] = pd.Series(s.component_totals())
        rows.append(
            {
                "model": entry.name,
                "label": entry.label or entry.name,
                "kind": model.kind,
                "cost_sek": cost,
                "cost_per_recipient_month_sek": cost / recipient_months if recipient_months else float("nan"),
                "paid_hours": ind["paid_hours"],
                "performed_hours": ind["performed_hours"],
                "granted_hours": ind["granted_hours"],
                "admin_hours": float(admin["hours"].sum()),
                "admin_cost_sek": float(admin["cost_sek"].sum()),
                # the static replay beside it (the same figures when the model assumes no behaviour)
                "static_cost_sek": s0.total(),
                "static_paid_hours": ind0["paid_hours"],
                "static_performed_hours": ind0["performed_hours"],
                "static_admin_hours": float(admin0["hours"].sum()),
                "static_admin_cost_sek": float(admin0["cost_sek"].sum()),
            }
        )
    models = pd.DataFrame(rows)
    base_cost = float(models.loc[models["model"] == scenario.spec.baseline, "cost_sek"].iloc[0])
    models["delta_sek"] = models["cost_sek"] - base_cost
    models["delta_pct"] = models["delta_sek"] / base_cost * 100 if base_cost else float("nan")
    static_base = float(models.loc[models["model"] == scenario.spec.baseline, "static_cost_sek"].iloc[0])
    models["static_delta_sek"] = models["static_cost_sek"] - static_base
    models["static_delta_pct"] = models["static_delta_sek"] / static_base * 100 if static_base else float("nan")
    providers = _providers(ctx, settlements, scenario.spec.baseline)
    manifest = {
        "version": __version__,
        "scenario": scenario.name,
        "scenario_path": scenario.path,
        "scenario_sha256": scenario.sha256,
        "store": store.location.display_url,
        "store_id": store.store_id,
        "store_position": int(proj.position),
        "as_of": None if as_of is None else str(pd.Timestamp(as_of)),
        "period": {"start": scenario.spec.period.start, "end": scenario.spec.period.end},
        "visits": int(ctx.n_visits),
        "recipients": int(shared["recipients"] or 0),
        "recipient_months": recipient_months,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # each model's behaviour assumptions as applied: seed, the transformations in order, its own admin minutes
        "transformations": transformations,
    }
    return Comparison(
        static_settlements=static_settlements,
        static_indicators=static_indicators,
        providers_protected=bool(providers.attrs.get("providers_protected", True)),
        scenario=scenario,
        ctx=ctx,
        settlements=settlements,
        models=models,
        components=pd.DataFrame(components).T.fillna(0.0),
        monthly=pd.DataFrame(monthly).T,
        providers=providers,
        admin=pd.concat(admin_rows, ignore_index=True),
        indicators=indicators,
        manifest=manifest,
        suppress=suppress,
    )


def _providers(ctx: SettlementContext, settlements: dict[str, Settlement], baseline: str) -> pd.DataFrame:
    """Cost per provider and model, Δ vs the baseline; which rows are hidden (small ones and their complementary cells).

    ``providers_protected`` in ``attrs``: False when no choice of providers hides the small ones from the region's totals.
    """
    pairs = _provider_recipient_pairs(ctx)
    n_r = max(len(ctx.recipient_ids), 1)
    counts = np.bincount(pairs // n_r, minlength=len(ctx.provider_ids))
    out = pd.DataFrame({"provider": ctx.provider_ids.to_numpy(), "recipients": counts, "code": np.arange(len(ctx.provider_ids))})
    for name, s in settlements.items():
        out[f"cost:{name}"] = s.provider_months().groupby("provider", sort=False)["total"].sum().reindex(out["provider"]).to_numpy()
    for name in settlements:
        out[f"delta:{name}"] = out[f"cost:{name}"] - out[f"cost:{baseline}"]
    cost = out[[f"cost:{n}" for n in settlements]].fillna(0.0).to_numpy()
    out = out[(out["recipients"] > 0) | (np.abs(cost).sum(axis=1) > 0)].reset_index(drop=True)
    cost = out[[f"cost:{n}" for n in settlements]].fillna(0.0).to_numpy()
    persons = out["recipients"].to_numpy()
    primary = persons < MIN_PERSONS  # 0 too: a provider paid for nobody is shown nowhere
    codes = out["code"].to_numpy()
    pair_provider, pair_recipient = pairs // n_r, pairs % n_r

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
    rm = c.recipient_month_totals
    enrolled = c.ctx.rm["days_enrolled"].to_numpy() > 0
    recipient = rm["recipient"].to_numpy()[enrolled].astype(np.int64)
    names = list(c.settlements)
    values = {n: rm[n].to_numpy()[enrolled] for n in names}
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
    for name in c.settlements:
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

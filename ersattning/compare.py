"""Compare a scenario's models on one service history: cost, quality, administration.

Returns DataFrames (for notebooks and reports) and a documented JSON document
(for ``ersattning compare --format json``). Person-level counts are suppressed
below five persons, as official statistics do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ersattning import __version__, projection
from ersattning.admin import admin_load
from ersattning.context import OwnershipError, SettlementContext, build_context
from ersattning.indicators import shared_indicators
from ersattning.models.base import UNPRICED, Settlement
from ersattning.scenario import Scenario
from ersattning.store import Store
from ersattning.suppression import MIN_PERSONS, PERSON_LEVEL, is_small


@dataclass
class Comparison:
    scenario: Scenario
    ctx: SettlementContext
    settlements: dict[str, Settlement]
    models: pd.DataFrame  # one row per model
    components: pd.DataFrame  # model × component, SEK
    monthly: pd.DataFrame  # model × month, SEK
    providers: pd.DataFrame  # provider × model: cost, Δ vs baseline
    admin: pd.DataFrame  # model × act
    indicators: dict[str, dict[str, Any]]  # model → indicators (shared ones included)
    manifest: dict[str, Any]
    suppress: bool = True  # small-cell suppression (suppression.py); off only on explicit request

    @property
    def region_is_small(self) -> bool:
        """The whole comparison describes 1–4 recipients: its person-level figures are suppressed."""
        return self.suppress and bool(is_small(self.manifest["recipients"]))

    def suppressed_providers(self) -> np.ndarray:
        """Mask of provider rows whose figures are not shown."""
        return self.providers["suppressed"].to_numpy(dtype=bool) if self.suppress else np.zeros(len(self.providers), dtype=bool)

    def person_value(self, key: str, value: Any) -> Any:
        """A region-level figure, or None when it is a person-level figure of a small region."""
        return None if self.region_is_small and key in PERSON_LEVEL else value

    @cached_property
    def recipient_month_totals(self) -> pd.DataFrame:
        """Payment per recipient-month under each model (recipient, month and provider as codes of the context)."""
        frame = self.ctx.rm[["recipient", "month", "provider"]].copy()
        for name, s in self.settlements.items():
            frame[name] = s.recipient_months()["total"].to_numpy()
        return frame

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

    def to_json(self) -> dict[str, Any]:
        models = []
        for _, row in self.models.iterrows():
            name = row["model"]
            models.append(
                {
                    "name": name,
                    "label": row["label"],
                    "kind": row["kind"],
                    "cost_sek": _num(row["cost_sek"]),
                    "delta_vs_baseline_sek": _num(row["delta_sek"]),
                    "delta_vs_baseline_pct": _num(row["delta_pct"]),
                    "cost_per_recipient_month_sek": self.person_value("cost_per_recipient_month_sek", _num(row["cost_per_recipient_month_sek"])),
                    "paid_hours": _num(row["paid_hours"]),
                    "performed_hours": _num(row["performed_hours"]),
                    "granted_hours": _num(row["granted_hours"]),
                    "admin_hours": _num(row["admin_hours"]),
                    "admin_cost_sek": _num(row["admin_cost_sek"]),
                    "components": {k: _num(v) for k, v in self.components.loc[name].items() if not (isinstance(v, float) and math.isnan(v))},
                    "admin": [{k: (_num(v) if isinstance(v, (int, float, np.number)) else v) for k, v in r.items() if k != "model"} for r in self.admin[self.admin["model"] == name].to_dict("records")],
                    "indicators": {k: self.person_value(k, _num(v)) for k, v in self.indicators[name].items()},
                    "monthly_cost_sek": {m: _num(v) for m, v in self.monthly.loc[name].items()},
                    "unpriced": {k: n for k, (n, _) in self.unpriced(name).items()},
                    "unpriced_paid_sek": {k: _num(paid) for k, (_, paid) in self.unpriced(name).items()},
                    "assumed": self.assumed(name),
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
        manifest = {**self.manifest, **{k: self.person_value(k, self.manifest[k]) for k in ("recipients", "recipient_months")}}
        return {
            "scenario": self.scenario.name,
            "baseline": self.baseline,
            "suppression": {"on": self.suppress, "min_persons": MIN_PERSONS, "providers_suppressed": int(hidden.sum()), "region_suppressed": self.region_is_small},
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
    rows, admin_rows, monthly, components, indicators = [], [], {}, {}, {}
    recipient_months = int((ctx.rm["days_enrolled"] > 0).sum())
    for entry, model in scenario.models:
        step(f"settle {entry.name}")
        s = model.settle(ctx)
        s.name = entry.name
        settlements[entry.name] = s
        admin = admin_load(ctx, s, scenario.acts(entry, model), scenario.spec.admin)
        admin.insert(0, "model", entry.name)
        admin_rows.append(admin)
        ind = {**shared, **model_indicators(s)}
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
                "performed_hours": shared["performed_hours"],
                "granted_hours": shared["granted_hours"],
                "admin_hours": float(admin["hours"].sum()),
                "admin_cost_sek": float(admin["cost_sek"].sum()),
            }
        )
    models = pd.DataFrame(rows)
    base_cost = float(models.loc[models["model"] == scenario.spec.baseline, "cost_sek"].iloc[0])
    models["delta_sek"] = models["cost_sek"] - base_cost
    models["delta_pct"] = models["delta_sek"] / base_cost * 100 if base_cost else float("nan")
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
    }
    return Comparison(
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
    """Cost per provider and model, Δ vs the baseline; providers with < 5 recipients suppressed."""
    counts = _persons_per_provider(ctx)
    out = pd.DataFrame({"provider": ctx.provider_ids.to_numpy(), "recipients": counts})
    for name, s in settlements.items():
        out[f"cost:{name}"] = s.provider_months().groupby("provider", sort=False)["total"].sum().reindex(out["provider"]).to_numpy()
    for name in settlements:
        out[f"delta:{name}"] = out[f"cost:{name}"] - out[f"cost:{baseline}"]
    out["suppressed"] = out["recipients"] < MIN_PERSONS  # 0 too: a provider paid for nobody is shown nowhere
    out = out[(out["recipients"] > 0) | (out[[f"cost:{n}" for n in settlements]].abs().sum(axis=1) > 0)]
    return out.reset_index(drop=True)


def _persons_per_provider(ctx: SettlementContext) -> np.ndarray:
    """Distinct recipients each provider served (a visit, or a recipient-month paid to it)."""
    n_p, n_r = len(ctx.provider_ids), len(ctx.recipient_ids)
    rm_p = ctx.rm["provider"].to_numpy()
    ok = rm_p >= 0
    keys = np.concatenate([ctx.v_provider.astype(np.int64) * n_r + ctx.v_recipient, rm_p[ok] * n_r + ctx.rm["recipient"].to_numpy()[ok]])
    if n_p * n_r <= 50_000_000:
        seen = np.bincount(keys, minlength=n_p * n_r).reshape(n_p, n_r) > 0
        return seen.sum(axis=1)
    return np.bincount(np.unique(keys) // n_r, minlength=n_p)


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

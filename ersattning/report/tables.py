"""The tables of a report, read off a comparison with small-cell suppression applied.

HTML, XLSX and charts all draw from these frames, so what one shows the others
show. Columns have canonical (English) keys; renderers translate them with
``i18n.label``. Suppressed values are NaN, with a ``suppressed`` column where a
whole row is hidden. Tables are long ("tidy") where a finance officer would
pivot them: one row per provider and model, per model and month.

A suppressed cell holds ``SUPPRESSED_MARK`` (a string), an undefined one
(e.g. hours a fixed payment does not count) NaN; renderers keep the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ersattning.compare import Comparison
from ersattning.report.assumptions import scenario_assumptions
from ersattning.suppression import PERSON_LEVEL, SUPPRESSED_MARK, is_small

MODEL_COLUMNS = [
    "model",
    "label",
    "kind",
    "cost_sek",
    "delta_sek",
    "delta_pct",
    "cost_per_recipient_month_sek",
    "paid_hours",
    "performed_hours",
    "granted_hours",
    "admin_hours",
    "admin_cost_sek",
]
HISTOGRAM_BINS = 40


@dataclass
class ReportTables:
    models: pd.DataFrame  # MODEL_COLUMNS
    components: pd.DataFrame  # model, component, cost_sek
    providers: pd.DataFrame  # provider, recipients, suppressed, model, cost_sek, delta_sek (long)
    monthly: pd.DataFrame  # model, month, cost_sek (long)
    indicators: pd.DataFrame  # indicator, then one column per model
    admin: pd.DataFrame  # model, act, unit, count, minutes_per_act, hours, cost_sek
    distribution: pd.DataFrame  # model, bin_from, bin_to, recipient_months (NaN: suppressed)
    assumptions: pd.DataFrame  # section, parameter, valid_from, value, source, is_assumption, note
    manifest: dict[str, Any]  # as in compare's JSON, plus suppression
    baseline: str
    suppress: bool
    providers_suppressed: int
    region_suppressed: bool

    @property
    def model_names(self) -> list[str]:
        return self.models["model"].tolist()

    def providers_wide(self) -> pd.DataFrame:
        """Provider × model: recipients, cost per model, Δ per model (for the HTML table)."""
        p = self.providers
        if p.empty:
            return pd.DataFrame(columns=["provider", "recipients", "suppressed"])
        first = p.drop_duplicates("provider")[["provider", "recipients", "suppressed"]].set_index("provider")
        cost = p.pivot(index="provider", columns="model", values="cost_sek")[self.model_names].add_prefix("cost:")
        delta = p.pivot(index="provider", columns="model", values="delta_sek")[self.model_names].add_prefix("delta:")
        return first.join(cost).join(delta).reset_index()


def build_tables(c: Comparison) -> ReportTables:
    """Every table of the report, suppressed as the comparison says."""
    data = c.to_json()  # the JSON is the reference: the report shows exactly its numbers
    names = [m["name"] for m in data["models"]]
    region_small = data["suppression"]["region_suppressed"]
    models = pd.DataFrame(
        [
            {
                "model": m["name"],
                "label": m["label"],
                "kind": m["kind"],
                "cost_sek": m["cost_sek"],
                "delta_sek": m["delta_vs_baseline_sek"],
                "delta_pct": m["delta_vs_baseline_pct"],
                "cost_per_recipient_month_sek": m["cost_per_recipient_month_sek"],
                "paid_hours": m["paid_hours"],
                "performed_hours": m["performed_hours"],
                "granted_hours": m["granted_hours"],
                "admin_hours": m["admin_hours"],
                "admin_cost_sek": m["admin_cost_sek"],
            }
            for m in data["models"]
        ],
        columns=MODEL_COLUMNS,
    ).astype({k: "float64" for k in MODEL_COLUMNS[3:]})
    if region_small:
        models[[k for k in MODEL_COLUMNS if k in PERSON_LEVEL]] = SUPPRESSED_MARK
    components = pd.DataFrame(
        [{"model": m["name"], "component": k, "cost_sek": v} for m in data["models"] for k, v in m["components"].items() if v],
        columns=["model", "component", "cost_sek"],
    )
    monthly = pd.DataFrame(
        [{"model": m["name"], "month": month, "cost_sek": v} for m in data["models"] for month, v in m["monthly_cost_sek"].items()],
        columns=["model", "month", "cost_sek"],
    )
    providers = pd.DataFrame(
        [
            {
                "provider": p["provider"],
                "recipients": SUPPRESSED_MARK if p["suppressed"] else p["recipients"],
                "suppressed": p["suppressed"],
                "model": name,
                "cost_sek": SUPPRESSED_MARK if p["suppressed"] else _nan(p["cost_sek"][name]),
                "delta_sek": SUPPRESSED_MARK if p["suppressed"] else _nan(p["delta_vs_baseline_sek"][name]),
            }
            for p in data["providers"]
            for name in names
        ],
        columns=["provider", "recipients", "suppressed", "model", "cost_sek", "delta_sek"],
    )
    keys = list(data["models"][0]["indicators"]) if data["models"] else []
    hidden = {k for k in keys if region_small and k in PERSON_LEVEL}
    indicators = pd.DataFrame({"indicator": keys, **{m["name"]: [SUPPRESSED_MARK if k in hidden else _nan(m["indicators"][k]) for k in keys] for m in data["models"]}})
    admin = pd.DataFrame(
        [{"model": m["name"], **a} for m in data["models"] for a in m["admin"]],
        columns=["model", "act", "unit", "count", "minutes_per_act", "hours", "cost_sek"],
    )
    assumptions = pd.DataFrame(
        [
            {
                "section": a.section,
                "parameter": a.parameter,
                "valid_from": a.valid_from,
                "value": a.value,
                "source": a.source,
                "is_assumption": a.assumption,
                "note": a.note,
            }
            for a in scenario_assumptions(c.scenario)
        ],
        columns=["section", "parameter", "valid_from", "value", "source", "is_assumption", "note"],
    )
    return ReportTables(
        models=models,
        components=components,
        providers=providers,
        monthly=monthly,
        indicators=indicators,
        admin=admin,
        distribution=payment_distribution(c),
        assumptions=assumptions,
        manifest={
            **data["manifest"],
            **{k: SUPPRESSED_MARK for k in data["manifest"] if region_small and k in PERSON_LEVEL},
            "suppression": data["suppression"]["on"],
        },
        baseline=data["baseline"],
        suppress=data["suppression"]["on"],
        providers_suppressed=data["suppression"]["providers_suppressed"],
        region_suppressed=data["suppression"]["region_suppressed"],
    )


def payment_distribution(c: Comparison, bins: int = HISTOGRAM_BINS) -> pd.DataFrame:
    """Recipient-months by payment, per model, on common bins.

    A bin is suppressed (marked) when its recipient-months belong to 1–4
    distinct recipients: one person's twelve months are still one person.
    The bins span the 1st to the 99th percentile over all models; the two
    open tails are bins of their own, so no single recipient-month stands out
    at the edges. ``bin_from``/``bin_to`` are NaN for the open ends.
    """
    rm = c.recipient_month_totals
    enrolled = c.ctx.rm["days_enrolled"].to_numpy() > 0
    recipient = rm["recipient"].to_numpy()[enrolled].astype(np.int64)
    names = list(c.settlements)
    values = {n: rm[n].to_numpy()[enrolled] for n in names}
    every = np.concatenate(list(values.values())) if names else np.array([])
    if every.size == 0:
        return pd.DataFrame(columns=["model", "bin_from", "bin_to", "recipient_months"])
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
        persons = np.bincount(np.unique(which * n_r + recipient) // n_r, minlength=n_bins)
        shown = np.where(is_small(persons) & c.suppress, SUPPRESSED_MARK, months.astype(object))
        rows.append(pd.DataFrame({"model": n, "bin_from": frm, "bin_to": to, "recipient_months": shown}))
    return pd.concat(rows, ignore_index=True)


def _nan(v: object) -> object:
    return np.nan if v is None else v


def numeric(values: pd.Series | np.ndarray | list) -> np.ndarray:
    """Values as float64, suppressed and undefined cells as NaN (for charts)."""
    return pd.to_numeric(pd.Series(values, dtype=object).replace(SUPPRESSED_MARK, np.nan), errors="coerce").to_numpy(dtype=np.float64)


def _nice_floor(x: float) -> float:
    step = 10 ** max(np.floor(np.log10(abs(x))) - 1, 0) if x else 1
    return float(np.floor(x / step) * step)


def _nice_ceil(x: float) -> float:
    step = 10 ** max(np.floor(np.log10(abs(x))) - 1, 0) if x else 1
    return float(np.ceil(x / step) * step)

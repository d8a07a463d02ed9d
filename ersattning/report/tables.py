"""The tables of a report, read off a comparison with small-cell suppression applied.

HTML, XLSX and charts all draw from these frames, so what one shows the others
show. Columns have canonical (English) keys; renderers translate them with
``i18n.label``. Every figure is read off the comparison's JSON, so the report
hides exactly the cells the JSON hides (primary and complementary,
suppression.py), with a ``suppressed`` column where a whole row is hidden. Tables are long ("tidy") where a finance officer would
pivot them: one row per provider and model, per model and month.

A suppressed cell holds ``SUPPRESSED_MARK`` (a string), an undefined one
(e.g. hours a fixed payment does not count) NaN; renderers keep the two apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ersattning.analysis import Sensitivity, Sweep, Uncertainty, sensitivity
from ersattning.analysis.breakeven import break_even_summary
from ersattning.analysis.sensitivity import FIGURES
from ersattning.analysis.sweep import price_sweep
from ersattning.compare import Comparison
from ersattning.report.assumptions import scenario_assumptions
from ersattning.report.i18n import label
from ersattning.suppression import SUPPRESSED_MARK

Analysis = Sensitivity | Sweep | Uncertainty

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


#: a model's figures as replayed (static_…) and under its behaviour assumptions
BEHAVIOUR_COLUMNS = ["model", "static_cost_sek", "cost_sek", "static_delta_sek", "delta_sek", "static_continuity_median", "continuity_median", "static_performed_hours", "performed_hours", "static_admin_hours", "admin_hours"]
TRANSFORMATION_COLUMNS = ["model", "step", "transformation", "parameters", "visits", "description"]
#: labels of the behaviour tables (kept here so the tables stay one change; i18n.label for the rest)
BEHAVIOUR_LABELS: dict[str, dict[str, str]] = {
    "behaviour": {"sv": "Beteendeantaganden", "en": "Behaviour assumptions"},
    "behaviour_note": {
        "sv": "Varje modell avräknas både på den återspelade historiken (statiskt) och på den historik som modellens beteendeantaganden ger (kontrafaktiskt). Butiken ändras aldrig.",
        "en": "Each model is settled on the replayed history (static) and on the history its behaviour assumptions give (counterfactual). The store is never changed.",
    },
    "transformations": {"sv": "Transformationer", "en": "Transformations"},
    "static_cost_sek": {"sv": "Kostnad, statiskt (kr)", "en": "Cost, static (SEK)"},
    "static_delta_sek": {"sv": "Skillnad mot jämförelsemodell, statiskt (kr)", "en": "Δ vs baseline, static (SEK)"},
    "static_continuity_median": {"sv": "Kontinuitet, statiskt (median)", "en": "Continuity, static (median)"},
    "continuity_median": {"sv": "Kontinuitet (median)", "en": "Continuity (median)"},
    "static_performed_hours": {"sv": "Utförda timmar, statiskt", "en": "Performed hours, static"},
    "static_admin_hours": {"sv": "Administrativa timmar, statiskt", "en": "Admin hours, static"},
    "step": {"sv": "Steg", "en": "Step"},
    "transformation": {"sv": "Transformation", "en": "Transformation"},
    "parameters": {"sv": "Parametrar", "en": "Parameters"},
    "visits": {"sv": "Besök", "en": "Visits"},
    "description": {"sv": "Beskrivning", "en": "Description"},
    "transformation:provider_cancellations": {"sv": "Utförarens avbokningar", "en": "Provider cancellations"},
    "transformation:consolidate": {"sv": "Sammanslagna korta besök", "en": "Short visits consolidated"},
    "transformation:performed_change": {"sv": "Ändrad utförd tid", "en": "Performed time changed"},
    "transformation:team": {"sv": "Teamregel (personal)", "en": "Team rule (staff)"},
    "transformation:registration": {"sv": "Registrering start/stopp", "en": "Start/stop registration"},
    "transformation:admin_minutes": {"sv": "Minuter per administrativ åtgärd", "en": "Minutes per administrative act"},
}


def behaviour_label(key: str, lang: str) -> str:
    """A label of the behaviour tables, else the report's own (i18n.label)."""
    return BEHAVIOUR_LABELS.get(key, {}).get(lang) or label(key, lang)


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
    #: what the checks found (compare's ``warnings[]``: code, message, value, expected, source)
    warnings: list[dict[str, Any]]
    baseline: str
    suppress: bool
    providers_suppressed: int
    region_suppressed: bool
    #: behaviour assumptions (docs/models.md): each model's figures on the replayed and the counterfactual
    #: history, and the transformations applied; empty when no model assumes behaviour
    behaviour: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BEHAVIOUR_COLUMNS))
    transformations: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TRANSFORMATION_COLUMNS))

    # ersattning.analysis (docs/models.md): the break-even always; the others when a command ran them
    break_even: pd.DataFrame = field(default_factory=pd.DataFrame)  # BREAK_EVEN_COLUMNS
    sensitivity: pd.DataFrame | None = None  # Sensitivity.rows: one row per alternative model and parameter, by swing
    sweep: pd.DataFrame | None = None  # Sweep.rows (long)
    sweep_axes: list[str] = field(default_factory=list)
    uncertainty: pd.DataFrame | None = None  # Uncertainty.summary
    analysis_manifest: dict[str, Any] = field(default_factory=dict)  # seed, draws, parameters … of what ran

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


def build_tables(c: Comparison, analyses: Sequence[Analysis] = ()) -> ReportTables:
    """Every table of the report, suppressed as the comparison says (with the analyses run on it, if any)."""
    data = c.to_json()  # the JSON is the reference: the report shows exactly its numbers
    names = [m["name"] for m in data["models"]]
    region_hidden = data["suppression"]["region_suppressed"]

    def region(v: object) -> object:
        """A figure about the whole region: the mark where the region's figures are hidden, NaN where undefined."""
        return SUPPRESSED_MARK if region_hidden else _nan(v)

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
    if region_hidden:
        models[MODEL_COLUMNS[3:]] = SUPPRESSED_MARK
    components = pd.DataFrame(
        [{"model": m["name"], "component": k, "cost_sek": region(v)} for m in data["models"] for k, v in m["components"].items() if v or region_hidden],
        columns=["model", "component", "cost_sek"],
    )
    monthly = pd.DataFrame(
        [{"model": m["name"], "month": month, "cost_sek": region(v)} for m in data["models"] for month, v in m["monthly_cost_sek"].items()],
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
    indicators = pd.DataFrame({"indicator": keys, **{m["name"]: [region(m["indicators"][k]) for k in keys] for m in data["models"]}})
    admin = pd.DataFrame(
        [{"model": m["name"], **a, **{k: region(a[k]) for k in ("count", "hours", "cost_sek")}} for m in data["models"] for a in m["admin"]],
        columns=["model", "act", "unit", "count", "minutes_per_act", "hours", "cost_sek"],
    )
    distribution = pd.DataFrame(
        [
            {"model": m["name"], "bin_from": _nan(b["from"]), "bin_to": _nan(b["to"]), "recipient_months": SUPPRESSED_MARK if b["recipient_months"] is None else b["recipient_months"]}
            for m in data["models"]
            for b in m["payment_distribution"]
        ],
        columns=["model", "bin_from", "bin_to", "recipient_months"],
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
    behaviour, transformations = _behaviour_tables(data, region)
    return ReportTables(
        behaviour=behaviour,
        transformations=transformations,
        models=models,
        components=components,
        providers=providers,
        monthly=monthly,
        indicators=indicators,
        admin=admin,
        distribution=distribution,
        assumptions=assumptions,
        manifest={
            **data["manifest"],
            **{k: SUPPRESSED_MARK for k in ("recipients", "recipient_months", "visits") if region_hidden},
            "suppression": data["suppression"]["on"],
        },
        warnings=data["warnings"],
        baseline=data["baseline"],
        suppress=data["suppression"]["on"],
        providers_suppressed=data["suppression"]["providers_suppressed"],
        region_suppressed=region_hidden,
        break_even=break_even_table(c),
        **analysis_tables(c, analyses),
    )


def _behaviour_tables(data: dict[str, Any], region: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Static replay beside the counterfactual, and the transformations, for the models that assume behaviour."""
    assumed = [m for m in data["models"] if m["transformations"] or data["manifest"].get("transformations", {}).get(m["name"])]
    if not assumed:
        return pd.DataFrame(columns=BEHAVIOUR_COLUMNS), pd.DataFrame(columns=TRANSFORMATION_COLUMNS)
    rows = []
    for m in data["models"]:
        st = m["static"]
        rows.append(
            {
                "model": m["name"],
                "static_cost_sek": region(st["cost_sek"]),
                "cost_sek": region(m["cost_sek"]),
                "static_delta_sek": region(st["delta_vs_baseline_sek"]),
                "delta_sek": region(m["delta_vs_baseline_sek"]),
                "static_continuity_median": region(st["indicators"].get("continuity_median")),
                "continuity_median": region(m["indicators"].get("continuity_median")),
                "static_performed_hours": region(st["performed_hours"]),
                "performed_hours": region(m["performed_hours"]),
                "static_admin_hours": region(st["admin_hours"]),
                "admin_hours": region(m["admin_hours"]),
            }
        )
    steps = [
        {
            "model": m["name"],
            "step": i + 1,
            "transformation": t["transformation"],
            "parameters": ", ".join(f"{(k or 'value').replace('@', ' from ').strip()} = {v:g}" for k, v in t["parameters"].items()),
            "visits": region(t["visits"]),
            "description": t["description"],
        }
        for m in assumed
        for i, t in enumerate(m["transformations"])
    ]
    for m in assumed:
        for act, text in data["manifest"]["transformations"].get(m["name"], {}).get("admin_minutes", {}).items():
            steps.append({"model": m["name"], "step": sum(1 for x in steps if x["model"] == m["name"]) + 1, "transformation": "admin_minutes", "parameters": f"{act} = {text}", "visits": np.nan, "description": "minutes per administrative act under this model"})
    return pd.DataFrame(rows, columns=BEHAVIOUR_COLUMNS), pd.DataFrame(steps, columns=TRANSFORMATION_COLUMNS)

BREAK_EVEN_COLUMNS = ["model", "parameter", "current", "value", "delta_sek", "delta_at_value_sek"]


def break_even_table(c: Comparison) -> pd.DataFrame:
    """Each alternative model's break-even price factor (analysis.breakeven.break_even_summary); the mark where the region is hidden, NaN where there is none."""
    rows = []
    for b in break_even_summary(c):
        hidden = b["suppressed"]
        rows.append({k: (SUPPRESSED_MARK if hidden and k in BREAK_EVEN_COLUMNS[3:] else _nan(b[k])) for k in BREAK_EVEN_COLUMNS})
    return pd.DataFrame(rows, columns=BREAK_EVEN_COLUMNS)


def analysis_tables(c: Comparison, analyses: Sequence[Analysis]) -> dict[str, Any]:
    """The report's fields for sensitivity, sweep and uncertainty results; their hidden figures (NaN) become the mark."""
    out: dict[str, Any] = {"analysis_manifest": {}}
    # every report has a tornado and a sweep: the scenario's ranges (else prices ±10 %) and each alternative's prices × 0.8–1.2
    if not any(isinstance(a, Sensitivity) for a in analyses):
        analyses = [*analyses, sensitivity(c)]
    if not any(isinstance(a, Sweep) for a in analyses):
        analyses = [*analyses, price_sweep(c)]
    for a in analyses:
        if isinstance(a, Sensitivity):
            out["sensitivity"] = _marked(a.rows, FIGURES, a.suppressed)
            out["analysis_manifest"]["sensitivity"] = a.manifest
        elif isinstance(a, Sweep):
            out["sweep"] = _marked(a.rows, ["cost_sek", "delta_sek", "admin_hours"], a.suppressed)
            out["sweep_axes"] = [x.path for x in a.axes]
            out["analysis_manifest"]["sweep"] = a.manifest
        elif isinstance(a, Uncertainty):
            out["uncertainty"] = _marked(a.summary, list(a.summary.columns[1:]), a.suppressed)
            out["analysis_manifest"]["uncertainty"] = a.manifest
    return out


def _marked(frame: pd.DataFrame, columns: list[str], hidden: bool) -> pd.DataFrame:
    out = frame.copy()
    if hidden:
        out[columns] = out[columns].astype(object)
        out[columns] = SUPPRESSED_MARK
    return out


def payment_distribution(c: Comparison) -> pd.DataFrame:
    """Recipient-months by payment per model, as the report shows them (hidden bins marked; compare.payment_distribution)."""
    d = c.distribution
    shown = np.where(d["suppressed"].to_numpy(dtype=bool) & c.suppress, SUPPRESSED_MARK, d["recipient_months"].to_numpy().astype(object))
    return pd.DataFrame({"model": d["model"], "bin_from": d["bin_from"], "bin_to": d["bin_to"], "recipient_months": shown})


def _nan(v: object) -> object:
    return np.nan if v is None else v


def numeric(values: pd.Series | np.ndarray | list) -> np.ndarray:
    """Values as float64, suppressed and undefined cells as NaN (for charts)."""
    return pd.to_numeric(pd.Series(values, dtype=object).replace(SUPPRESSED_MARK, np.nan), errors="coerce").to_numpy(dtype=np.float64)


# the columns of the sensitivity and uncertainty tables in the HTML and XLSX reports, with their formats
SENSITIVITY_TABLE = [
    ("model", "text"), ("parameter", "text"), ("low", "factor"), ("high", "factor"), ("low_source", "text"), ("high_source", "text"),
    ("change_low_sek", "sek_signed"), ("change_high_sek", "sek_signed"), ("swing_sek", "sek"),
    ("admin_hours_change_low", "decimal"), ("admin_hours_change_high", "decimal"), ("continuity_change_low", "decimal"), ("continuity_change_high", "decimal"),
]  # fmt: skip
UNCERTAINTY_TABLE = [
    ("model", "text"), ("cost_median_sek", "sek"), ("cost_p05_sek", "sek"), ("cost_p95_sek", "sek"),
    ("delta_median_sek", "sek_signed"), ("delta_p05_sek", "sek_signed"), ("delta_p95_sek", "sek_signed"), ("p_cheaper", "share"),
]  # fmt: skip

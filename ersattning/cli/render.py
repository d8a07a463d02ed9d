"""Plain-text and CSV renderings of a comparison, for the terminal and for spreadsheets."""

from __future__ import annotations

import csv
import io
from typing import Any

from ersattning.compare import Comparison, winners_and_losers
from ersattning.suppression import SUPPRESSED_MARK
from ersattning.suppression import WARNING as SUPPRESSION_OFF


def _f(x: Any, digits: int = 0, *, hidden: bool = False) -> str:
    """A number; a missing one is the suppression mark where the region's figures are hidden, else undefined ("-")."""
    if x is None or (isinstance(x, float) and x != x):
        return SUPPRESSED_MARK if hidden else "-"
    return f"{x:,.{digits}f}"


def _msek(x: Any, *, hidden: bool = False) -> str:
    return _f(None if x is None else x / 1e6, 2, hidden=hidden)


def _pct(x: Any, *, hidden: bool) -> str:
    return _f(None if x is None else 100 * x, 1, hidden=hidden)


COLUMNS = [
    ("model", "model"),
    ("kind", "kind"),
    ("cost MSEK", "cost"),
    ("Δ vs baseline", "delta"),
    ("SEK/recipient-month", "per_rm"),
    ("paid h", "paid"),
    ("performed h", "performed"),
    ("granted h", "granted"),
    ("admin h", "admin_h"),
    ("admin MSEK", "admin_sek"),
    ("unpaid perf. h", "unpaid"),
    ("paid not perf. h", "not_perf"),
    ("SEK/extra min", "marginal"),
    ("continuity", "continuity"),
]


def _rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    hidden = doc["suppression"]["region_suppressed"]
    rows = []
    for m in doc["models"]:
        ind = m["indicators"]
        if m["name"] == doc["baseline"]:
            delta = "baseline"
        elif m["delta_vs_baseline_sek"] is None:
            delta = SUPPRESSED_MARK if hidden else "-"
        else:
            delta = f"{m['delta_vs_baseline_sek'] / 1e6:+,.2f} ({m['delta_vs_baseline_pct']:+.1f} %)"
        rows.append(
            {
                "model": m["name"],
                "kind": m["kind"],
                "cost": _msek(m["cost_sek"], hidden=hidden),
                "delta": delta,
                "per_rm": _f(m["cost_per_recipient_month_sek"], hidden=hidden),
                "paid": _f(m["paid_hours"], hidden=hidden),
                "performed": _f(m["performed_hours"], hidden=hidden),
                "granted": _f(m["granted_hours"], hidden=hidden),
                "admin_h": _f(m["admin_hours"], hidden=hidden),
                "admin_sek": _msek(m["admin_cost_sek"], hidden=hidden),
                "unpaid": _f(ind["unpaid_performed_hours"], hidden=hidden),
                "not_perf": _f(ind["paid_not_performed_hours"], hidden=hidden),
                "marginal": _f(ind["marginal_sek_per_minute"], 2, hidden=hidden),
                "continuity": _f(ind["continuity_median"], 1, hidden=hidden),
            }
        )
    return rows


def table(c: Comparison) -> str:
    """The comparison for the terminal, read off its JSON (so it shows exactly what the JSON shows)."""
    doc = c.to_json()
    mf = doc["manifest"]
    hidden = doc["suppression"]["region_suppressed"]
    shared = doc["models"][0]["indicators"]
    out = [
        f"Scenario  {c.scenario.name}",
        f"          {mf['scenario_path']} (sha256 {mf['scenario_sha256'][:12]}…), ersattning {mf['version']}",
        f"Data      {mf['store']} at position {mf['store_position']}" + (f", as known at {mf['as_of']}" if mf["as_of"] else ""),
        f"Period    {mf['period']['start']} … {mf['period']['end']}: {_f(mf['recipients'], hidden=hidden)} recipients, "
        f"{_f(mf['recipient_months'], hidden=hidden)} recipient-months, {_f(mf['visits'], hidden=hidden)} visits",
        "",
    ]
    if doc["warnings"]:  # what the checks found, above the figures they concern (docs/checks.md)
        out[4:4] = ["Warnings", *(f"  ! {w['message']} [{w['code']}]" for w in doc["warnings"])]
    if not c.suppress:
        out.insert(0, f"WARNING: {SUPPRESSION_OFF}\n")
    rows = _rows(doc)
    widths = {key: max(len(head), *(len(r[key]) for r in rows)) for head, key in COLUMNS}
    numeric = {key for _, key in COLUMNS} - {"model", "kind", "delta"}
    out.append("  ".join(head.rjust(widths[key]) if key in numeric else head.ljust(widths[key]) for head, key in COLUMNS).rstrip())
    for r in rows:
        out.append("  ".join(r[key].rjust(widths[key]) if key in numeric else r[key].ljust(widths[key]) for _, key in COLUMNS).rstrip())
    behaviour = [m for m in doc["models"] if m["transformations"]]
    if behaviour:  # behaviour assumptions (docs/models.md): the static replay beside each counterfactual
        out.append("")
        out.append("Behaviour assumed (figures above: the counterfactual history; static replay beside):")
        for m in behaviour:
            st = m["static"]
            steps = ", ".join(t["transformation"] for t in m["transformations"])
            out.append(f"  {m['name']}: static cost {_msek(st['cost_sek'], hidden=hidden)} MSEK, Δ {_msek(st['delta_vs_baseline_sek'], hidden=hidden)}; continuity {_f(st['indicators']['continuity_median'], 1, hidden=hidden)} → {_f(m['indicators']['continuity_median'], 1, hidden=hidden)}; {steps}")
    out.append("")
    out.append(
        ("Quality of the replayed history: " if behaviour else "Quality (same history under every model): ")
        + f"continuity median {_f(shared['continuity_median'], 1, hidden=hidden)} staff per 14 days "
        f"({_pct(shared['continuity_share_above_20'], hidden=hidden)} % above 20), "
        f"punctuality {_pct(shared['punctuality'], hidden=hidden)} %, "
        f"planned visits performed {_pct(shared['share_planned_performed'], hidden=hidden)} %, "
        f"cancelled by provider {_pct(shared['share_cancelled_by_provider'], hidden=hidden)} %, "
        f"performed/granted {_f(shared['performed_to_granted'], 3, hidden=hidden)}, "
        f"visits per recipient-day {_f(shared['visits_per_recipient_day'], 2, hidden=hidden)}"
    )
    wl = winners_and_losers(c)
    if wl:
        out.append("")
        out.append(f"Providers gaining and losing most against {c.baseline} (providers not shown by small-cell suppression left out):")
        for name, d in wl.items():
            gains = ", ".join(f"{p} {x / 1e6:+,.2f} MSEK ({pct:+.1f} %)" for p, x, pct in d["winners"]) or "none"
            losses = ", ".join(f"{p} {x / 1e6:+,.2f} MSEK ({pct:+.1f} %)" for p, x, pct in d["losers"]) or "none"
            out.append(f"  {name}: gain {gains}; lose {losses}")
    return "\n".join(out)


def models_csv(c: Comparison) -> str:
    """One row per model, read off the comparison's JSON; hidden figures hold the suppression mark."""
    doc = c.to_json()
    hidden = doc["suppression"]["region_suppressed"]
    buf = io.StringIO()
    json_keys = {"delta_sek": "delta_vs_baseline_sek", "delta_pct": "delta_vs_baseline_pct"}
    fields = ["model", "label", "kind", "cost_sek", "delta_sek", "delta_pct", "cost_per_recipient_month_sek", "paid_hours", "performed_hours", "granted_hours", "admin_hours", "admin_cost_sek"]
    indicator_keys = [k for k in doc["models"][0]["indicators"] if k not in fields]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields + indicator_keys + ["scenario_sha256", "store_position", "as_of", "version"])
    mark = lambda v: SUPPRESSED_MARK if v is None and hidden else v  # noqa: E731
    for m in doc["models"]:
        values = [m["name"], m["label"], m["kind"]] + [mark(m[json_keys.get(f, f)]) for f in fields[3:]]
        values += [mark(m["indicators"][k]) for k in indicator_keys]
        writer.writerow(values + [doc["manifest"]["scenario_sha256"], doc["manifest"]["store_position"], doc["manifest"]["as_of"] or "", doc["manifest"]["version"]])
    return buf.getvalue().rstrip("\n")

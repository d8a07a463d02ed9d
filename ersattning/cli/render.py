"""Plain-text and CSV renderings of a comparison, for the terminal and for spreadsheets."""

from __future__ import annotations

import csv
import io
from typing import Any

from ersattning.compare import Comparison, winners_and_losers
from ersattning.suppression import SUPPRESSED_MARK
from ersattning.suppression import WARNING as SUPPRESSION_OFF


def _f(x: Any, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return f"{x:,.{digits}f}"


def _person(c: Comparison, key: str, value: Any, digits: int = 0) -> str:
    """A person-level figure, or the suppression mark in a region of fewer than five recipients."""
    return SUPPRESSED_MARK if c.person_value(key, value) is None and value is not None else _f(value, digits)


def _msek(x: float) -> str:
    return f"{x / 1e6:,.2f}"


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


def _rows(c: Comparison) -> list[dict[str, str]]:
    rows = []
    for _, m in c.models.iterrows():
        ind = c.indicators[m["model"]]
        delta = "baseline" if m["model"] == c.baseline else f"{m['delta_sek'] / 1e6:+,.2f} ({m['delta_pct']:+.1f} %)"
        rows.append(
            {
                "model": m["model"],
                "kind": m["kind"],
                "cost": _msek(m["cost_sek"]),
                "delta": delta,
                "per_rm": _person(c, "cost_per_recipient_month_sek", m["cost_per_recipient_month_sek"]),
                "paid": _f(m["paid_hours"]),
                "performed": _f(m["performed_hours"]),
                "granted": _f(m["granted_hours"]),
                "admin_h": _f(m["admin_hours"]),
                "admin_sek": _msek(m["admin_cost_sek"]),
                "unpaid": _f(ind["unpaid_performed_hours"]),
                "not_perf": _f(ind["paid_not_performed_hours"]),
                "marginal": _f(ind["marginal_sek_per_minute"], 2),
                "continuity": _person(c, "continuity_median", ind["continuity_median"], 1),
            }
        )
    return rows


def table(c: Comparison) -> str:
    mf = c.manifest
    shared = next(iter(c.indicators.values()))
    out = [
        f"Scenario  {c.scenario.name}",
        f"          {mf['scenario_path']} (sha256 {mf['scenario_sha256'][:12]}…), ersattning {mf['version']}",
        f"Data      {mf['store']} at position {mf['store_position']}" + (f", as known at {mf['as_of']}" if mf["as_of"] else ""),
        f"Period    {mf['period']['start']} … {mf['period']['end']}: {_person(c, 'recipients', mf['recipients'])} recipients, "
        f"{_person(c, 'recipient_months', mf['recipient_months'])} recipient-months, {mf['visits']:,} visits",
        "",
    ]
    if not c.suppress:
        out.insert(0, f"WARNING: {SUPPRESSION_OFF}\n")
    rows = _rows(c)
    widths = {key: max(len(head), *(len(r[key]) for r in rows)) for head, key in COLUMNS}
    numeric = {key for _, key in COLUMNS} - {"model", "kind", "delta"}
    out.append("  ".join(head.rjust(widths[key]) if key in numeric else head.ljust(widths[key]) for head, key in COLUMNS).rstrip())
    for r in rows:
        out.append("  ".join(r[key].rjust(widths[key]) if key in numeric else r[key].ljust(widths[key]) for _, key in COLUMNS).rstrip())
    out.append("")
    out.append(
        "Quality (same history under every model): "
        f"continuity median {_person(c, 'continuity_median', shared['continuity_median'], 1)} staff per 14 days "
        f"({_person(c, 'continuity_share_above_20', 100 * (shared['continuity_share_above_20'] or 0), 1)} % above 20), "
        f"punctuality {_f(100 * (shared['punctuality'] or 0), 1)} %, "
        f"planned visits performed {_f(100 * (shared['share_planned_performed'] or 0), 1)} %, "
        f"cancelled by provider {_f(100 * (shared['share_cancelled_by_provider'] or 0), 1)} %, "
        f"performed/granted {_f(shared['performed_to_granted'], 3)}, "
        f"visits per recipient-day {_f(shared['visits_per_recipient_day'], 2)}"
    )
    wl = winners_and_losers(c)
    if wl:
        out.append("")
        out.append(f"Providers gaining and losing most against {c.baseline} (providers with fewer than 5 recipients not shown):")
        for name, d in wl.items():
            gains = ", ".join(f"{p} {x / 1e6:+,.2f} MSEK ({pct:+.1f} %)" for p, x, pct in d["winners"]) or "none"
            losses = ", ".join(f"{p} {x / 1e6:+,.2f} MSEK ({pct:+.1f} %)" for p, x, pct in d["losers"]) or "none"
            out.append(f"  {name}: gain {gains}; lose {losses}")
    return "\n".join(out)


def models_csv(c: Comparison) -> str:
    buf = io.StringIO()
    fields = ["model", "label", "kind", "cost_sek", "delta_sek", "delta_pct", "cost_per_recipient_month_sek", "paid_hours", "performed_hours", "granted_hours", "admin_hours", "admin_cost_sek"]
    indicator_keys = [k for k in next(iter(c.indicators.values())) if k not in fields]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields + indicator_keys + ["scenario_sha256", "store_position", "as_of", "version"])
    for _, m in c.models.iterrows():
        ind = c.indicators[m["model"]]
        values = [SUPPRESSED_MARK if c.person_value(f, m[f]) is None else m[f] for f in fields]
        values += [SUPPRESSED_MARK if c.person_value(k, ind[k]) is None and ind[k] is not None else ind[k] for k in indicator_keys]
        writer.writerow(values + [c.manifest["scenario_sha256"], c.manifest["store_position"], c.manifest["as_of"] or "", c.manifest["version"]])
    return buf.getvalue().rstrip("\n")

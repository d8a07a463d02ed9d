"""One self-contained HTML report: summary, tables, charts, assumptions, manifest.

Works offline (styles and SVG charts inline, no scripts, no external
resources) and prints on A4. Every headline number carries its exact value in
``data-value`` next to the formatted text, so a reader's tool (or a test) can
check it against ``compare --format json``.
"""

from __future__ import annotations

import html
import math
from typing import Any

from ersattning.report.charts import CHARTS
from ersattning.report.i18n import SHARE_INDICATORS, label, money, number, percent, warning_text
from ersattning.report.tables import (
    BEHAVIOUR_COLUMNS,
    SENSITIVITY_TABLE,
    TRANSFORMATION_COLUMNS,
    UNCERTAINTY_TABLE,
    ReportTables,
    behaviour_label,
)
from ersattning.suppression import SUPPRESSED_MARK

CSS = """
:root { --ink: #1d232b; --muted: #5b6570; --line: #d5dae0; --accent: #1f5fa8; --warn: #8a1c1c; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink);
       max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6em; margin: 0 0 .3em; }
h2 { font-size: 1.2em; margin: 1.8em 0 .6em; padding-bottom: .2em; border-bottom: 2px solid var(--accent); }
p.scope, p.note, figcaption { color: var(--muted); font-size: .9em; }
.warning { border: 2px solid var(--warn); color: var(--warn); padding: .6em .9em; font-weight: 600; margin: 1em 0; }
ul.summary li { margin-bottom: .45em; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; font-size: .85em; margin: .4em 0 .6em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; vertical-align: top; }
th { text-align: left; background: #f3f5f8; font-weight: 600; }
table#models { table-layout: fixed; }  /* eleven columns share the page width; headers wrap */
table#models th { white-space: normal; overflow-wrap: anywhere; hyphens: auto; vertical-align: bottom; }
th.group { text-align: center; border-bottom: 1px solid #b9c2cc; }
td.num, th.num { text-align: right; }
td.suppressed { color: var(--muted); text-align: right; }
tr.baseline td { font-weight: 600; }
.scroll { overflow-x: auto; }
figure.chart { margin: 1.2em 0; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { width: 100%; max-width: 900px; height: auto; display: block; }
dl.manifest { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: .9em; }
dl.manifest dt { color: var(--muted); }
dl.manifest dd { margin: 0; word-break: break-all; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { font-size: 8pt; }
  th, td { padding: 3px 3px; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  .scroll { overflow: visible; }
}
"""

MODEL_TABLE = [  # the label is in the summary (and kind in the workbook); the table stays narrow enough to print on A4
    ("model", "text"),
    ("cost_sek", "sek"),
    ("delta_sek", "sek_signed"),
    ("delta_pct", "pct_signed"),
    ("cost_per_recipient_month_sek", "sek"),
    ("paid_hours", "hours"),
    ("performed_hours", "hours"),
    ("granted_hours", "hours"),
    ("admin_hours", "hours"),
    ("admin_cost_sek", "sek"),
]


def render_html(t: ReportTables, charts: dict[str, str], lang: str) -> str:
    """The whole report as one HTML document."""
    e = html.escape
    mf = t.manifest
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(label('title', lang))} — {e(mf['scenario'])}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{e(label('title', lang))}</h1>",
        f'<p class="scope">{_scope(t, lang)}</p>',
    ]
    if not t.suppress:
        parts.append(f'<p class="warning" id="no-suppress-warning">{e(label("no_suppress_warning", lang))}</p>')
    if t.manifest.get("demo"):
        parts.append(f'<p class="warning" id="demo-warning">{e(label("warning:demo_data", lang))}</p>')
    shown = [w for w in t.warnings if w["code"] != "demo_data"]
    if shown:
        items = "".join(f'<li data-code="{e(w["code"])}">{e(warning_text(w, lang))}</li>' for w in shown)
        parts.append(f'<div class="warning" id="data-warnings"><p>{e(label("warnings", lang))}</p><ul>{items}</ul></div>')
    parts += ["</header>", _summary(t, lang), _models_table(t, lang), _charts(t, charts, lang)]
    if not t.behaviour.empty:
        parts.append(_behaviour_section(t, lang))
    parts += [_providers_table(t, lang), _indicators_table(t, lang), _admin_table(t, lang), _analysis_section(t, lang), _assumptions_table(t, lang), _manifest(t, lang)]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _scope(t: ReportTables, lang: str) -> str:
    mf = t.manifest
    return html.escape(
        label(
            "scope",
            lang,
            scenario=mf["scenario"],
            start=mf["period"]["start"],
            end=mf["period"]["end"],
            recipients=number(mf["recipients"], lang),
            recipient_months=number(mf["recipient_months"], lang),
            visits=number(mf["visits"], lang),
        )
    )


def _value(key: str, raw: Any, text: str) -> str:
    """A headline number: the text a reader sees, the exact value for a machine (empty: suppressed or undefined)."""
    data = "" if raw is None or isinstance(raw, str) or math.isnan(raw) else repr(float(raw))
    return f'<span class="num" data-key="{key}" data-value="{data}">{html.escape(text)}</span>'


def _summary(t: ReportTables, lang: str) -> str:
    items = []
    ind = t.indicators.set_index("indicator")
    for _, m in t.models.iterrows():
        name = m["model"]
        continuity = ind.loc["continuity_median", name] if "continuity_median" in ind.index else None
        values = {
            "label": html.escape(str(m["label"])),
            "model": html.escape(name),
            "cost": _value("cost_sek", m["cost_sek"], money(m["cost_sek"], lang)),
            "delta": _value("delta_sek", m["delta_sek"], money(m["delta_sek"], lang, sign=True)),
            "pct": _value("delta_pct", m["delta_pct"], percent(m["delta_pct"], lang, sign=True)),
            "admin": _value("admin_hours", m["admin_hours"], number(m["admin_hours"], lang)),
            "continuity": _value("continuity_median", continuity, number(continuity, lang, 1)),
            "baseline": html.escape(t.baseline),
        }
        # the label texts are escaped once, here; the template itself holds no markup
        template = label("sentence_baseline" if name == t.baseline else "sentence_model", lang)
        items.append(f'<li class="headline" data-model="{html.escape(name)}">{template.format(**values)}</li>')
    return f'<section id="summary"><h2>{label("summary", lang)}</h2><ul class="summary">{"".join(items)}</ul></section>'


def _cell(value: Any, fmt: str, lang: str) -> str:
    if fmt == "text":
        return f"<td>{html.escape('' if value is None or (isinstance(value, float) and math.isnan(value)) else str(value))}</td>"
    if isinstance(value, str) and value == SUPPRESSED_MARK:
        return f'<td class="suppressed" title="{html.escape(label("suppressed_note", lang))}">{SUPPRESSED_MARK}</td>'
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td class="num undefined">–</td>'
    text = {
        "sek": lambda v: number(v, lang),
        "sek_signed": lambda v: number(v, lang, sign=True),
        "pct_signed": lambda v: percent(v, lang, sign=True),
        "hours": lambda v: number(v, lang),
        "count": lambda v: number(v, lang),
        "decimal": lambda v: number(v, lang, 2),
        "factor": lambda v: number(v, lang, 4),
        "share": lambda v: percent(100 * v, lang),
    }[fmt](value)
    return f'<td class="num">{html.escape(text)}</td>'


def _table(headers: list[tuple[str, str]], rows: list[tuple[list[Any], str]], lang: str, table_id: str) -> str:
    head = "".join(f'<th class="{"" if fmt == "text" else "num"}">{html.escape(title)}</th>' for title, fmt in headers)
    body = []
    for values, row_class in rows:
        row = _row(values, [fmt for _, fmt in headers], lang)
        body.append(row.replace("<tr>", f'<tr class="{row_class}">', 1) if row_class else row)
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _models_table(t: ReportTables, lang: str) -> str:
    headers = [(label(k, lang), fmt) for k, fmt in MODEL_TABLE]
    rows = [([m[k] for k, _ in MODEL_TABLE], "baseline" if m["model"] == t.baseline else "") for _, m in t.models.iterrows()]
    comps = t.components.pivot_table(index="component", columns="model", values="cost_sek", aggfunc="sum").reindex(columns=t.model_names).fillna(0.0)
    comp_headers = [(label("component", lang), "text")] + [(n, "sek") for n in t.model_names]
    comp_rows = [([label(f"component:{c}", lang), *comps.loc[c].tolist()], "") for c in comps.index]
    months = t.monthly.pivot(index="month", columns="model", values="cost_sek").reindex(columns=t.model_names)
    month_headers = [(label("month", lang), "text")] + [(n, "sek") for n in t.model_names]
    month_rows = [([mo, *months.loc[mo].tolist()], "") for mo in months.index]
    return (
        f'<section id="comparison"><h2>{label("comparison", lang)}</h2>'
        + _table(headers, rows, lang, "models")
        + f'<h3>{label("components", lang)}</h3>'
        + _table(comp_headers, comp_rows, lang, "components")
        + f'<h3>{label("monthly", lang)}</h3>'
        + _table(month_headers, month_rows, lang, "monthly")
        + "</section>"
    )


def _behaviour_section(t: ReportTables, lang: str) -> str:
    """Each model as replayed and under its behaviour assumptions, and the transformations applied (docs/models.md)."""
    bl = lambda key: behaviour_label(key, lang)  # noqa: E731
    formats = {"model": "text", "static_cost_sek": "sek", "cost_sek": "sek", "static_delta_sek": "sek_signed", "delta_sek": "sek_signed"}
    headers = [(bl(k), formats.get(k, "decimal")) for k in BEHAVIOUR_COLUMNS]
    rows = [([r[k] for k in BEHAVIOUR_COLUMNS], "baseline" if r["model"] == t.baseline else "") for _, r in t.behaviour.iterrows()]
    step_headers = [(bl(k), "count" if k in ("step", "visits") else "text") for k in TRANSFORMATION_COLUMNS]
    step_rows = [([r["model"], r["step"], bl(f"transformation:{r['transformation']}"), r["parameters"], r["visits"], r["description"]], "") for _, r in t.transformations.iterrows()]
    return (
        f'<section id="behaviour"><h2>{html.escape(bl("behaviour"))}</h2><p class="note">{html.escape(bl("behaviour_note"))}</p>'
        + _table(headers, rows, lang, "behaviour-table")
        + f'<h3>{html.escape(bl("transformations"))}</h3>'
        + _table(step_headers, step_rows, lang, "transformations-table")
        + "</section>"
    )


def _charts(t: ReportTables, charts: dict[str, str], lang: str) -> str:
    figures = []
    for name, chart in CHARTS.items():
        caption = chart.title(t, lang)
        figures.append(f'<figure class="chart" id="chart-{name}" aria-label="{html.escape(caption)}">{charts[name]}</figure>')
    return f'<section id="charts"><h2>{label("charts", lang)}</h2>{"".join(figures)}</section>'


def _providers_table(t: ReportTables, lang: str) -> str:
    wide = t.providers_wide()
    names = t.model_names
    others = [n for n in names if n != t.baseline]
    e = html.escape
    head = (
        f'<tr><th rowspan="2">{e(label("provider", lang))}</th><th rowspan="2" class="num">{e(label("recipients", lang))}</th>'
        f'<th colspan="{len(names)}" class="group">{e(label("cost_sek", lang))}</th>'
        + (f'<th colspan="{len(others)}" class="group">{e(label("delta_vs", lang, baseline=t.baseline))}</th>' if others else "")
        + "</tr><tr>"
        + "".join(f'<th class="num">{e(n)}</th>' for n in names + others)
        + "</tr>"
    )
    formats = ["text", "count"] + ["sek"] * len(names) + ["sek_signed"] * len(others)
    body = [_row([p["provider"], p["recipients"], *(p[f"cost:{n}"] for n in names), *(p[f"delta:{n}"] for n in others)], formats, lang) for _, p in wide.iterrows()]
    note = f'<p class="note">{e(label("suppressed_note", lang))}'
    if t.providers_suppressed:
        note += " " + e(label("providers_suppressed", lang, n=t.providers_suppressed))
    note += "</p>"
    table = f'<div class="scroll"><table id="providers-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'
    return f'<section id="providers"><h2>{label("providers", lang)}</h2>{table}{note}</section>'


def _indicators_table(t: ReportTables, lang: str) -> str:
    names = t.model_names
    head = f"<th>{html.escape(label('indicator', lang))}</th>" + "".join(f'<th class="num">{html.escape(n)}</th>' for n in names)
    body = []
    for _, r in t.indicators.iterrows():
        key = r["indicator"]
        fmt = _indicator_format(key)
        body.append(_row([label(key, lang), *(r[n] for n in names)], ["text"] + [fmt] * len(names), lang))
    table = f'<div class="scroll"><table id="indicators"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    return f'<section id="indicators-section"><h2>{label("indicators", lang)}</h2>{table}</section>'


def _indicator_format(key: str) -> str:
    if key in SHARE_INDICATORS:
        return "share"
    if key in ("recipients", "recipient_months", "continuity_person_windows") or key.endswith("_hours"):
        return "count"
    return "decimal"


def _row(values: list[Any], formats: list[str], lang: str) -> str:
    return "<tr>" + "".join(_cell(v, fmt, lang) for v, fmt in zip(values, formats, strict=True)) + "</tr>"


def _admin_table(t: ReportTables, lang: str) -> str:
    a = t.admin
    headers = [
        (label("model", lang), "text"),
        (label("act", lang), "text"),
        (label("unit", lang), "text"),
        (label("count", lang), "count"),
        (label("minutes_per_act", lang), "decimal"),
        (label("hours", lang), "hours"),
        (label("admin_cost_sek", lang), "sek"),
    ]
    rows = [([r["model"], label(f"act:{r['act']}", lang), label(f"unit:{r['unit']}", lang), r["count"], r["minutes_per_act"], r["hours"], r["cost_sek"]], "") for _, r in a.iterrows()]
    return f'<section id="admin"><h2>{label("admin", lang)}</h2>{_table(headers, rows, lang, "admin-table")}</section>'




def _analysis_section(t: ReportTables, lang: str) -> str:
    """Break-even (always), and the sensitivity, sweep and uncertainty tables of the analyses that ran (ersattning.analysis)."""
    e = html.escape
    b = t.break_even
    headers = [(label("model", lang), "text"), (label("parameter", lang), "text"), (label("current", lang), "factor"), (label("break_even_value", lang), "factor"), (label("delta_sek", lang), "sek_signed"), (label("delta_at_value_sek", lang), "sek_signed")]
    rows = [([r["model"], r["parameter"], r["current"], r["value"], r["delta_sek"], r["delta_at_value_sek"]], "") for _, r in b.iterrows()]
    out = [f'<section id="break-even"><h2>{label("break_even", lang)}</h2><p class="note">{e(label("break_even_note", lang, baseline=t.baseline))}</p>{_table(headers, rows, lang, "break-even-table")}</section>']
    if t.sensitivity is not None:
        s = t.sensitivity
        sens_headers = [(label(k, lang), f) for k, f in SENSITIVITY_TABLE]
        sens_rows = [([r[k] for k, _ in SENSITIVITY_TABLE], "") for _, r in s.iterrows()]
        note = e(label("sensitivity_note", lang, baseline=t.baseline))
        out.append(f'<section id="sensitivity"><h2>{label("sensitivity", lang)}</h2><p class="note">{note}</p>{_table(sens_headers, sens_rows, lang, "sensitivity-table")}</section>')
    if t.sweep is not None:
        cols = [*t.sweep_axes, "model", "cost_sek", "delta_sek", "admin_hours"]
        fmts = ["factor"] * len(t.sweep_axes) + ["text", "sek", "sek_signed", "hours"]
        sweep_headers = [(label(k, lang), f) for k, f in zip(cols, fmts, strict=True)]
        sweep_rows = [([r[k] for k in cols], "") for _, r in t.sweep.iterrows()]
        out.append(f'<section id="sweep"><h2>{label("sweep", lang)}</h2>{_table(sweep_headers, sweep_rows, lang, "sweep-table")}</section>')
    if t.uncertainty is not None:
        mf = t.analysis_manifest.get("uncertainty", {})
        note = e(label("uncertainty_note", lang, draws=mf.get("draws"), seed=mf.get("seed"), baseline=t.baseline))
        unc_headers = [(label(k, lang), f) for k, f in UNCERTAINTY_TABLE]
        unc_rows = [([r[k] for k, _ in UNCERTAINTY_TABLE], "baseline" if r["model"] == t.baseline else "") for _, r in t.uncertainty.iterrows()]
        out.append(f'<section id="uncertainty"><h2>{label("uncertainty", lang)}</h2><p class="note">{note}</p>{_table(unc_headers, unc_rows, lang, "uncertainty-table")}</section>')
    return "".join(out)


def _assumptions_table(t: ReportTables, lang: str) -> str:
    a = t.assumptions
    headers = [
        (label("section", lang), "text"),
        (label("parameter", lang), "text"),
        (label("valid_from", lang), "text"),
        (label("value", lang), "text"),
        (label("source", lang), "text"),
        (label("is_assumption", lang), "text"),
        (label("note", lang), "text"),
    ]
    rows = []
    for _, r in a.iterrows():
        value = number(r["value"], lang, 3).rstrip("0").rstrip(",.") if isinstance(r["value"], float) else r["value"]
        when = label("always", lang) if r["valid_from"] is None or (isinstance(r["valid_from"], float)) else str(r["valid_from"])
        rows.append(([r["section"], r["parameter"], when, value, r["source"], label("yes" if r["is_assumption"] else "no", lang), r["note"]], ""))
    legend = f'<p class="note">{html.escape(label("assumption_legend", lang))}</p>'
    return f'<section id="assumptions"><h2>{label("assumptions", lang)}</h2>{legend}{_table(headers, rows, lang, "assumptions-table")}</section>'


def _manifest(t: ReportTables, lang: str) -> str:
    mf = t.manifest
    items = []
    for key in ("version", "scenario", "scenario_path", "scenario_sha256", "store", "store_id", "store_position", "as_of", "period", "visits", "recipients", "recipient_months", "created_at", "suppression", "demo"):
        value: Any = mf.get(key)
        if key == "period":
            value = f"{value['start']} – {value['end']}"
        elif key in ("suppression", "demo"):
            value = label(("on" if value else "off") if key == "suppression" else ("yes" if value else "no"), lang)
        elif key in ("visits", "recipients", "recipient_months", "store_position") and value != SUPPRESSED_MARK:
            value = number(value, lang)
        elif value is None:
            value = "–"
        items.append(f'<dt>{html.escape(label(key, lang))}</dt><dd data-key="{key}">{html.escape(str(value))}</dd>')
    items.append(f'<dt>{html.escape(label("language", lang))}</dt><dd data-key="language">{lang}</dd>')
    return f'<section id="manifest"><h2>{label("manifest", lang)}</h2><dl class="manifest">{"".join(items)}</dl></section>'

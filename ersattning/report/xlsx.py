"""The report as an Excel workbook a finance officer can pivot.

One sheet per table, each an Excel table (filter buttons, pivot-ready) with a
frozen header row and fitted column widths. Numbers are stored as numbers with
SEK, hour, per-cent and count formats; Excel shows them with the reader's own
separators (a Swedish Excel writes 1 234 kr). Suppressed cells hold the
suppression mark instead of a number.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.table import Table, TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from ersattning.files import write_atomic
from ersattning.report.i18n import SHARE_INDICATORS, label, warning_text
from ersattning.report.tables import (
    BEHAVIOUR_COLUMNS,
    MODEL_COLUMNS,
    SENSITIVITY_TABLE,
    TRANSFORMATION_COLUMNS,
    UNCERTAINTY_TABLE,
    ReportTables,
    behaviour_label,
)
from ersattning.suppression import SUPPRESSED_MARK

SHEETS = ("models", "components", "providers", "monthly", "indicators", "admin", "distribution", "assumptions", "break_even", "manifest")
ANALYSIS_SHEETS = ("sensitivity", "sweep", "uncertainty")  # when the command ran them (ersattning.analysis)
SHEET_NAMES = {
    "models": {"sv": "Modeller", "en": "Models"},
    "components": {"sv": "Komponenter", "en": "Components"},
    "providers": {"sv": "Utförare", "en": "Providers"},
    "monthly": {"sv": "Månader", "en": "Monthly"},
    "indicators": {"sv": "Indikatorer", "en": "Indicators"},
    "admin": {"sv": "Administration", "en": "Admin"},
    "distribution": {"sv": "Fördelning", "en": "Distribution"},
    "assumptions": {"sv": "Antaganden", "en": "Assumptions"},
    "break_even": {"sv": "Nollpunkt", "en": "Break-even"},
    "sensitivity": {"sv": "Känslighet", "en": "Sensitivity"},
    "sweep": {"sv": "Svep", "en": "Sweep"},
    "uncertainty": {"sv": "Osäkerhet", "en": "Uncertainty"},
    "manifest": {"sv": "Körning", "en": "Manifest"},
}


def number_formats(lang: str) -> dict[str, str]:
    """Excel number formats by kind of value (the unit is part of the format, so the cell stays a number)."""
    sek = '#,##0" kr"' if lang == "sv" else '"SEK "#,##0'
    hours = '#,##0.0" tim"' if lang == "sv" else '#,##0.0" h"'
    return {
        "sek": sek,
        "sek_signed": '+#,##0" kr";-#,##0" kr";0" kr"' if lang == "sv" else '+"SEK "#,##0;-"SEK "#,##0;"SEK "0',
        "pct_signed": '+0.0" %";-0.0" %";0.0" %"',
        "hours": hours,
        "count": "#,##0",
        "decimal": "#,##0.00",
        "factor": "0.0000",
        "share": "0.0%",
        "date": "yyyy-mm-dd",
        "text": "@",
    }


MODEL_FORMATS = {
    "model": "text",
    "label": "text",
    "kind": "text",
    "cost_sek": "sek",
    "delta_sek": "sek_signed",
    "delta_pct": "pct_signed",
    "cost_per_recipient_month_sek": "sek",
    "paid_hours": "hours",
    "performed_hours": "hours",
    "granted_hours": "hours",
    "admin_hours": "hours",
    "admin_cost_sek": "sek",
}


def write_xlsx(t: ReportTables, path: str | Path, lang: str) -> None:
    """Write the workbook to ``path`` (written whole to a temporary file first, then moved)."""
    wb = Workbook()
    wb.remove(wb.active)
    fmt = number_formats(lang)
    L = lambda key: label(key, lang)  # noqa: E731
    sheets: dict[str, tuple[list[tuple[str, str]], list[list[Any]]]] = {}

    sheets["models"] = (
        [(L(k), MODEL_FORMATS[k]) for k in MODEL_COLUMNS],
        [[_kind(v, lang) if k == "kind" else v for k, v in zip(MODEL_COLUMNS, row, strict=True)] for row in t.models[MODEL_COLUMNS].itertuples(index=False)],
    )
    sheets["components"] = (
        [(L("model"), "text"), (L("component"), "text"), (L("cost_sek"), "sek")],
        [[r.model, label(f"component:{r.component}", lang), r.cost_sek] for r in t.components.itertuples(index=False)],
    )
    sheets["providers"] = (
        [(L("provider"), "text"), (L("recipients"), "count"), (L("suppressed"), "text"), (L("model"), "text"), (L("cost_sek"), "sek"), (L("delta_sek"), "sek_signed")],
        [[r.provider, r.recipients, L("yes" if r.suppressed else "no"), r.model, r.cost_sek, r.delta_sek] for r in t.providers.itertuples(index=False)],
    )
    sheets["monthly"] = (
        [(L("model"), "text"), (L("month"), "text"), (L("cost_sek"), "sek")],
        [[r.model, r.month, r.cost_sek] for r in t.monthly.itertuples(index=False)],
    )
    names = t.model_names
    ind_rows, ind_formats = [], []
    for r in t.indicators.to_dict("records"):
        key = r["indicator"]
        ind_rows.append([key, label(key, lang), *(r[n] for n in names)])
        ind_formats.append("share" if key in SHARE_INDICATORS else "decimal")
    sheets["indicators"] = ([(L("key"), "text"), (L("indicator"), "text")] + [(n, "decimal") for n in names], ind_rows)
    sheets["admin"] = (
        [(L("model"), "text"), (L("act"), "text"), (L("unit"), "text"), (L("count"), "count"), (L("minutes_per_act"), "decimal"), (L("hours"), "hours"), (L("admin_cost_sek"), "sek")],
        [[r.model, label(f"act:{r.act}", lang), label(f"unit:{r.unit}", lang), r.count, r.minutes_per_act, r.hours, r.cost_sek] for r in t.admin.itertuples(index=False)],
    )
    sheets["distribution"] = (
        [(L("model"), "text"), (f"{L('sek')} ≥", "sek"), (f"{L('sek')} <", "sek"), (L("recipient_months"), "count")],
        [[r.model, r.bin_from, r.bin_to, r.recipient_months] for r in t.distribution.itertuples(index=False)],
    )
    sheets["assumptions"] = (
        [(L("section"), "text"), (L("parameter"), "text"), (L("valid_from"), "date"), (L("value"), "decimal"), (L("source"), "text"), (L("is_assumption"), "text"), (L("note"), "text")],
        [[r.section, r.parameter, r.valid_from, r.value, r.source, L("yes" if r.is_assumption else "no"), r.note] for r in t.assumptions.itertuples(index=False)],
    )
    sheets.update(_analysis_sheets(t, lang))
    mf = t.manifest
    manifest_rows = [[L(k), _manifest_value(k, mf.get(k), lang)] for k in ("version", "scenario", "scenario_path", "scenario_sha256", "store", "store_id", "store_position", "as_of", "period", "visits", "recipients", "recipient_months", "created_at", "suppression", "demo")]
    manifest_rows.append([L("language"), lang])
    manifest_rows += [[L("warnings"), warning_text(w, lang)] for w in t.warnings]
    sheets["manifest"] = ([(L("key"), "text"), (L("value"), "text")], manifest_rows)

    for key in [*SHEETS[:-1], *(k for k in ANALYSIS_SHEETS if k in sheets), SHEETS[-1]]:
        headers, rows = sheets[key]
        ws = wb.create_sheet(SHEET_NAMES[key][lang])
        row_formats = ind_formats if key == "indicators" else None
        _fill(ws, headers, rows, fmt, row_formats, key)
    if not t.behaviour.empty:  # behaviour assumptions: sheets of their own, after the manifest
        _behaviour_sheets(wb, t, fmt, lang)
    if not t.suppress:
        ws = wb[SHEET_NAMES["manifest"][lang]]
        ws.append([])
        ws.append([label("no_suppress_warning", lang)])
        ws.cell(ws.max_row, 1).font = Font(bold=True, color="8A1C1C")
    write_atomic(path, wb.save, private=not t.suppress)  # unsuppressed figures: owner-only


def _behaviour_sheets(wb: Workbook, t: ReportTables, fmt: dict[str, str], lang: str) -> None:
    """Each model as replayed and under its behaviour assumptions, and the transformations (docs/models.md)."""
    bl = lambda key: behaviour_label(key, lang)  # noqa: E731
    kinds = {"model": "text", "static_cost_sek": "sek", "cost_sek": "sek", "static_delta_sek": "sek_signed", "delta_sek": "sek_signed"}
    ws = wb.create_sheet(bl("behaviour")[:31])
    _fill(ws, [(bl(k), kinds.get(k, "decimal")) for k in BEHAVIOUR_COLUMNS], t.behaviour[BEHAVIOUR_COLUMNS].values.tolist(), fmt, None, "behaviour")
    ws = wb.create_sheet(bl("transformations")[:31])
    rows = [[r.model, r.step, bl(f"transformation:{r.transformation}"), r.parameters, r.visits, r.description] for r in t.transformations.itertuples(index=False)]
    _fill(ws, [(bl(k), "count" if k in ("step", "visits") else "text") for k in TRANSFORMATION_COLUMNS], rows, fmt, None, "transformations")


def _analysis_sheets(t: ReportTables, lang: str) -> dict[str, tuple[list[tuple[str, str]], list[list[Any]]]]:
    """Break-even (always) and the sensitivity, sweep and uncertainty tables of the analyses that ran."""
    L = lambda key: label(key, lang)  # noqa: E731
    out: dict[str, tuple[list[tuple[str, str]], list[list[Any]]]] = {}
    out["break_even"] = (
        [(L("model"), "text"), (L("parameter"), "text"), (L("current"), "factor"), (L("break_even_value"), "factor"), (L("delta_sek"), "sek_signed"), (L("delta_at_value_sek"), "sek_signed")],
        [[r.model, r.parameter, r.current, r.value, r.delta_sek, r.delta_at_value_sek] for r in t.break_even.itertuples(index=False)],
    )
    if t.sensitivity is not None:
        out["sensitivity"] = ([(L(k), f) for k, f in SENSITIVITY_TABLE], [[r[k] for k, _ in SENSITIVITY_TABLE] for r in t.sensitivity.to_dict("records")])
    if t.sweep is not None:
        cols = [*t.sweep_axes, "model", "cost_sek", "delta_sek", "admin_hours"]
        formats = ["factor"] * len(t.sweep_axes) + ["text", "sek", "sek_signed", "hours"]
        out["sweep"] = ([(L(k), f) for k, f in zip(cols, formats, strict=True)], [[r[k] for k in cols] for r in t.sweep.to_dict("records")])
    if t.uncertainty is not None:
        out["uncertainty"] = ([(L(k), f) for k, f in UNCERTAINTY_TABLE], [[r[k] for k, _ in UNCERTAINTY_TABLE] for r in t.uncertainty.to_dict("records")])
    return out


def _kind(kind: str, lang: str) -> str:
    return label(f"kind:{kind}", lang)


def _manifest_value(key: str, value: Any, lang: str) -> Any:
    if key == "period":
        return f"{value['start']} – {value['end']}"
    if key == "suppression":
        return label("on" if value else "off", lang)
    if key == "demo":
        return label("yes" if value else "no", lang)
    return "" if value is None else value


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fill(ws: Worksheet, headers: list[tuple[str, str]], rows: list[list[Any]], fmt: dict[str, str], row_formats: list[str] | None, key: str) -> None:
    ws.append([h for h, _ in headers])
    header_fill = PatternFill("solid", fgColor="DCE6F2")
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = header_fill
        cell.alignment = Alignment(vertical="top", wrap_text=False)
    widths = [len(h) + 4 for h, _ in headers]  # room for the filter button
    for i, values in enumerate(rows):
        excel_row = [_excel_value(v) for v in values]
        ws.append(excel_row)
        r = ws.max_row
        for j, v in enumerate(excel_row):
            kind = headers[j][1]
            if row_formats is not None and j >= 2:
                kind = row_formats[i]
            cell = ws.cell(r, j + 1)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                cell.number_format = fmt["decimal" if kind == "text" else kind]
            elif isinstance(v, date):
                cell.number_format = fmt["date"]
            elif v == SUPPRESSED_MARK:
                cell.alignment = Alignment(horizontal="right")
            widths[j] = max(widths[j], _width(v, kind))
    for j, w in enumerate(widths):
        ws.column_dimensions[get_column_letter(j + 1)].width = min(max(w, 8), 70)
    ws.freeze_panes = "A2"
    if rows:
        ref = f"A1:{get_column_letter(len(headers))}{len(rows) + 1}"
        table = Table(displayName=f"t_{key}", ref=ref)
        table.tableStyleInfo = TableStyleInfo(name="TableStyleLight9", showRowStripes=True)
        ws.add_table(table)


def _excel_value(v: Any) -> Any:
    """What a cell holds: numbers as numbers, undefined as empty, the rest as it is."""
    if _missing(v):  # undefined (e.g. an open histogram edge); suppressed cells hold the mark already
        return None
    if isinstance(v, bool):
        return str(v)
    return v.item() if hasattr(v, "item") else v


def _width(v: Any, kind: str) -> int:
    if v is None:
        return 0
    if isinstance(v, float) and kind in ("sek", "sek_signed", "hours", "count"):
        return len(f"{v:,.0f}") + 6
    if isinstance(v, float):
        return len(f"{v:,.2f}") + 3
    return len(str(v)) + 2

"""Disclosure audit: no hidden cell comes back from what the outputs show.

For a few crafted regions, every output format (JSON, CSV, the terminal table,
the HTML and XLSX reports) is parsed back, and an attacker tries to work out
each hidden cell from the visible ones, as a reader of a published table could
(docs/personal-data.md):

- a provider's recipients, and its cost and Δ under each model: the region's
  total minus the providers shown (one hidden provider: exact), or bounds
  (hidden amounts ≥ 0, hidden counts ≥ 1: a zero sum or a sum of ones pins
  them);
- a payment-distribution bin: the recipient-months of the region minus the
  bins shown, the same bounds;
- a region of 1–4 recipients: its person count from every ratio and
  denominator shown (visits ÷ visits per recipient-day ÷ days, cost ÷ cost per
  recipient-month, the admin acts counted per recipient-month, the providers'
  counts) and the single provider's amounts from the region's totals.

A value "comes back" when the derived figure is within the outputs' rounding
of the true one. The test fails naming every cell that does.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import random
import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from ersattning.cli import render
from ersattning.compare import Comparison, compare
from ersattning.report import i18n, write_report
from ersattning.report.tables import MODEL_COLUMNS, payment_distribution
from ersattning.scenario import Period, load_scenario
from ersattning.store import open_store
from ersattning.suppression import MIN_PERSONS, SUPPRESSED_MARK, complementary, protects
from tests.builders import History

HIDDEN = object()  # a cell an output does not show


# -- crafted regions ---------------------------------------------------------------------------

CASES: dict[str, dict[str, int]] = {
    "one_small": {"P1": 12, "P2": 8, "P3": 6, "PX": 3},
    "two_small": {"P1": 12, "P2": 9, "PX": 3, "PY": 2},
    "small_is_smallest": {"P1": 10, "P2": 7, "P3": 5, "PX": 1},
    "two_tiny": {"P1": 10, "P2": 6, "PX": 1, "PY": 1},
    "complement_is_big": {"P1": 20, "P2": 15, "PX": 4},
    "five_of_one": {"P1": 9, "PA": 1, "PB": 1, "PC": 1, "PD": 1, "PE": 1},
    "region_of_3": {"P1": 3},
}

#: the months a case settles where its visits do not reach every month of 2024 (the coverage check stops a year):
#: region_of_3 has visits in 2024-01, 02, 03, 05, 06 and 09 (recipient n's visit k in month 1 + (n + 3k) mod 12),
#: and each of its 3 recipients has one in 2024-01 … 2024-03 (n=0: Jan; n=1: Feb; n=2: Mar)
PERIODS: dict[str, str] = {"region_of_3": "2024-01..2024-03"}


def build(path: Path, providers: dict[str, int]) -> str:
    """A region: each provider's recipients, enrolled all year, each with a few visits of its own length."""
    url = f"sqlite:///{path}"
    h = History(open_store(url, create=True))
    n = 0
    for code, count in providers.items():
        h.provider(code)
        for _ in range(count):
            r = h.recipient(f"{code.lower()}-{n}", provider=code)
            h.grant(r, "personal_care", 300 + 60 * (n % 7))
            for k in range(1 + n % 4):
                h.performed(r, f"v{n}-{k}", "personal_care", f"2024-{1 + (n + 3 * k) % 12:02d}-{5 + k:02d} 09:00", 20 + 7 * ((n * 5 + k) % 9), staff=(f"s{n % 5}",), provider=code)
            n += 1
    h.context()
    h.store.close()
    return url


@dataclass
class Outputs:
    """One comparison and every file and text it gives (suppression on)."""

    c: Comparison
    json: dict[str, Any]
    csv: str
    table: str
    html: str
    xlsx: Path


def outputs(tmp: Path, providers: dict[str, int], period: str | None = None) -> Outputs:
    url = build(tmp / "region.db", providers)
    scenario = load_scenario("default").with_period(Period.parse(period) if period else None)
    c = compare(scenario, open_store(url))
    write_report(c, html=tmp / "r.html", xlsx=tmp / "r.xlsx", lang="en")
    doc = json.loads(json.dumps(c.to_json()))
    return Outputs(c, doc, render.models_csv(c), render.table(c), (tmp / "r.html").read_text(encoding="utf-8"), tmp / "r.xlsx")


# -- what each format shows, read back -------------------------------------------------------


@dataclass
class View:
    """The figures one output shows; HIDDEN where it shows the mark. ``tol`` is its rounding (half a unit)."""

    name: str
    tol: float
    models: list[str] = field(default_factory=list)
    region: dict[str, Any] = field(default_factory=dict)  # recipients, recipient_months, visits, days
    model: dict[str, dict[str, Any]] = field(default_factory=dict)  # model → cost, delta, cost_per_rm, indicators…
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider → recipients, cost:m, delta:m
    bins: dict[str, list[Any]] = field(default_factory=dict)  # model → recipient-months per bin


def _v(x: Any) -> Any:
    """A parsed value: numbers as float, the mark or null as HIDDEN, the rest (undefined) as None."""
    if x is None or (isinstance(x, str) and x.strip() in (SUPPRESSED_MARK, "")):
        return HIDDEN
    if isinstance(x, str) and x.strip() in ("-", "–"):
        return None
    return float(x)


def view_json(doc: dict[str, Any]) -> View:
    v = View("json", 5e-5, models=[m["name"] for m in doc["models"]])
    mf = doc["manifest"]
    v.region = {"recipients": _v(mf["recipients"]), "recipient_months": _v(mf["recipient_months"]), "visits": _v(mf["visits"])}
    for m in doc["models"]:
        ind = {k: _v(x) for k, x in m["indicators"].items()}
        admin = {a["act"]: _v(a["count"]) for a in m["admin"] if a["unit"] == "recipient_month"}
        v.model[m["name"]] = {"cost": _v(m["cost_sek"]), "delta": _v(m["delta_vs_baseline_sek"]), "cost_per_rm": _v(m["cost_per_recipient_month_sek"]), "admin_rm": admin, **ind}
        if "payment_distribution" in m:
            v.bins[m["name"]] = [_v(b["recipient_months"]) for b in m["payment_distribution"]]
        for parts in (m["components"], m["monthly_cost_sek"]):  # a hidden total is the sum of its parts, if they are shown
            if v.model[m["name"]]["cost"] is HIDDEN and parts and all(_known(_v(x)) for x in parts.values()):
                v.model[m["name"]]["cost"] = sum(_v(x) for x in parts.values())
    for p in doc["providers"]:
        row: dict[str, Any] = {"recipients": _v(p["recipients"])}
        for name in v.models:
            row[f"cost:{name}"] = _v(p["cost_sek"][name]) if "cost_sek" in p else HIDDEN
            row[f"delta:{name}"] = _v(p["delta_vs_baseline_sek"][name]) if "delta_vs_baseline_sek" in p else HIDDEN
        v.providers[p["provider"]] = row
    return v


def view_csv(text: str) -> View:
    v = View("csv", 5e-5)
    for r in csv.DictReader(io.StringIO(text)):
        name = r["model"]
        v.models.append(name)
        v.model[name] = {"cost": _v(r["cost_sek"]), "delta": _v(r["delta_sek"]), "cost_per_rm": _v(r["cost_per_recipient_month_sek"]), **{k: _v(r[k]) for k in ("recipients", "recipient_months", "visits_per_recipient_day", "share_planned_performed", "continuity_person_windows") if k in r}}
    return v


def view_table(text: str) -> View:
    v = View("table", 0.005)
    # the Warnings block (lines "  ! …", after the header) holds no figure of the table: read what follows it
    text = "\n".join(line for line in text.splitlines() if not line.startswith("  ! "))
    m = re.search(r"…\s*\S+:\s*(\S+) recipients, (\S+) recipient-months, (\S+) visits", text)
    assert m, text
    v.region = {"recipients": _v(m[1].replace(",", "")), "recipient_months": _v(m[2].replace(",", "")), "visits": _v(m[3].replace(",", ""))}
    vprd = re.search(r"visits per recipient-day (\S+)", text)
    share = re.search(r"planned visits performed (\S+) %", text)
    v.model["*"] = {"visits_per_recipient_day": _v(vprd[1]) if vprd else HIDDEN, "share_planned_performed": (_v(share[1]) if share else HIDDEN)}
    if v.model["*"]["share_planned_performed"] not in (HIDDEN, None):
        v.model["*"]["share_planned_performed"] /= 100
    return v


class _Tables(HTMLParser):
    """Every <table id=…> as rows of cell texts, and every data-key'd element's text and data-value."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.keyed: list[tuple[str, str | None, str, str | None]] = []  # key, data-value, text, data-model of the enclosing item
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._key: tuple[str, str | None] | None = None
        self._text: list[str] = []
        self._model: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or "?"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "li" and a.get("data-model"):
            self._model = a["data-model"]
        if a.get("data-key") and tag in ("span", "dd"):
            self._key = (a["data-key"] or "", a.get("data-value"))
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag in ("span", "dd") and self._key:
            self.keyed.append((self._key[0], self._key[1], "".join(self._text).strip(), self._model))
            self._key = None
        elif tag == "li":
            self._model = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._key:
            self._text.append(data)


def _en(text: str) -> Any:
    text = text.strip()
    if text in (SUPPRESSED_MARK, ""):
        return HIDDEN
    if text in ("-", "–"):
        return None
    return i18n.parse_number(text.replace("%", "").replace("\u00a0", "").strip(), "en")


def view_html(text: str) -> View:
    p = _Tables()
    p.feed(text)
    v = View("html", 0.5)
    models = p.tables["models"]
    v.models = [r[0] for r in models[1:]]
    for r in models[1:]:
        v.model[r[0]] = {"cost": _en(r[1]), "delta": _en(r[2]), "cost_per_rm": _en(r[4])}
    for key, value, _, model in p.keyed:  # the summary's exact values
        if model and key in ("cost_sek", "delta_sek"):
            v.model[model]["cost" if key == "cost_sek" else "delta"] = HIDDEN if value in (None, "") else float(value)
    mf = {key: shown for key, _, shown, model in p.keyed if model is None}
    v.region = {k: _en(mf[k]) for k in ("recipients", "recipient_months", "visits")}
    labels = {i18n.label(k, "en"): k for k in ("recipients", "recipient_months", "visits_per_recipient_day", "share_planned_performed", "continuity_person_windows")}
    for r in p.tables["indicators"][1:]:
        if r[0] in labels:
            key = labels[r[0]]
            for name, cell in zip(v.models, r[1:], strict=True):
                x = _en(cell)
                v.model[name][key] = x / 100 if key == "share_planned_performed" and _known(x) else x
    for r in p.tables["admin-table"][1:]:
        if r[2] == i18n.label("unit:recipient_month", "en"):
            v.model[r[0]].setdefault("admin_rm", {})[r[1]] = _en(r[3])
    base = next(n for n in v.models if v.model[n]["delta"] in (0.0,)) if any(v.model[n]["delta"] == 0.0 for n in v.models) else v.models[0]
    others = [n for n in v.models if n != base]
    for r in p.tables["providers-table"][2:]:
        row: dict[str, Any] = {"recipients": _en(r[1])}
        for i, name in enumerate(v.models):
            row[f"cost:{name}"] = _en(r[2 + i])
        for i, name in enumerate(others):
            row[f"delta:{name}"] = _en(r[2 + len(v.models) + i])
        v.providers[r[0]] = row
    return v


def view_xlsx(path: Path) -> View:
    wb = load_workbook(path)
    v = View("xlsx", 1e-6)
    rows = lambda sheet: list(wb[sheet].iter_rows(values_only=True))[1:]  # noqa: E731
    for r in rows("Models"):
        row = dict(zip(MODEL_COLUMNS, r, strict=True))
        v.models.append(row["model"])
        v.model[row["model"]] = {"cost": _v(row["cost_sek"]), "delta": _v(row["delta_sek"]), "cost_per_rm": _v(row["cost_per_recipient_month_sek"])}
    for name in v.models:  # a hidden total is the sum of its components or months, if they are shown
        for sheet, col in (("Components", 2), ("Monthly", 2)):
            parts = [_v(r[col]) for r in rows(sheet) if r[0] == name]
            if v.model[name]["cost"] is HIDDEN and parts and all(_known(x) for x in parts):
                v.model[name]["cost"] = sum(parts)
    for r in rows("Indicators"):
        for name, cell in zip(v.models, r[2:], strict=True):
            v.model[name][r[0]] = _v(cell)
    unit = i18n.label("unit:recipient_month", "en")
    for r in rows("Admin"):
        if r[2] == unit:
            v.model[r[0]].setdefault("admin_rm", {})[r[1]] = _v(r[3])
    for r in rows("Providers"):
        row = v.providers.setdefault(r[0], {"recipients": _v(r[1])})
        row[f"cost:{r[3]}"] = _v(r[4])
        row[f"delta:{r[3]}"] = _v(r[5])
    for r in rows("Distribution"):
        v.bins.setdefault(r[0], []).append(_v(r[3]))
    manifest = dict(rows("Manifest")[:14])
    v.region = {k: _v(manifest[i18n.label(k, "en")]) for k in ("recipients", "recipient_months", "visits")}
    return v


# -- the attacker ----------------------------------------------------------------------------


def _known(x: Any) -> bool:
    return x is not HIDDEN and x is not None


def recovered(o: Outputs, v: View) -> list[str]:
    """Every hidden cell of ``v`` that comes back from ``v``'s visible figures, with how."""
    c = o.c
    leaks: list[str] = []
    truth = c.providers.set_index("provider")
    models = v.models

    def close(derived: float, true: float, n_terms: int) -> bool:
        return abs(derived - true) <= v.tol * (n_terms + 1) + 1e-6 * abs(true) + 1e-9

    # providers: region totals minus the providers shown, and the bounds on what is hidden
    columns = ["recipients"] + [f"{kind}:{m}" for m in models for kind in ("cost", "delta")]
    for col in columns:
        if col == "recipients":
            total = v.region.get("recipients", HIDDEN)
        else:
            kind, m = col.split(":")
            total = v.model.get(m, {}).get(kind, HIDDEN)
        cells = {p: row.get(col, None) for p, row in v.providers.items()}
        hidden = [p for p, x in cells.items() if x is HIDDEN]
        if not hidden or not _known(total):
            continue
        if any(x is None for x in cells.values()):
            continue  # a column the output does not have (the baseline's Δ in the HTML)
        rest = total - sum(x for x in cells.values() if x is not HIDDEN)
        n_shown = len(cells) - len(hidden)
        true = {p: float(truth.loc[p, col]) for p in hidden}
        if len(hidden) == 1 and close(rest, true[hidden[0]], n_shown):
            leaks.append(f"{v.name}: provider {hidden[0]} {col} = {true[hidden[0]]} from the total minus the providers shown")
        floor = 1.0 if col == "recipients" else (0.0 if col.startswith("cost") else None)
        if floor is not None and len(hidden) > 1 and close(rest, floor * len(hidden), n_shown):
            for p in hidden:
                if close(floor, true[p], 0):
                    leaks.append(f"{v.name}: provider {p} {col} = {true[p]} (the hidden providers add up to their least)")

    # payment-distribution bins: the recipient-months minus the bins shown
    if v.bins:
        raw = payment_distribution(replace(c, suppress=False))
        for m, shown in v.bins.items():
            months = raw[raw["model"] == m]["recipient_months"].to_numpy(dtype=float)
            hidden = [i for i, x in enumerate(shown) if x is HIDDEN]
            total = v.region.get("recipient_months", HIDDEN)
            total = v.model.get(m, {}).get("recipient_months", HIDDEN) if not _known(total) else total
            if not hidden or not _known(total):
                continue
            rest = total - sum(x for x in shown if x is not HIDDEN)
            if len(hidden) == 1 and close(rest, months[hidden[0]], 0):
                leaks.append(f"{v.name}: {m} bin {hidden[0]} = {months[hidden[0]]} recipient-months from the total minus the bins shown")
            if len(hidden) > 1 and close(rest, len(hidden), 0):
                leaks.append(f"{v.name}: {m} bins {hidden} = 1 each (the hidden bins add up to their least)")

    # a region of 1–4 recipients: its count from every ratio and denominator shown
    n_true = int(c.manifest["recipients"])
    rm_true = int(c.manifest["recipient_months"])
    if 0 < n_true < MIN_PERSONS:
        settled = c.scenario.spec.period  # the days of the months settled (366 for 2024, 91 for 2024-01 … 2024-03)
        days = int(((np.datetime64(settled.end, "M") + 1).astype("datetime64[D]") - np.datetime64(settled.start, "M").astype("datetime64[D]")).astype(int))
        guesses: list[tuple[str, float, float]] = []  # how, derived, true
        if _known(v.region.get("recipients")):
            guesses.append(("the recipients shown", v.region["recipients"], n_true))
        if _known(v.region.get("recipient_months")):
            guesses.append(("the recipient-months shown", v.region["recipient_months"], rm_true))
        for name, row in v.model.items():
            for key, true in (("recipients", n_true), ("recipient_months", rm_true)):
                if _known(row.get(key)):
                    guesses.append((f"{name} {key}", row[key], true))
            if _known(row.get("cost")) and _known(row.get("cost_per_rm")) and row["cost_per_rm"]:
                guesses.append((f"{name} cost ÷ cost per recipient-month", row["cost"] / row["cost_per_rm"], rm_true))
            vprd, share = row.get("visits_per_recipient_day"), row.get("share_planned_performed")
            if _known(vprd) and _known(v.region.get("visits")) and vprd:
                performed = v.region["visits"] * (share if _known(share) else 1.0)
                guesses.append(("visits ÷ visits per recipient-day ÷ days", performed / vprd / days, n_true))
            for act, count in row.get("admin_rm", {}).items():
                if _known(count):
                    guesses.append((f"{name} admin {act} per recipient-month", count, rm_true))
            if _known(row.get("continuity_person_windows")) and row["continuity_person_windows"]:
                guesses.append(("continuity person-windows ÷ windows", row["continuity_person_windows"] / 26, n_true))
        counts = [x for row in v.providers.values() if _known(x := row.get("recipients"))]
        if counts and len(counts) == len(v.providers):
            guesses.append(("the providers' recipients", sum(counts), n_true))
        for how, derived, true in guesses:
            if abs(derived - true) < 0.05 * max(true, 1) and round(derived) == true:
                leaks.append(f"{v.name}: region of {n_true}: {true} from {how}")
        # the one provider's amounts are the region's totals
        for p, row in v.providers.items():
            if row.get("recipients") is HIDDEN:
                for m in models:
                    total = v.model.get(m, {}).get("cost")
                    if len(v.providers) == 1 and _known(total) and close(total, float(truth.loc[p, f"cost:{m}"]), 0):
                        leaks.append(f"{v.name}: provider {p} cost:{m} equals the region's cost shown")
    return leaks


def views(o: Outputs) -> list[View]:
    return [view_json(o.json), view_csv(o.csv), view_table(o.table), view_html(o.html), view_xlsx(o.xlsx)]


#: the providers each case hides: the small ones, and the fewest, smallest others that protect them
HIDDEN_PROVIDERS = {
    "one_small": {"PX", "P3"},  # P3 (6), the smallest shown, protects PX (3)
    "two_small": {"PX", "PY"},  # 3 + 2 = 5 persons protect each other: nothing else hidden
    "small_is_smallest": {"PX", "P3"},  # PX (1) with P3 (5)
    "two_tiny": {"PX", "PY", "P2"},  # 1 + 1 are two cells but two persons: P2 (6) joins them
    "complement_is_big": {"PX", "P2"},  # the only complementary choices are big providers: P2 (15), not P1 (20)
    "five_of_one": {"PA", "PB", "PC", "PD", "PE", "P1"},  # five hidden ones add up to 5: each would be pinned at 1
    "region_of_3": {"P1"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_no_hidden_cell_comes_back_from_any_output(case, tmp_path):
    o = outputs(tmp_path, CASES[case], PERIODS.get(case))
    hidden = {p for p, x in view_json(o.json).providers.items() if x["recipients"] is HIDDEN}
    assert hidden == HIDDEN_PROVIDERS[case]
    for v in views(o)[3:]:  # the reports hide the same providers as the JSON
        assert {p for p, x in v.providers.items() if x["recipients"] is HIDDEN} == hidden, v.name
    leaks = [leak for v in views(o) for leak in recovered(o, v)]
    assert not leaks, "\n".join(leaks)


def test_the_suppression_object_counts_each_rule(tmp_path):
    o = outputs(tmp_path, CASES["one_small"])
    s = o.json["suppression"]
    assert s["providers_primary"] == 1 and s["providers_complementary"] == 1 and s["providers_suppressed"] == 2
    assert s["region_suppressed"] is False
    px = view_json(o.json).providers
    assert px["PX"]["recipients"] is HIDDEN and px["P3"]["recipients"] is HIDDEN  # P3 (6) is the smallest that protects PX (3)
    assert px["P1"]["recipients"] == 12 and px["P2"]["recipients"] == 8
    assert s["bins_primary"] >= 1 and s["bins_complementary"] >= 0
    assert s["bins_suppressed"] == s["bins_primary"] + s["bins_complementary"]
    hidden_bins = sum(1 for m in o.json["models"] for b in m["payment_distribution"] if b["recipient_months"] is None)
    assert hidden_bins == s["bins_suppressed"]


def test_two_small_providers_protect_each_other(tmp_path):
    o = outputs(tmp_path, CASES["two_small"])
    s = o.json["suppression"]
    assert (s["providers_primary"], s["providers_complementary"]) == (2, 0)  # 3 + 2 = 5 persons: no big provider hidden


def test_a_region_of_three_shows_no_figure_about_it(tmp_path):
    o = outputs(tmp_path, CASES["region_of_3"], PERIODS["region_of_3"])
    doc = o.json
    assert doc["suppression"]["region_suppressed"] is True
    for m in doc["models"]:
        assert m["cost_sek"] is None and m["delta_vs_baseline_sek"] is None and m["cost_per_recipient_month_sek"] is None
        assert all(x is None for x in m["indicators"].values())
        assert all(x is None for x in m["monthly_cost_sek"].values()) and all(x is None for x in m["components"].values())
        assert all(a["count"] is None and a["hours"] is None for a in m["admin"])
    assert doc["manifest"]["visits"] is None and doc["manifest"]["recipients"] is None
    # no bins of the payment distribution: their edges and which are empty would speak of its payments
    assert all(m["payment_distribution"] == [] for m in doc["models"])
    # its plausibility warnings name the figure and the range, not the value (docs/checks.md)
    ranges = [w for w in doc["warnings"] if w["code"].endswith("_out_of_range")]
    assert ranges and all(w["value"] is None for w in ranges)
    assert all(f"  ! {w['message']} [{w['code']}]" in o.table for w in ranges)


# -- the rule itself, over random provider sizes ---------------------------------------------


def _consistent(values: tuple[int, ...], shown_min: float) -> bool:
    """Hidden counts a reader cannot rule out: each at least 1, one of them small, none above the smallest shown."""
    return min(values) >= 1 and min(values) < MIN_PERSONS and max(values) <= shown_min


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=9), st.lists(st.floats(0, 1e6, allow_nan=False), min_size=9, max_size=9))
def test_complementary_cells_protect_every_hidden_cell(sizes, amounts):
    n = np.array(sizes)
    cost = np.array(amounts[: len(sizes)]) * (n > 0)  # a provider that served nobody is paid nothing here
    primary = (n > 0) & (n < MIN_PERSONS)
    hidden, protected = complementary(n, primary, counts=n[:, None], amounts=cost[:, None])
    assert (hidden >= primary).all()
    if not primary.any():
        assert not hidden.any()
        return
    if not protected:  # even hiding every provider cannot protect them: the region's totals are hidden instead
        assert (hidden == primary).all() and not protects(primary | (n > 0) | (cost > 0), n, counts=n[:, None], amounts=cost[:, None])
        return
    h = np.flatnonzero(hidden)
    assert len(h) >= 2 and n[h].sum() >= MIN_PERSONS
    shown = n[~hidden & (n > 0)]
    shown_min = float(shown.min()) if shown.size else math.inf
    total = int(n[h].sum())
    # a reader who knows the rule's bounds finds at least two values for every hidden count
    # (first assuming the complementary cells are no larger than a cell shown; when the amounts made the rule hide a
    # larger one, that assumption finds nothing and the reader drops it)
    if len(h) <= 4 and total <= 60:
        every = [vals for vals in itertools.product(range(1, total + 1), repeat=len(h)) if sum(vals) == total and _consistent(vals, math.inf)]
        options = [vals for vals in every if _consistent(vals, shown_min)] or every
        for i in range(len(h)):
            assert len({vals[i] for vals in options}) >= 2, (sizes, h, options[:5])
    # as little as possible: every complementary cell is needed
    for j in h[~primary[h]]:
        fewer = hidden.copy()
        fewer[j] = False
        assert not protects(fewer, n, counts=n[:, None], amounts=cost[:, None]), (sizes, j)


def test_the_rule_is_deterministic():
    rng = random.Random(7)
    for _ in range(50):
        n = np.array([rng.randint(0, 12) for _ in range(8)])
        primary = (n > 0) & (n < MIN_PERSONS)
        a = complementary(n, primary, counts=n[:, None])
        b = complementary(n, primary, counts=n[:, None])
        assert (a[0] == b[0]).all() and a[1] == b[1]

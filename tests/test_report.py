"""Reports: HTML in a real headless browser, the XLSX read back, languages, small-cell suppression."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from ersattning.cli import render
from ersattning.compare import compare, winners_and_losers
from ersattning.report import i18n, write_report
from ersattning.report.assumptions import scenario_assumptions
from ersattning.report.charts import CHARTS
from ersattning.report.tables import build_tables
from ersattning.scenario import Period, load_scenario
from ersattning.store import open_store
from ersattning.suppression import SUPPRESSED_MARK
from ersattning.synth import RegionSpec, synthesize
from tests.browser import Browser, chromium_path
from tests.builders import History
from tests.test_cli import run

NBSP = "\u00a0"


# -- numbers and labels --------------------------------------------------------------------


def test_numbers_are_written_as_each_language_writes_them():
    assert i18n.number(1234567.891, "sv", 1) == f"1{NBSP}234{NBSP}567,9"
    assert i18n.number(1234567.891, "en", 1) == "1,234,567.9"
    assert i18n.number(-16244370.37, "sv") == f"\u221216{NBSP}244{NBSP}370"  # a real minus sign
    assert i18n.number(0.5, "sv", 2, sign=True) == "+0,50"
    assert i18n.money(126367404.94, "sv") == f"126,4{NBSP}Mkr"  # 126 367 404.94 / 1e6 = 126.37 → 126,4
    assert i18n.money(-16244370.37, "en", sign=True) == f"-16.2{NBSP}MSEK"
    assert i18n.percent(-12.8548, "sv", sign=True) == f"\u221212,9{NBSP}%"
    assert i18n.number(None, "sv") == SUPPRESSED_MARK and i18n.number(float("nan"), "en") == SUPPRESSED_MARK


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), st.sampled_from(["sv", "en"]), st.integers(0, 3))
def test_a_written_number_reads_back(x, lang, digits):
    assert i18n.parse_number(i18n.number(x, lang, digits), lang) == pytest.approx(round(x, digits), abs=10.0**-digits)


def test_every_label_has_both_languages():
    for key, texts in i18n.LABELS.items():
        assert set(texts) == set(i18n.LANGUAGES), key
        assert texts["sv"] and texts["en"], key


def test_assumptions_list_every_parameter_with_its_source():
    rows = scenario_assumptions(load_scenario("default"))
    by_key = {(a.section, a.parameter, str(a.valid_from)): a for a in rows}
    rate = by_key[("per_minute", "rates.personal_care", "2024-01-01")]
    assert rate.value == 485.0 and rate.source == "Stockholm stad, ersättning hemtjänst 2024 (egen regi)" and not rate.assumption
    cost = by_key[("admin", "hourly_cost", "2024-01-01")]
    assert cost.value == 420.0 and cost.assumption and cost.note == "care staff or administrator hour incl. social fees"
    tolerance = by_key[("indicators", "punctuality_tolerance_minutes", "None")]
    assert tolerance.value == 15.0 and tolerance.assumption  # a default with no source is labelled an assumption
    assert {a.section for a in rows} == {"per_minute", "granted", "ramtid", "trust", "admin", "indicators"}
    assert all(a.source or a.assumption for a in rows)


# -- a region where one provider has three recipients ----------------------------------------


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> dict:
    """40 synthetic recipients, plus provider PX with 3 recipients; compare's JSON and both reports in sv and en."""
    root = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{root / 'region.db'}"
    store = open_store(url, create=True)
    synthesize(store, RegionSpec(recipients=40, months=12, start="2024-01", seed=11))
    h = History(store)
    h.provider("PX", ownership="private")
    for i in range(3):
        r = h.recipient(f"px-{i}", provider="PX", enrolled_on=date(2024, 1, 1))
        h.grant(r, "personal_care", 600, valid_from=date(2024, 1, 1))
        for day in range(1, 20):
            h.performed(r, f"px-{i}-{day}", "personal_care", f"2024-03-{day:02d} 08:00", 25 + i, provider="PX")
    h.context()
    store.close()
    out = run("compare", "--store", url, "--format", "json", cwd=root)
    assert out.returncode == 0, out.stderr
    files = {}
    for lang in ("sv", "en"):
        html, xlsx = root / f"r-{lang}.html", root / f"r-{lang}.xlsx"
        done = run("report", "--store", url, "--html", str(html), "--xlsx", str(xlsx), "--lang", lang, cwd=root)
        assert done.returncode == 0, done.stderr
        assert "\r" not in done.stderr  # no progress display when stderr is not a terminal
        files[lang] = (html, xlsx)
    return {"url": url, "root": root, "json": json.loads(out.stdout), "files": files}


def _providers(doc: dict) -> dict:
    return {p["provider"]: p for p in doc["providers"]}


def test_a_provider_with_three_recipients_is_suppressed_in_json(region):
    doc = region["json"]
    px = _providers(doc)["PX"]
    assert px == {"provider": "PX", "recipients": None, "suppressed": True}  # neither the count nor any amount
    shown = [p for p in doc["providers"] if not p["suppressed"]]
    assert shown and all(p["recipients"] >= 5 and "cost_sek" in p for p in shown)
    # PX alone would come back as the region's totals minus the providers shown: the smallest other provider is hidden too
    s = doc["suppression"]
    assert {k: s[k] for k in ("on", "min_persons", "providers_suppressed", "providers_primary", "providers_complementary", "region_suppressed")} == {
        "on": True,
        "min_persons": 5,
        "providers_suppressed": 2,
        "providers_primary": 1,
        "providers_complementary": 1,
        "region_suppressed": False,
    }
    c = compare(load_scenario("default"), open_store(region["url"]))
    p = c.providers
    partner = p[p["complementary"]]
    assert len(partner) == 1 and int(partner["recipients"].iloc[0]) == int(p.loc[~p["primary"], "recipients"].min())
    assert all(item == {"provider": item["provider"], "recipients": None, "suppressed": True} for item in doc["providers"] if item["provider"] in set(partner["provider"]))
    assert s["bins_suppressed"] == s["bins_primary"] + s["bins_complementary"] == sum(b["recipient_months"] is None for m in doc["models"] for b in m["payment_distribution"])


def test_suppression_in_the_table_and_csv(region):
    table = run("compare", "--store", region["url"], cwd=region["root"]).stdout
    assert "PX" not in table  # not among winners and losers
    csv_text = run("compare", "--store", region["url"], "--format", "csv", cwd=region["root"]).stdout
    assert "PX" not in csv_text


def test_no_suppress_shows_small_cells_only_with_a_warning(region):
    out = run("compare", "--store", region["url"], "--format", "json", "--no-suppress", cwd=region["root"])
    assert out.returncode == 0
    assert "WARNING: small-cell suppression is OFF" in out.stderr
    doc = json.loads(out.stdout)
    assert _providers(doc)["PX"]["recipients"] == 3 and doc["suppression"]["on"] is False
    html = region["root"] / "open.html"
    done = run("report", "--store", region["url"], "--html", str(html), "--no-suppress", cwd=region["root"])
    assert "WARNING" in done.stderr
    assert 'id="no-suppress-warning"' in html.read_text(encoding="utf-8")


def test_a_region_of_three_recipients_shows_no_person_level_figures(tmp_path):
    h = History(open_store(f"sqlite:///{tmp_path / 'tiny.db'}", create=True))
    h.provider("P1")
    for i in range(3):
        r = h.recipient(f"r{i}", enrolled_on=date(2024, 1, 1))
        h.grant(r, "personal_care", 300, valid_from=date(2024, 1, 1))
        h.performed(r, f"v{i}", "personal_care", "2024-02-05 09:00", 30, staff=(f"s{i}",))
    h.context()
    c = compare(load_scenario("default").with_period(Period(start="2024-02", end="2024-02")), h.store)  # the month of the visits
    doc = c.to_json()
    assert doc["suppression"]["region_suppressed"] is True
    assert doc["manifest"]["recipients"] is None and doc["manifest"]["recipient_months"] is None
    for m in doc["models"]:
        assert m["indicators"]["continuity_median"] is None and m["indicators"]["recipients"] is None
        assert m["cost_per_recipient_month_sek"] is None
        # the region is a small cell itself: its amounts are its one provider's, so they are hidden too
        assert m["cost_sek"] is None and m["indicators"]["visits_per_recipient_day"] is None
    assert c.models["cost_sek"].gt(0).all()  # computed, only not shown
    t = build_tables(c)
    assert (t.models["cost_per_recipient_month_sek"] == SUPPRESSED_MARK).all() and (t.models["cost_sek"] == SUPPRESSED_MARK).all()
    # no bins at all: an empty bin's 0 beside a hidden one, and the bins' edges, would speak of its payments
    assert t.distribution.empty and len(c.distribution) > 0  # computed, only not shown
    assert "P1" not in render.table(c) and f"{SUPPRESSED_MARK} recipients" in render.table(c)
    # the reports draw and write with every person-level figure marked
    write_report(c, html=tmp_path / "tiny.html", xlsx=tmp_path / "tiny.xlsx", lang="sv")
    text = (tmp_path / "tiny.html").read_text(encoding="utf-8")
    assert f'<dd data-key="recipients">{SUPPRESSED_MARK}</dd>' in text
    assert 'data-key="continuity_median" data-value=""' in text
    wb = load_workbook(tmp_path / "tiny.xlsx")
    manifest = {r["Uppgift"]: r["Värde"] for r in _sheet_rows(wb["Körning"])}
    assert manifest["Brukare"] == SUPPRESSED_MARK and manifest["Brukarmånader"] == SUPPRESSED_MARK
    continuity = next(r for r in _sheet_rows(wb["Indikatorer"]) if r["Uppgift"] == "continuity_median")
    assert continuity["per_minute"] == SUPPRESSED_MARK


# -- the workbook ---------------------------------------------------------------------------


def _sheet_rows(ws) -> list[dict]:
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_xlsx_holds_exactly_the_json_numbers_with_formats(region):
    doc = region["json"]
    wb = load_workbook(region["files"]["sv"][1])
    assert wb.sheetnames == ["Modeller", "Komponenter", "Utförare", "Månader", "Indikatorer", "Administration", "Fördelning", "Antaganden", "Nollpunkt", "Känslighet", "Svep", "Körning"]
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert ws.tables, ws.title  # an Excel table: filter buttons, pivot-ready
        for col, head in enumerate(next(ws.iter_rows(max_row=1, values_only=True)), start=1):
            width = ws.column_dimensions[ws.cell(1, col).column_letter].width
            assert width >= min(len(head), 60), (ws.title, head, width)

    models = {r["Modell"]: r for r in _sheet_rows(wb["Modeller"])}
    for m in doc["models"]:
        row = models[m["name"]]
        columns = {
            "Benämning": "label",
            "Kostnad (kr)": "cost_sek",
            "Skillnad mot jämförelsemodell (kr)": "delta_vs_baseline_sek",
            "Skillnad (%)": "delta_vs_baseline_pct",
            "Kr per brukarmånad": "cost_per_recipient_month_sek",
            "Betalda timmar": "paid_hours",
            "Utförda timmar": "performed_hours",
            "Beviljade timmar": "granted_hours",
            "Administrativa timmar": "admin_hours",
            "Administrativ kostnad (kr)": "admin_cost_sek",
        }
        assert {head: row[head] for head in columns} == {head: m[key] for head, key in columns.items()}
    components = {(r["Modell"], r["Komponent"]): r["Kostnad (kr)"] for r in _sheet_rows(wb["Komponenter"])}
    assert components == {(m["name"], i18n.label(f"component:{k}", "sv")): v for m in doc["models"] for k, v in m["components"].items() if v}
    ws = wb["Modeller"]
    cost = ws.cell(2, 4)
    assert cost.data_type == "n" and cost.number_format == '#,##0" kr"'
    assert ws.cell(2, 8).number_format == '#,##0.0" tim"'  # paid hours
    assert ws.cell(2, 6).number_format == '+0.0" %";-0.0" %";0.0" %"'

    providers = _sheet_rows(wb["Utförare"])
    by_json = _providers(doc)
    for r in providers:
        p = by_json[r["Utförare"]]
        if p["suppressed"]:
            assert r["Brukare"] == SUPPRESSED_MARK and r["Kostnad (kr)"] == SUPPRESSED_MARK and r["Undertryckt"] == "ja"
        else:
            assert r["Brukare"] == p["recipients"] and r["Undertryckt"] == "nej"
            assert r["Kostnad (kr)"] == p["cost_sek"][r["Modell"]]
            assert r["Skillnad mot jämförelsemodell (kr)"] == p["delta_vs_baseline_sek"][r["Modell"]]
    assert len(providers) == len(doc["providers"]) * len(doc["models"])

    monthly = _sheet_rows(wb["Månader"])
    assert {(r["Modell"], r["Månad"]): r["Kostnad (kr)"] for r in monthly} == {(m["name"], k): v for m in doc["models"] for k, v in m["monthly_cost_sek"].items()}
    indicators = {r["Uppgift"]: r for r in _sheet_rows(wb["Indikatorer"])}
    for m in doc["models"]:
        for key, value in m["indicators"].items():
            assert indicators[key][m["name"]] == value, key
    assert wb["Indikatorer"].cell(2 + list(indicators).index("punctuality"), 3).number_format == "0.0%"
    admin = {(r["Modell"], r["Moment"]): (r["Antal"], r["Minuter per moment"], r["Timmar"], r["Administrativ kostnad (kr)"]) for r in _sheet_rows(wb["Administration"])}
    assert admin == {(m["name"], i18n.label(f"act:{a['act']}", "sv")): (a["count"], a["minutes_per_act"], a["hours"], a["cost_sek"]) for m in doc["models"] for a in m["admin"]}
    manifest = {r["Uppgift"]: r["Värde"] for r in _sheet_rows(wb["Körning"])}
    assert manifest["Scenariofilens sha256"] == doc["manifest"]["scenario_sha256"]
    assert manifest["Position i lagret"] == doc["manifest"]["store_position"]
    assert manifest["Språk"] == "sv"
    sources = _sheet_rows(wb["Antaganden"])
    assert any(r["Källa"] == "Stockholm stad 2014, utförd/beviljad tid 82,5 %" and r["Värde"] == 0.825 for r in sources)


def test_xlsx_in_english(region):
    wb = load_workbook(region["files"]["en"][1])
    assert wb.sheetnames[0] == "Models" and wb["Models"].cell(1, 4).value == "Cost (SEK)"
    assert wb["Models"].cell(2, 4).number_format == '"SEK "#,##0'


# -- the HTML ---------------------------------------------------------------------------------

HEADLINES_JS = """
(() => {
  const charts = [...document.querySelectorAll('figure.chart')].map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return {id: f.id, width: box.width, height: box.height,
            marks: svg ? svg.querySelectorAll('path, rect, line, polyline, use').length : 0,
            text: svg ? svg.textContent : ''};
  });
  const headlines = {};
  for (const li of document.querySelectorAll('li.headline')) {
    const values = {};
    for (const s of li.querySelectorAll('span.num')) values[s.dataset.key] = {value: s.dataset.value, text: s.textContent};
    headlines[li.dataset.model] = values;
  }
  const px = [...document.querySelectorAll('#providers-table tbody tr')].find(tr => tr.cells[0].textContent === 'PX');
  return JSON.stringify({title: document.title, lang: document.documentElement.lang, charts, headlines,
                         px: px ? [...px.cells].map(c => c.textContent) : null,
                         images: document.images.length, scripts: document.scripts.length});
})()
"""


def test_html_is_self_contained(region):
    text = region["files"]["sv"][0].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing loaded from elsewhere
    assert "<link" not in text and "<script" not in text and "@import" not in text
    assert text.count('<figure class="chart"') == len(CHARTS)


def _check_headlines(value: dict, doc: dict, lang: str) -> None:
    for m in doc["models"]:
        h = value["headlines"][m["name"]]
        assert float(h["cost_sek"]["value"]) == m["cost_sek"]
        if m["name"] == doc["baseline"]:
            assert "delta_sek" not in h  # the baseline's sentence names no difference
        else:
            assert float(h["delta_sek"]["value"]) == m["delta_vs_baseline_sek"]
            assert float(h["delta_pct"]["value"]) == m["delta_vs_baseline_pct"]
            assert h["delta_pct"]["text"] == i18n.percent(m["delta_vs_baseline_pct"], lang, sign=True)
        assert float(h["admin_hours"]["value"]) == m["admin_hours"]
        assert float(h["continuity_median"]["value"]) == m["indicators"]["continuity_median"]
        # and the text a reader sees says the same, written the language's way
        assert h["cost_sek"]["text"] == i18n.money(m["cost_sek"], lang)
        assert h["admin_hours"]["text"] == i18n.number(m["admin_hours"], lang)
        assert i18n.parse_number(h["cost_sek"]["text"].split(NBSP)[0], lang) == pytest.approx(m["cost_sek"] / 1e6, abs=0.05)


@pytest.mark.skipif(chromium_path() is None and not os.environ.get("CI"), reason="chromium is not installed (CI installs it)")
def test_report_in_headless_chromium(region):
    doc = region["json"]
    with Browser() as browser:
        for lang in ("sv", "en"):
            page = browser.load(region["files"][lang][0], HEADLINES_JS)
            assert page.errors == [], page.errors
            value = json.loads(page.value)
            assert value["lang"] == lang and value["images"] == 0 and value["scripts"] == 0
            assert [c["id"] for c in value["charts"]] == [f"chart-{n}" for n in CHARTS]
            for chart in value["charts"]:
                assert chart["width"] > 300 and chart["height"] > 150, chart["id"]
                assert chart["marks"] > 10, chart["id"]  # axes alone would be a handful
            providers_chart = next(c for c in value["charts"] if c["id"] == "chart-providers")
            assert "PX" not in providers_chart["text"] and "P00" in providers_chart["text"]
            assert value["px"] == ["PX", SUPPRESSED_MARK] + [SUPPRESSED_MARK] * (2 * len(doc["models"]) - 1)
            _check_headlines(value, doc, lang)
            assert page.pdf.startswith(b"%PDF") and len(page.pdf) > 20_000
            assert page.png.startswith(b"\x89PNG")
            (region["root"] / f"r-{lang}.png").write_bytes(page.png)


@pytest.mark.skipif(chromium_path() is None and not os.environ.get("CI"), reason="chromium is not installed (CI installs it)")
def test_the_browser_check_sees_errors(tmp_path):
    """The harness itself can fail: a console error and a resource from the network are caught."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("broken")</script><img src="https://cdn.invalid/x.png"></body></html>')
    with Browser() as browser:
        result = browser.load(page, "document.body.children.length")
    assert any("broken" in e for e in result.errors)
    assert any("cdn.invalid" in e or "ERR_" in e for e in result.errors)


# -- the command line --------------------------------------------------------------------------


def test_report_defaults_and_errors(region, tmp_path):
    done = run("report", "--store", region["url"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ersattning-rapport.html").exists() and (tmp_path / "ersattning-rapport.xlsx").exists()
    assert "wrote ersattning-rapport.html" in done.stdout
    bad = run("report", "--store", region["url"], "--lang", "fr", cwd=tmp_path)
    assert bad.returncode == 2 and "'fr' is not one of 'sv', 'en'" in bad.stderr
    missing = run("report", "--store", region["url"], "--html", str(tmp_path / "no" / "r.html"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    nostore = run("report", "--store", f"sqlite:///{tmp_path / 'x.txt'}", cwd=tmp_path)
    assert "Traceback" not in nostore.stderr


def test_progress_on_a_terminal(region, tmp_path):
    """With standard error on a terminal, the report names each step as it goes."""
    import pty
    import subprocess

    from tests.test_cli import EXE

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "ERSATTNING_STORE"}
    proc = subprocess.Popen([*EXE, "report", "--store", region["url"], "--html", str(tmp_path / "p.html")], stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(master)
    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    for step in ("projection", "settle per_minute", "settle trust", "chart cost", "chart indicators", "html"):
        assert f"report: {step} (" in text, step
    assert "report: html (15/15)" in text  # projection, indicators, 4 models, 8 charts, html


def test_compare_writes_reports_too(region, tmp_path):
    done = run("compare", "--store", region["url"], "--xlsx", str(tmp_path / "c.xlsx"), "--lang", "en", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    wb = load_workbook(tmp_path / "c.xlsx")
    first = _sheet_rows(wb["Models"])[0]
    assert first["Model"] == "per_minute"
    assert first["Cost (SEK)"] == region["json"]["models"][0]["cost_sek"]


def test_every_component_act_unit_and_kind_has_a_label(region):
    from ersattning.admin import UNITS
    from ersattning.models import BUNDLED

    doc = region["json"]
    wanted = {f"component:{k}" for m in doc["models"] for k in m["components"]}
    wanted |= {f"act:{a['act']}" for m in doc["models"] for a in m["admin"]}
    wanted |= {f"unit:{u}" for u in UNITS} | {f"kind:{k}" for k in BUNDLED}
    wanted |= set(doc["models"][0]["indicators"])
    assert wanted - set(i18n.LABELS) == set()


def test_winners_and_losers_leave_suppressed_providers_out(region):
    c = compare(load_scenario("default"), open_store(region["url"]))
    names = {p for d in winners_and_losers(c, n=100).values() for key in ("winners", "losers") for p, _, _ in d[key]}
    assert "PX" not in names and names
    assert not math.isnan(c.models["cost_sek"].sum())

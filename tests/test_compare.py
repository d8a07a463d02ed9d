"""Indicators, administrative load, the comparison and its command line."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from ersattning.admin import AdminAssumptions, admin_load
from ersattning.api import compare, demo_store
from ersattning.indicators import continuity, shared_indicators
from ersattning.models import PerformedTime, TrustBased
from tests.builders import History
from tests.test_cli import EXE, run


def test_punctuality_and_shares():
    h = History()
    h.provider()
    r = h.recipient("a")
    v1 = h.visit(r, "on_time", "personal_care", "2024-03-05 08:00", 30)
    v2 = h.visit(r, "late", "personal_care", "2024-03-05 12:00", 30)
    from datetime import timedelta

    from tests.builders import local

    v1.perform(actual_start=local("2024-03-05 08:10"), actual_end=local("2024-03-05 08:40"), staff=("s",), registration="mobile", recorded_at=local("2024-03-05 09:00"))
    v2.perform(actual_start=local("2024-03-05 12:20"), actual_end=local("2024-03-05 12:50"), staff=("s",), registration="mobile", recorded_at=local("2024-03-05 13:00"))
    h.cancelled(r, "prov", "cleaning", "2024-03-06 10:00", 60, by="provider", reason="staffing")
    h.visit(r, "missed", "shopping", "2024-03-07 10:00", 30)
    ind = shared_indicators(h.context("2024-03", "2024-03"), punctuality_tolerance_minutes=15)
    # 10 min late is on time, 20 min is not: 1 of 2; performed 2 of 4 planned; 1 of 4 cancelled by the provider
    assert ind["punctuality"] == 0.5
    assert ind["share_planned_performed"] == 0.5
    assert ind["share_cancelled_by_provider"] == 0.25
    assert ind["performed_hours"] == 1.0
    _ = timedelta


def _fortnight(h: History, r, staff: list[str], start_day: int = 4, days: int = 14, hours=(8, 17), month="03"):
    n = 0
    for day in range(start_day, start_day + days):
        for hour in hours:
            h.performed(r, f"{r.pseudonym}-{day}-{hour}", "personal_care", f"2024-{month}-{day:02d} {hour:02d}:00", 30, staff=(staff[n % len(staff)],))
            n += 1


def test_continuity_follows_the_kolada_definition():
    h = History()
    h.provider()
    counted = h.recipient("counted", birth_year=1935)
    _fortnight(h, counted, [f"s{i}" for i in range(7)])
    young = h.recipient("young", birth_year=1975)  # under 65: not counted
    _fortnight(h, young, ["x1"])
    once = h.recipient("once", birth_year=1930)  # one visit a day: not counted
    _fortnight(h, once, ["y1"], hours=(9,))
    away = h.recipient("away", birth_year=1930)  # a stay inside the window: not counted
    _fortnight(h, away, ["z1"])
    h.stay(away, date(2024, 3, 10), date(2024, 3, 11))
    night = h.recipient("night", birth_year=1930)  # visits at 06 and 23 do not count: not two a day between 07 and 22
    _fortnight(h, night, ["n1", "n2"], hours=(6, 23))
    c = continuity(h.context("2024-03", "2024-03"))
    # only 'counted' qualifies, in the window 4–17 March: 7 distinct staff
    assert c == {"continuity_median": 7.0, "continuity_share_above_20": 0.0, "continuity_person_windows": 1}


def test_admin_load_counts_acts_times_minutes():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.grant(r, "personal_care", 600, valid_from=date(2024, 3, 1))
    h.performed(r, "a", "personal_care", "2024-03-05 10:00", 30, staff=("s1", "s2"))
    h.performed(r, "b", "personal_care", "2024-03-06 10:00", 30)
    ctx = h.context("2024-03", "2024-03")
    s = PerformedTime.model_validate({"rates": {"personal_care": 464, "service": 382}}).settle(ctx)
    assumptions = AdminAssumptions.model_validate({"hourly_cost": 420, "minutes_per_act": {"registration": 0.5, "invoice_line": 1, "reconciliation": 15, "decision_follow_up": 60, "correction": 10}})
    load = admin_load(ctx, s, PerformedTime.admin_acts, assumptions).set_index("act")
    # registrations: start and stop per staff: (2 + 1) staff × 2 = 6 → 3 min; invoice lines: 2 paid visits → 2 min;
    # reconciliation: 1 recipient-month → 15 min; decision follow-up: 1 decision granted in March → 60 min; no corrections
    assert load["count"].to_dict() == {"registration": 6.0, "correction": 0.0, "invoice_line": 2.0, "reconciliation": 1.0, "decision_follow_up": 1.0}
    assert load["hours"].sum() == pytest.approx((3 + 2 + 15 + 60) / 60)
    assert load["cost_sek"].sum() == pytest.approx(80 / 60 * 420)
    trust = TrustBased.model_validate({"tiers": [{"up_to_hours": None, "amount": 1000}]}).settle(ctx)
    tload = admin_load(ctx, trust, {"dialogue_meeting": "team_month", "invoice_line": "provider_month"}, AdminAssumptions.model_validate({"hourly_cost": 420, "minutes_per_act": {"dialogue_meeting": 480, "invoice_line": 1}})).set_index("act")
    assert tload["count"].to_dict() == {"dialogue_meeting": 1.0, "invoice_line": 1.0}


@pytest.fixture(scope="module")
def demo():
    return compare("default", demo_store(recipients=60, months=12))


def test_comparison_frames_and_json(demo):
    c = demo
    assert list(c.models["model"]) == ["per_minute", "granted", "ramtid", "trust"]
    assert c.models.loc[c.models["model"] == "per_minute", "delta_sek"].iloc[0] == 0
    for name in c.settlements:
        row = c.models[c.models["model"] == name].iloc[0]
        assert row["cost_sek"] == pytest.approx(c.components.loc[name].sum())
        assert row["cost_sek"] == pytest.approx(c.monthly.loc[name].sum())
        assert row["admin_cost_sek"] == pytest.approx(c.admin[c.admin["model"] == name]["cost_sek"].sum())
        assert row["cost_sek"] == pytest.approx(c.recipient_month_totals[name].sum())
    doc = json.loads(json.dumps(c.to_json()))
    assert {"scenario", "baseline", "models", "providers", "manifest"} <= set(doc)
    for m in doc["models"]:
        assert {"name", "kind", "cost_sek", "admin_hours", "admin_cost_sek", "indicators"} <= set(m)
    assert {"version", "scenario_sha256", "store_position", "as_of"} <= set(doc["manifest"])
    assert doc["models"][0]["indicators"]["continuity_median"] is not None


def test_providers_with_fewer_than_five_recipients_are_suppressed(demo):
    p = demo.providers
    assert (p["primary"] == (p["recipients"] < 5)).all()
    assert (p["suppressed"] == (p["primary"] | p["complementary"])).all()
    assert not p["complementary"].any() or p["primary"].any()  # a complementary cell only protects a small one
    doc = demo.to_json()
    for item in doc["providers"]:
        assert ("cost_sek" in item) != item["suppressed"]


# -- the command line ------------------------------------------------------------------


def test_compare_with_no_arguments_creates_a_demo_region_first(tmp_path: Path):
    done = run("compare", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no store named (--store, $ERSATTNING_STORE): writing a synthetic demo region into sqlite:///ersattning.db first" in done.stderr
    assert "per_minute" in done.stdout and "baseline" in done.stdout and "continuity" in done.stdout
    assert "synthetic demo region, not from real data" in done.stdout  # the table says so at its top
    again = run("compare", "--format", "json", cwd=tmp_path)
    assert again.returncode == 0 and "writing a synthetic demo region" not in again.stderr
    doc = json.loads(again.stdout)
    assert doc["manifest"]["demo"] is True and doc["warnings"][0]["code"] == "demo_data"
    assert doc["baseline"] == "per_minute" and len(doc["models"]) == 4
    assert doc["manifest"]["store_position"] > 900_000  # the default region: 1,000 recipients × 12 months
    csv = run("compare", "--format", "csv", "--output", "out.csv", cwd=tmp_path)
    assert csv.returncode == 0
    text = (tmp_path / "out.csv").read_text()
    assert text.splitlines()[0].startswith("model,label,kind,cost_sek") and len(text.splitlines()) == 5
    # as known on 1 March the history covers January to March only (planned visits): a year stops, two months settle
    assert "--period 2024-01..2024-03" in run("compare", "--as-of", "2024-03-01", cwd=tmp_path).stderr
    early = json.loads(run("compare", "--format", "json", "--as-of", "2024-03-01", "--period", "2024-01..2024-02", cwd=tmp_path).stdout)
    assert early["manifest"]["as_of"] == "2024-03-01 00:00:00"
    assert early["models"][0]["cost_sek"] < doc["models"][0]["cost_sek"]
    vid = subprocess.run([*EXE, "history", "--format", "json"], cwd=tmp_path, capture_output=True, text=True)
    assert vid.returncode == 0


def test_explain_on_the_command_line(tmp_path: Path):
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert run("synth", "--recipients", "20", "--months", "2", "--start", "2024-01", "--store", store).returncode == 0
    from ersattning import projection
    from ersattning.store import open_store

    proj = projection.load(open_store(store))
    k = proj.visit_keys.iloc[0]
    from uuid import UUID

    vid = str(UUID(bytes=int(k["key_hi"]).to_bytes(8, "big") + int(k["key_lo"]).to_bytes(8, "big")))
    out = run("explain", "--visit", vid, "--store", store, "--period", "2024-01..2024-02")
    assert out.returncode == 0, out.stderr
    assert f"visit: {vid}" in out.stdout and "per_minute (performed_time)" in out.stdout and "rates.personal_care = 485" in out.stdout
    rid = proj.recipients["recipient"].iloc[0]
    month = run("explain", "--recipient", rid, "--month", "2024-02", "--store", store, "--format", "json", "--period", "2024-01..2024-02")
    assert month.returncode == 0, month.stderr
    doc = json.loads(month.stdout)
    assert doc["subject"]["month"] == "2024-02" and [m["model"] for m in doc["models"]] == ["per_minute", "granted", "ramtid", "trust"]
    bad = run("explain", "--visit", "not-a-uuid", "--store", store, "--period", "2024-01..2024-02")
    assert bad.returncode == 2 and "is not a visit id" in bad.stderr


def test_validate_and_schema_on_the_command_line(tmp_path: Path):
    ok = run("validate", "solna")
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nperiod: {start: 2024-01, end: 2024-02}\nbaseline: a\nmodels: []\nadmin: {hourly_cost: 1, minutes_per_act: {}}\nextra: 1\n")
    done = run("validate", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{bad}:4: models: List should have at least 1 item" in done.stderr
    assert f"{bad}:6: extra: unknown key" in done.stderr
    schema = run("schema")
    assert json.loads(schema.stdout)["title"] == "ersattning scenario"
    missing = run("compare", str(tmp_path / "nope.yaml"), "--store", f"sqlite:///{tmp_path / 'x.db'}")
    assert missing.returncode == 2 and "cannot read the file" in missing.stderr


def test_api_returns_dataframes(demo):
    import pandas as pd

    for frame in (demo.models, demo.providers, demo.monthly, demo.components, demo.admin):
        assert isinstance(frame, pd.DataFrame) and len(frame)
    assert np.isfinite(demo.models["cost_sek"]).all()

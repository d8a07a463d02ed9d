"""Imported histories settle as the rules say (issue 11): end to end through the command line, with files.

Each test imports CSV files with ``ersattning import``, then runs ``compare``
(or ``validate``, ``explain``, ``history``) as a user would; the amounts are
worked out by hand in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run

ENV = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}
ADMIN = """
admin:
  hourly_cost: 420
  minutes_per_act: {registration: 0.5, correction: 10, invoice_line: 0.5, reconciliation: 15, decision_follow_up: 60, dialogue_meeting: 480}
"""
VISITS = "recipient,provider,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status\n"
DECISIONS = "recipient,decision_id,provider,category,granted,per,valid_from,valid_to,area,birth_year\n"
TRUST = "{kind: trust_based, name: trust, params: {basis: need_tier, tiers: [{up_to_hours: 9, amount: 2000}, {up_to_hours: 25, amount: 6500}, {up_to_hours: null, amount: 14000}]}}"


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _scenario(tmp_path: Path, period: str, models: list[str], extra: str = "", name: str = "s.yaml") -> str:
    text = f"name: test\nperiod: {{start: {period}, end: {period}}}\nbaseline: per_minute\nmodels:\n" + "".join(f"  - {m}\n" for m in models) + extra + ADMIN
    return _write(tmp_path / name, text)


def _import(kind: str, path: str, store: str) -> None:
    done = run("import", path, "--kind", kind, "--store", store, env=ENV)
    assert done.returncode == 0, done.stderr


def _compare(scenario: str, store: str) -> tuple[dict, str]:
    done = run("compare", scenario, "--store", store, "--format", "json", "--no-suppress", env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def _model(doc: dict, name: str) -> dict:
    """A model of a compare document (``name``) or of an explain document (``model``)."""
    return next(m for m in doc["models"] if m.get("name", m.get("model")) == name)


# -- 1. ownership is never defaulted silently ---------------------------------------------

# Stockholm 2024: 485 SEK/h municipal, 516 SEK/h private
STOCKHOLM = "{kind: performed_time, name: per_minute, params: {rates: {personal_care: 485, service: 485, private_personal_care: 516, private_service: 516}}}"


def test_unknown_ownership_is_an_error_or_a_stated_assumption(tmp_path):
    store = f"sqlite:///{tmp_path / 's.db'}"
    # one double-staffed personal-care visit of 60 minutes by a provider imported with the visits only
    visits = _write(tmp_path / "v.csv", VISITS + "B1,Hemtjänst Öst,V1,personal_care,2024-03-04 08:00,2024-03-04 09:00,2024-03-04 08:00,2024-03-04 09:00,S1|S2,performed\n")
    _import("visits", visits, store)

    silent = _scenario(tmp_path, "2024-03", [STOCKHOLM, TRUST])
    for command in ("compare", "validate"):
        refused = run(command, silent, "--store", store, env=ENV)
        assert refused.returncode == 2, (command, refused.stdout)
        assert "Hemtjänst Öst" in refused.stderr and "per_minute" in refused.stderr  # the provider and the model that needs it
        assert "ersattning import --kind providers" in refused.stderr and "default_ownership" in refused.stderr  # both ways out
        assert "Traceback" not in refused.stderr

    municipal = _scenario(tmp_path, "2024-03", [STOCKHOLM, TRUST], "providers: {default_ownership: municipal}\n", "m.yaml")
    assert run("validate", municipal, "--store", store, env=ENV).returncode == 0
    doc, stderr = _compare(municipal, store)
    # 1 h × 485 SEK/h for each of the two staff = 970.00 (not 2 × 516 = 1,032.00)
    assert _model(doc, "per_minute")["cost_sek"] == 970.00
    assert _model(doc, "per_minute")["components"]["double_staffing"] == 485.00
    assert _model(doc, "per_minute")["assumed"] == {"providers_at_default_ownership": 1, "default_ownership": "municipal"}
    assert "assumption: 1 provider(s) of unknown ownership (Hemtjänst Öst) settled as municipal" in stderr

    private = _scenario(tmp_path, "2024-03", [STOCKHOLM], "providers: {default_ownership: private}\n", "p.yaml")
    assert _model(_compare(private, store)[0], "per_minute")["cost_sek"] == 1032.00  # 2 × 1 h × 516

    # the assumption is listed with the scenario's other assumptions (in the report)
    html = tmp_path / "r.html"
    assert run("report", municipal, "--store", store, "--html", str(html), "--no-suppress", env=ENV).returncode == 0
    assert "default_ownership" in html.read_text(encoding="utf-8")
    from ersattning.report.assumptions import scenario_assumptions
    from ersattning.scenario import load_scenario

    listed = [a for a in scenario_assumptions(load_scenario(municipal)) if a.section == "providers"]
    assert [(a.parameter, a.value, a.assumption) for a in listed] == [("default_ownership", "municipal", True)]


# -- 4. loud assumptions, 5. lookups by source id and history counts ------------------------


def test_models_without_decisions_say_so_and_source_ids_are_looked_up(tmp_path):
    store = f"sqlite:///{tmp_path / 's.db'}"
    visits = _write(
        tmp_path / "v.csv",
        VISITS
        + "B1,Hemtjänst Öst,V1,personal_care,2024-03-04 08:00,2024-03-04 09:00,2024-03-04 08:00,2024-03-04 09:00,S1,performed\n"
        + "B2,Hemtjänst Öst,V2,cleaning,2024-03-05 10:00,2024-03-05 11:00,2024-03-05 10:00,2024-03-05 11:00,S1,performed\n",
    )
    _import("visits", visits, store)
    history = run("history", "--store", store, "--format", "json", "--no-suppress", env=ENV)
    summary = json.loads(history.stdout)
    # seen in visits, though neither enrolled by decisions nor registered
    assert (summary["recipients"], summary["providers"], summary["recipients_enrolled"], summary["providers_registered"]) == (2, 1, 0, 0)
    assert "Recipients  2 (0 enrolled by decisions)" in run("history", "--store", store, "--no-suppress", env=ENV).stdout
    # two persons: without --no-suppress nothing about them is counted, in the table or the JSON (docs/personal-data.md)
    hidden = json.loads(run("history", "--store", store, "--format", "json", env=ENV).stdout)
    assert hidden["suppressed"] is True and hidden["providers"] == 1
    assert all(hidden[k] is None for k in ("recipients", "recipients_enrolled", "visits", "visits_by_status", "first_day", "last_day", "events"))
    table = run("history", "--store", store, env=ENV).stdout
    assert "Recipients  ..: fewer than 5" in table and "Visits" not in table and "2024-03" not in table

    scenario = _scenario(tmp_path, "2024-03", [STOCKHOLM, TRUST], "providers: {default_ownership: municipal}\n")
    doc, stderr = _compare(scenario, store)
    trust = _model(doc, "trust")
    # two recipient-months, neither with a decision: the trust model pays 0.00 for both, and says so
    assert trust["cost_sek"] == 0.0
    assert trust["unpriced"] == {"recipient_months_without_decision": 2} and trust["unpriced_paid_sek"] == {"recipient_months_without_decision": 0.0}
    assert _model(doc, "per_minute")["unpriced"] == {}
    assert "trust: 2 recipient-months with no decision in force" in stderr and "paid 0.00 SEK" in stderr

    # the source's own ids, hashed with the import's key; neither is printed back
    month = run("explain", scenario, "--recipient", "B1", "--month", "2024-03", "--store", store, env=ENV)
    assert month.returncode == 0, month.stderr
    assert "no decision in force this month: trust_based" in month.stdout and "B1" not in month.stdout
    visit = run("explain", scenario, "--visit", "V1", "--store", store, "--format", "json", env=ENV)
    assert visit.returncode == 0, visit.stderr
    ex = json.loads(visit.stdout)
    assert "V1" not in visit.stdout and len(ex["subject"]["visit"]) == 36  # the visit's UUID
    assert round(_model({"models": ex["models"]}, "per_minute")["total_sek"], 2) == 485.00
    again = run("explain", scenario, "--visit", ex["subject"]["visit"], "--store", store, env=ENV)  # and by its UUID
    assert again.returncode == 0 and "485.00 SEK" in again.stdout
    unknown = run("explain", scenario, "--visit", "V9", "--store", store, env=ENV)
    assert unknown.returncode == 2 and "V9" not in unknown.stderr
    no_key = run("explain", scenario, "--recipient", "B1", "--month", "2024-03", "--store", store, env={"ERSATTNING_PSEUDONYM_KEY_FILE": str(tmp_path / "none.key")})
    assert no_key.returncode == 2 and "pseudonym key" in no_key.stderr


# -- 2. stays from the stays history ------------------------------------------------------------

SOLNA_STAYS = (
    "{kind: performed_time, name: per_minute, params: {rates: {personal_care: 464, service: 382}, "
    "cancellations: {notice_limit_hours: 24, shares: {personal_care: 0.5}}, stays: {day_shares: [0.75, 0.25, 0.25, 0.25, 0.25]}}}"
)


def test_a_five_day_stay_pays_planned_personal_care_whatever_the_visits_say(tmp_path):
    store = f"sqlite:///{tmp_path / 's.db'}"
    _import("decisions", _write(tmp_path / "d.csv", DECISIONS + "R1,D1,P1,personal_care,3600,month,2024-04-01,,urban,1938\n"), store)
    # in hospital 10–14 April: 15 April is the day home, not a stay day
    _import("stays", _write(tmp_path / "s.csv", "recipient,kind,start,end\nR1,hospital,2024-04-10,2024-04-15\n"), store)
    # 2 h of personal care planned each stay day, with whatever outcome the export gives it
    outcomes = ["planned", "cancelled_by_provider", "cancelled_by_recipient", "planned", "cancelled_by_provider"]
    rows = []
    for n, day in enumerate(range(10, 15)):
        for hour in (8, 18):
            rows.append(f"R1,P1,V{day}-{hour},personal_care,2024-04-{day} {hour:02d}:00,2024-04-{day} {hour + 1:02d}:00,,,,{outcomes[n]}\n")
    # performed during the stay (a home visit the day the stay began) and on the day home: paid as performed, once
    rows.append("R1,P1,V10-6,personal_care,2024-04-10 06:00,2024-04-10 07:00,2024-04-10 06:00,2024-04-10 07:00,S1,performed\n")
    rows.append("R1,P1,V15-8,personal_care,2024-04-15 08:00,2024-04-15 09:00,2024-04-15 08:00,2024-04-15 09:00,S1,performed\n")
    _import("visits", _write(tmp_path / "v.csv", VISITS + "".join(rows)), store)

    doc, _ = _compare(_scenario(tmp_path, "2024-04", [SOLNA_STAYS]), store)
    m = _model(doc, "per_minute")
    # day 1: 2 h × 75 % × 464 = 696.00; days 2–5: 4 × 2 h × 25 % × 464 = 4 × 232.00 = 928.00; 696 + 928 = 1,624.00
    assert m["components"]["stay"] == 1624.00
    assert m["components"]["cancellation"] == 0.0  # a cancellation on a stay day is the stay rule's, not paid twice
    # the two performed hours: 2 × 464 = 928.00; in all 1,624.00 + 928.00 = 2,552.00
    assert m["components"]["base"] == 928.00 and m["cost_sek"] == 2552.00

    # explain names the stay day
    day2 = run("explain", _scenario(tmp_path, "2024-04", [SOLNA_STAYS]), "--visit", "V11-8", "--store", store, env=ENV)
    assert day2.returncode == 0, day2.stderr
    assert "on day 2 of a stay: 15.0 min × 464 SEK/h = 116.00 SEK" in day2.stdout


# -- 3. trust tiers by the decision's monthly hours ----------------------------------------------


def test_trust_tiers_by_monthly_granted_hours_pro_rata_only_in_the_amount(tmp_path):
    store = f"sqlite:///{tmp_path / 's.db'}"
    decisions = DECISIONS + "R2,D2,P1,personal_care,600,month,2024-03-17,,urban,1938\n" + "R3,D3,P1,personal_care,600,month,2024-02-01,,urban,1938\n"
    _import("decisions", _write(tmp_path / "d.csv", decisions), store)
    # R3 is away 5–14 March: ten days
    _import("stays", _write(tmp_path / "s.csv", "recipient,kind,start,end\nR3,hospital,2024-03-05,2024-03-15\n"), store)
    scenario = _scenario(tmp_path, "2024-03", [SOLNA_STAYS, TRUST])
    doc, stderr = _compare(scenario, store)
    # R2: 10 h/month from 17 March → the ≤ 25 h tier, 6,500 × 15/31 days = 3,145.16 (not 2,000 × 15/31 = 967.74)
    # R3: 10 h/month, 21 of 31 days at home → the same tier, 6,500 × 21/31 = 4,403.23
    assert round(_model(doc, "trust")["cost_sek"], 2) == round(6500 * 15 / 31 + 6500 * 21 / 31, 2) == 7548.39
    assert _model(doc, "trust")["unpriced"] == {} and "no decision" not in stderr
    r2 = run("explain", scenario, "--recipient", "R2", "--month", "2024-03", "--store", store, "--format", "json", env=ENV)
    assert r2.returncode == 0, r2.stderr
    trust = _model({"models": json.loads(r2.stdout)["models"]}, "trust")
    assert round(trust["total_sek"], 2) == 3145.16
    assert "need tier 2 (≤ 25 h) by the decisions' 10.0 granted h/month" in trust["rules"][0] and "× 15/31 days" in trust["rules"][0]
    r3 = run("explain", scenario, "--recipient", "R3", "--month", "2024-03", "--store", store, "--format", "json", env=ENV)
    trust = _model({"models": json.loads(r3.stdout)["models"]}, "trust")
    assert round(trust["total_sek"], 2) == 4403.23 and "need tier 2 (≤ 25 h)" in trust["rules"][0]
